"""The CUDA kernels run on the CPU (``cuda_emulation/emulate.cpp``) against the generic path.

``kernels.cu`` is compiled with g++ as host code, one thread per CUDA thread, and launched
with the plans ``_launch.plan`` makes for a one-multiprocessor device, so that every variant
(warp, block, online), aligned and unaligned rows and every edge row of
``benchmarks.gpu_check`` go through the kernels' own code, with the host glue of
``_kernels.py`` (labels to int64, the reductions of cross-entropy, the mean's safe division)
mirrored here in NumPy; then the CuPy backend itself (described calls in, results out) and
``_kernels.py`` run ``benchmarks.gpu_check`` on a stand-in CuPy
(``cuda_emulation/fake_cupy.py``). The reference is always the generic path. This checks the
kernels' logic, not the GPU: expf and logf are the host's, and the memory model and
scheduling are not a GPU's. Runs once, in the NumPy session; skipped (with the reason) where
g++ or the CUDA headers are missing.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import portable_softmax as ps
from benchmarks import gpu_check
from conformance.cuda_emulation import fake_cupy
from portable_softmax._backends.cupy import _launch

ROOT = Path(__file__).resolve().parent.parent
KERNELS = ROOT / "portable_softmax" / "_backends" / "cupy"
EMULATOR = Path(__file__).resolve().parent / "cuda_emulation" / "emulate.cpp"
DEVICE = _launch.DeviceProperties(1, 128, 48 * 1024, 227 * 1024, 32)
"""One multiprocessor, 128 threads a block: grids of at most 32 blocks of 4 warps, so that
emulated launches (one host thread per CUDA thread) stay cheap."""
CODES = {"float32": 0, "float64": 1, "float16": 2}
VARIANTS = {"warp": 0, "block": 1, "online": 2}
LENGTHS = (1, 33, 1024, 1025, 4096, 4099, 20000)


@pytest.fixture(autouse=True)
def _numpy_session_only(request: pytest.FixtureRequest) -> None:
    from conformance.conftest import _SELECTION

    if all(s.backend.name != "numpy" for s in request.config.stash[_SELECTION].backends):
        pytest.skip("the emulated CUDA kernels run in the numpy session only")


def _cuda_include() -> Path | None:
    for root in ("/usr/local/cuda", "/opt/cuda"):
        if Path(root, "include", "cuda_bf16.h").is_file():
            return Path(root, "include")
    nvcc = shutil.which("nvcc")
    if nvcc is not None:
        candidate = Path(nvcc).resolve().parent.parent / "include"
        if (candidate / "cuda_bf16.h").is_file():
            return candidate
    return None


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Any:
    include = _cuda_include()
    if shutil.which("g++") is None or include is None:
        pytest.skip("the CUDA emulation needs g++ (C++20) and the CUDA headers (cuda_bf16.h)")
    target = tmp_path_factory.mktemp("emulation") / "libemulate.so"
    command = ["g++", "-std=c++20", "-O1", "-shared", "-fPIC", f"-I{include}", f"-I{KERNELS}"]
    done = subprocess.run(
        [*command, "-Wno-unknown-pragmas", str(EMULATOR), "-o", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return ctypes.CDLL(str(target))


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _plan(name: str, dtype: str, rows: int, n: int, *arrays: np.ndarray) -> _launch.Launch:
    family, op = _launch.FUNCTIONS[name]
    launch = _launch.plan(family, op, dtype, rows, n, DEVICE, [a.ctypes.data for a in arrays])
    assert launch is not None
    return launch


def _forward(lib: Any, name: str, x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    op = _launch.FUNCTIONS[name][1]
    rows, n = int(np.prod(x.shape[:-1])), x.shape[-1]
    out = np.empty(x.shape[:-1] if op == 2 else x.shape, dtype=x.dtype)
    launch = _plan(name, x.dtype.name, rows, n, *((x,) if op == 2 else (x, out)))
    lib.ps_emu_forward(
        CODES[x.dtype.name], op, VARIANTS[launch.variant], _ptr(x), _ptr(out),
        ctypes.c_longlong(rows), n, ctypes.c_double(temperature), int(launch.vectorized),
        launch.grid, launch.block,
    )  # fmt: skip
    return out


def _derivative(lib: Any, name: str, v: np.ndarray, p: np.ndarray, temperature: float) -> Any:
    op = _launch.FUNCTIONS[name][1]
    rows, n = int(np.prod(p.shape[:-1])), p.shape[-1]
    out = np.empty_like(p)
    launch = _plan(name, p.dtype.name, rows, n, p, v, out)
    lib.ps_emu_derivative(
        CODES[p.dtype.name], op, VARIANTS[launch.variant], _ptr(p), _ptr(v), _ptr(out),
        ctypes.c_longlong(rows), n, ctypes.c_double(temperature), int(launch.vectorized),
        launch.grid, launch.block,
    )  # fmt: skip
    return out


def _safe_divide(total: np.ndarray, d: np.ndarray) -> np.ndarray:
    zero = np.where(np.isnan(total), total, 0)
    return np.where(d == 0, zero, total / np.where(d == 0, 1, d))


def _cross_entropy(lib: Any, name: str, x: np.ndarray, target: np.ndarray, **o: Any) -> Any:
    """The host glue of ``_kernels.cross_entropy`` / ``cross_entropy_backward`` in NumPy."""
    kind = _launch.FUNCTIONS[name][1]
    acc = np.float64 if x.dtype == np.float64 else np.float32
    rows, n = int(np.prod(x.shape[:-1])), x.shape[-1]
    labels = np.ascontiguousarray(target, dtype=np.int64)
    weight = o.get("weight")
    w = np.zeros(1, acc) if weight is None else np.ascontiguousarray(weight, dtype=acc)
    ignore = o.get("ignore_index")
    eps = float(o.get("label_smoothing", 0.0))
    reduction = o.get("reduction", "mean")
    code = CODES[x.dtype.name]
    options = (
        _ptr(labels), _ptr(w), int(weight is not None), int(ignore is not None),
        ctypes.c_longlong(0 if ignore is None else ignore), ctypes.c_double(acc(1.0 - eps)),
        ctypes.c_double(acc(eps / n)),
    )  # fmt: skip

    def denominator() -> Any:
        d = np.empty(rows, acc)
        grid, block = _launch.denominator_launch(rows, DEVICE)
        lib.ps_emu_denominator(code, *options[:5], _ptr(d), ctypes.c_longlong(rows), n, grid, block)
        return d.sum(dtype=np.float64).astype(acc)

    out = np.empty_like(x)
    losses = np.empty(rows, acc)
    if kind == 0:
        launch = _plan(name, x.dtype.name, rows, n, x)
        scale = np.empty(1, acc)
    else:
        launch = _plan(name, x.dtype.name, rows, n, x, out)
        scale = np.ones((), acc)
        if reduction == "mean":
            scale = _safe_divide(scale, denominator())
        scale = np.ascontiguousarray(scale, dtype=acc).reshape(-1)
    lib.ps_emu_xent(
        code, kind, VARIANTS[launch.variant], _ptr(x), *options, _ptr(scale), ctypes.c_longlong(0),
        _ptr(out), _ptr(losses), ctypes.c_longlong(rows), n, int(launch.vectorized),
        launch.grid, launch.block,
    )  # fmt: skip
    if kind == 1:
        return out
    if reduction == "none":
        return losses.reshape(x.shape[:-1]).astype(x.dtype)
    total = losses.sum(dtype=np.float64).astype(acc)
    if reduction == "mean":
        total = _safe_divide(total, denominator())
    return np.asarray(total).astype(x.dtype)


def _emulated(lib: Any, name: str, arrays: tuple[np.ndarray, ...], options: dict[str, Any]) -> Any:
    if name == "cross_entropy_with_grad":  # the backend's two launches
        loss = _emulated(lib, "cross_entropy", arrays, options)
        return loss, _emulated(lib, "cross_entropy_backward", arrays, options)
    family = _launch.FUNCTIONS[name][0]
    t = float(options.get("temperature", 1.0))
    if family == "forward":
        return _forward(lib, name, arrays[0], t)
    if family == "derivative":
        return _derivative(lib, name, arrays[0], arrays[1], t)
    opts = {k: v for k, v in options.items() if k != "validate"}
    return _cross_entropy(lib, name, arrays[0], arrays[1], **opts)


@pytest.mark.parametrize("dtype", list(CODES))
@pytest.mark.parametrize("n", LENGTHS)
def test_emulated_kernels_match_the_generic_path(lib: Any, dtype: str, n: int) -> None:
    failures = []
    for name, _, _, arrays, options in gpu_check.cases(np, (n,), (dtype,)):
        got = _emulated(lib, name, arrays, options)
        want = gpu_check._reference(ps, np, name, arrays, options)  # the generic path
        problem = gpu_check.problem(name, got, want, dtype, n)
        if problem is not None:
            failures.append(f"{name} {sorted(options)}: {problem}")
    assert not failures, "\n".join(failures)


def test_every_variant_is_emulated() -> None:
    seen = {
        (family, _launch.plan(family, 0, dtype, 6, n, DEVICE, [0]).variant)  # type: ignore[union-attr]
        for family in _launch.FAMILIES
        for dtype in CODES
        for n in LENGTHS
    }
    assert seen == {(f, v) for f in _launch.FAMILIES for v in VARIANTS}


def test_the_cupy_glue_end_to_end(lib: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The CuPy backend (described call in, result out), _kernels.py and benchmarks.gpu_check
    # as written, with a NumPy stand-in for CuPy whose RawModule launches the emulated
    # kernels: the registry's decision, the call's fields to kernel arguments, argument
    # order and types, the shared-memory opt-in, the cross-entropy reductions and the
    # check's own bookkeeping all run, against the generic path.
    monkeypatch.setattr(gpu_check, "described", fake_cupy.cupy_calls(gpu_check.described))
    lengths, dtypes = (33, 1025, 4099, 20000), ("float32", "float16", "float64")
    with fake_cupy.installed(lib, monkeypatch) as calls:
        failures, seen = gpu_check.run(lengths, dtypes)
        from portable_softmax._backends.cupy import _kernels

        opted_in = dict(_kernels._opted_in)
    assert not failures, "\n".join(failures)
    assert len(calls) >= len(gpu_check.cases(np, lengths, dtypes))  # every case launched
    assert opted_in  # float64 backward rows of 4099 need 64 KiB of shared memory
    assert len(seen) == 3 * 3 * 3  # family x variant x dtype
    assert any(name.startswith("ps_xent_denominator") for name in calls)
