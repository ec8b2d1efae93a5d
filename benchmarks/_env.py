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


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def isa_level() -> str:
    """The x86-64 micro-architecture level the CPU reports (``x86-64-v4 (AVX-512)``,
    ``x86-64-v3 (AVX2)``, ...), or the machine name elsewhere."""
    flags = _cpu_flags()
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        return "x86-64-v4 (AVX-512)"
    if {"avx2", "fma", "bmi2"} <= flags:
        return "x86-64-v3 (AVX2)"
    if {"sse4_2", "popcnt"} <= flags:
        return "x86-64-v2 (SSE4.2)"
    return platform.machine()


_VECTOR_PROBE = r"""
import json, re
import numpy as np
import llvmlite.binding as llvm
from portable_softmax._backends.numba._forward import SOFTMAX, forward_kernel

kernel = forward_kernel(SOFTMAX, False, True)
x = np.ones((4, 64), np.float32)
kernel(x, np.empty_like(x), np.float32(1.0))
asm = "".join(kernel.inspect_asm().values())
counts = {r: len(re.findall(r"%" + r + r"\d+", asm)) for r in ("zmm", "ymm", "xmm")}
print(json.dumps({"llvm_cpu": llvm.get_host_cpu_name(), **counts}))
"""


def kernel_vector_width(timeout: float = 180) -> dict[str, Any] | None:
    """The vector registers the compiled softmax kernel (float32, one thread) uses, from its
    assembly, compiled afresh in a subprocess with an empty cache (a cached kernel has no
    assembly to show): ``width_bits`` is 512 when it uses any ``zmm`` register, 256 for
    ``ymm``, else 128. None without numba or when the probe fails."""
    import importlib.util
    import json
    import tempfile

    if importlib.util.find_spec("numba") is None:
        return None
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        try:
            done = subprocess.run(
                [sys.executable, "-c", _VECTOR_PROBE], env=env, capture_output=True,
                text=True, timeout=timeout, check=False,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
    if done.returncode != 0:
        return None
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    found["width_bits"] = 512 if found["zmm"] else 256 if found["ymm"] else 128
    return found


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
        "isa": isa_level(),
        "kernel_vectors": kernel_vector_width(),
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
