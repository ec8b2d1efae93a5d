"""What the numbers were measured on: machine, library versions, threads, commit, command."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

_DISTRIBUTIONS = (
    "numpy",
    "numba",
    "llvmlite",
    "scipy",
    "torch",
    "jax",
    "jaxlib",
    "cupy-cuda12x",
    "cupy-cuda13x",
    "dask",
    "distributed",
    "array-api-compat",
    "portable-softmax",
    "matplotlib",
)

_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "XLA_FLAGS",
    "CUDA_VISIBLE_DEVICES",
    "NUMBA_NUM_THREADS",
    "NUMBA_THREADING_LAYER",
    "NUMBA_CACHE_DIR",
    "PORTABLE_SOFTMAX_PATH",
    "PORTABLE_SOFTMAX_NUM_THREADS",
)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or the platform's best guess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def gpu_description() -> dict[str, Any] | None:
    """Name, driver and memory of GPU 0 via nvidia-smi, else via CuPy; None without one."""
    try:
        done = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,driver_version,memory.total",
                "--format=csv,noheader",
            ],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        if done.returncode == 0 and done.stdout.strip():
            name, driver, memory = (p.strip() for p in done.stdout.splitlines()[0].split(","))
            return {"name": name, "driver": driver, "memory": memory}
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    try:
        import cupy

        properties = cupy.cuda.runtime.getDeviceProperties(0)
        name = properties["name"]
        return {
            "name": name.decode() if isinstance(name, bytes) else str(name),
            "driver": str(cupy.cuda.runtime.driverGetVersion()),
            "memory": f"{properties['totalGlobalMem'] / 2**30:.1f} GiB",
        }
    except Exception:  # no CuPy or no device: there is no GPU to describe
        return None


def environment(command: str, *, with_gpu: bool) -> dict[str, Any]:
    """A JSON-ready description of this run's environment."""
    threads: dict[str, Any] = {v: os.environ.get(v) for v in _THREAD_VARIABLES}
    if "torch" in sys.modules:
        threads["torch_default_threads"] = sys.modules["torch"].get_num_threads()
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in _DISTRIBUTIONS},
        "threads": threads,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(dirty) if dirty is not None else None,
        "gpu": gpu_description() if with_gpu else None,
    }
