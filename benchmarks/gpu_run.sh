#!/usr/bin/env bash
# The GPU recipe of docs/gpu.md, as one command run in the project root on the GPU machine:
# install the wheels carried in .whl/ (for a machine without network; skipped when there are
# none), show the card, run the session (kernel check, compute-sanitizer, the suite on CuPy
# generic and on the kernels, the kernel benchmark against torch, Dask on CuPy chunks; about
# 7.5 minutes at most, so that a rerun fits in 15).
#   bash benchmarks/gpu_run.sh                 # results in benchmarks/results/<card>-<date>/
#   bash benchmarks/gpu_run.sh --only check    # one phase (see python -m benchmarks.gpu -h)
# With $OUT set (the folder the machine hands back), the results are copied there too.
# A missing or unusable GPU is a failure (exit code 2), never a skip.
# UNVERIFIED: written without a GPU; it has never run on one.
set -u
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || exit 2
nvcc --version | tail -1
if [ -n "${OUT:-}" ]; then
  timeout 470 python3 -m benchmarks.gpu --copy-to "$OUT" "$@"
else
  timeout 470 python3 -m benchmarks.gpu "$@"
fi
