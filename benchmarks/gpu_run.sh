#!/usr/bin/env bash
# The GPU recipe of /work/shared/gpu/README.md, as one command run in the project root on
# the GPU machine (no network): install the carried wheels, show the card, run the session.
#   bash benchmarks/gpu_run.sh            # results in benchmarks/results/<card>-<date>/
# With $OUT set (the folder the machine hands back), the results are copied there too.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || exit
if [ -n "${OUT:-}" ]; then
  timeout 390 python3 -m benchmarks.gpu --copy-to "$OUT" "$@"
else
  timeout 390 python3 -m benchmarks.gpu "$@"
fi
