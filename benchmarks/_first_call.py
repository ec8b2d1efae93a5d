"""First-call time: ``import portable_softmax`` plus one small softmax, in fresh processes.

SPEC section 4: with the compiled kernels, import plus first call under 1 s with a warm cache;
the cold time (compilation) is reported. Each run is a new interpreter timing, from inside,
``import numpy, portable_softmax`` and ``softmax`` of a (4, 4) float32 array (interpreter
start-up is not counted). Cold: numba's cache is a fresh empty folder (``NUMBA_CACHE_DIR``);
warm: the folder the last cold run filled. The pure NumPy path
(``PORTABLE_SOFTMAX_PATH=numpy``) is timed too: without numba it is what users get.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SNIPPET = (
    "import time; t=time.perf_counter(); import numpy as np, portable_softmax as ps; "
    "ps.softmax(np.ones((4,4),np.float32)); print(time.perf_counter()-t)"
)
TIMEOUT_S = 300.0
"""Per run; a cold compilation of the first kernel takes seconds, not minutes."""


def _package_root() -> str:
    """The folder that holds the ``portable_softmax`` this process imports (a checkout or
    site-packages), so that the fresh processes time the same code."""
    import portable_softmax

    return str(Path(portable_softmax.__file__).resolve().parent.parent)


def run_once(path: str, cache_dir: str | None, snippet: str = SNIPPET) -> float:
    """Seconds that ``snippet`` prints in a fresh interpreter on ``path``; raises
    RuntimeError with the child's stderr when it fails."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([_package_root(), *filter(None, [env.get("PYTHONPATH")])])
    env["PORTABLE_SOFTMAX_PATH"] = path
    # Bytecode as after `pip install` (which compiles it; uv does not unless asked): the
    # untimed warm-up run in measure() writes what is missing, the timed runs read it.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    with tempfile.TemporaryDirectory() as cwd:  # nothing in the working directory shadows
        done = subprocess.run(
            [sys.executable, "-c", snippet],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"exit code {done.returncode}: {tail[0]}")
    return float(done.stdout.strip().splitlines()[-1])


def _series(times: list[float]) -> dict[str, Any]:
    return {"runs_s": times, "median_s": statistics.median(times) if times else None}


def measure(
    cold_runs: int, warm_runs: int, numba: str | None, snippet: str = SNIPPET
) -> dict[str, Any]:
    """Cold and warm first-call times of path ``auto`` (with numba) and of the NumPy path.

    ``numba`` is why numba cannot be used (None: it can); without it only the NumPy path is
    timed, ``warm_runs`` times. Zero runs: nothing is measured (``measured`` is False).
    """
    result: dict[str, Any] = {
        "command": f'python -c "{snippet}"',
        "numba": numba is None,
        "numba_reason": numba,
        "measured": cold_runs + warm_runs > 0,
        "cold": _series([]),
        "warm": _series([]),
        "numpy_path": _series([]),
        "error": None,
    }
    if not result["measured"]:
        return result
    try:
        with tempfile.TemporaryDirectory(prefix="numba-cache-") as root:
            # untimed: writes the imports' missing bytecode (numba's too, on path auto)
            run_once("numpy" if numba else "auto", root, snippet)
            if numba is None:
                cold = []
                for index in range(max(1, cold_runs)):
                    cache = os.path.join(root, str(index))
                    os.mkdir(cache)
                    cold.append(run_once("auto", cache, snippet))
                warm = [run_once("auto", cache, snippet) for _ in range(warm_runs)]
                result["cold"], result["warm"] = _series(cold), _series(warm)
            numpy_path = [run_once("numpy", None, snippet) for _ in range(max(1, warm_runs))]
            result["numpy_path"] = _series(numpy_path)
    except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as error:
        result["error"] = f"{type(error).__name__}: {error}"
    return result


def lines(first: dict[str, Any]) -> list[str]:
    """The Markdown lines of the first-call section."""
    out = [
        f"Each run: a fresh process timing `{SNIPPET}` from inside (start-up not counted); "
        "an untimed run first writes the imports' bytecode, as `pip install` would."
    ]
    if not first["measured"]:
        return [*out, "", "Not measured in this run."]
    if first["error"]:
        out += ["", f"Measurement failed: {first['error']}"]
    rows = []
    if first["numba"]:
        rows += [
            ("path auto (numba), cold cache (fresh NUMBA_CACHE_DIR)", first["cold"]),
            ("path auto (numba), warm cache (same folder again)", first["warm"]),
        ]
    rows.append(("path numpy (pure NumPy, no compilation)", first["numpy_path"]))
    out += ["", "| import + first call | median | runs |", "|---|---|---|"]
    for label, series in rows:
        runs = ", ".join(f"{t:.3f}" for t in series["runs_s"]) or "-"
        median = series["median_s"]
        out.append(f"| {label} | {'-' if median is None else f'{median:.3f} s'} | {runs} |")
    if not first["numba"]:
        out += ["", f"numba rows not measured: {first['numba_reason']}"]
    return out
