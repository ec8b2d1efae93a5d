"""Fixtures for the harness tests: a NumPy-backed stand-in for CuPy, so that every GPU code
path (timing with cupyx.profiler.benchmark, transfers, GPU/CPU tables) runs without a GPU."""

from __future__ import annotations

import sys
import time
import types
from collections.abc import Callable
from typing import Any

import array_api_compat.numpy
import numpy as np
import pytest


def _fake_benchmark(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    *,
    n_repeat: int,
    n_warmup: int,
    max_duration: float,
) -> Any:
    for _ in range(n_warmup):
        func(*args)
    times = []
    for _ in range(n_repeat):
        start = time.perf_counter()
        func(*args)
        times.append(time.perf_counter() - start)
    return types.SimpleNamespace(gpu_times=np.array([times]), cpu_times=np.array(times))


@pytest.fixture
def fake_cupy(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """``cupy`` whose arrays are NumPy arrays (copied on transfer), one fake device."""
    cupy = types.ModuleType("cupy")
    cupy.asarray = lambda a: np.array(a, copy=True)  # type: ignore[attr-defined]
    cupy.asnumpy = lambda a: np.array(a, copy=True)  # type: ignore[attr-defined]
    cupy.empty_like = np.empty_like  # type: ignore[attr-defined]
    cupy.copyto = np.copyto  # type: ignore[attr-defined]
    cupy.arange = np.arange  # type: ignore[attr-defined]
    stream = types.SimpleNamespace(synchronize=lambda: None)
    runtime = types.SimpleNamespace(
        getDeviceProperties=lambda i: {"name": b"Fake GPU 9000", "totalGlobalMem": 2**34},
        driverGetVersion=lambda: 13000,
    )
    cupy.cuda = types.SimpleNamespace(get_current_stream=lambda: stream, runtime=runtime)  # type: ignore[attr-defined]
    cupyx = types.ModuleType("cupyx")
    profiler = types.ModuleType("cupyx.profiler")
    profiler.benchmark = _fake_benchmark  # type: ignore[attr-defined]
    cupyx.profiler = profiler  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
    monkeypatch.setitem(sys.modules, "cupyx.profiler", profiler)
    monkeypatch.setitem(sys.modules, "array_api_compat.cupy", array_api_compat.numpy)
    # nvidia-smi must not answer for a real card while the fake one is in place
    monkeypatch.setenv("PATH", "/nonexistent")
    return cupy


def local_cross_entropy(
    logits: Any, target: Any, /, *, axis: int = -1, reduction: str = "mean"
) -> Any:
    """A small naive stand-in with the signature of ``ps.cross_entropy`` (mean only)."""
    assert axis == -1
    assert reduction == "mean"
    shifted = logits - logits.max(axis=-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(logp, target[..., None], axis=-1)
    return -picked.sum() / max(1, target.size)


def local_cross_entropy_backward(
    logits: Any, target: Any, /, *, grad: Any = None, axis: int = -1, reduction: str = "mean"
) -> Any:
    """The gradient of :func:`local_cross_entropy`."""
    assert grad is None
    assert axis == -1
    assert reduction == "mean"
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    onehot = np.arange(logits.shape[-1]) == target[..., None]
    return (p - onehot) / max(1, target.size)


@pytest.fixture
def with_cross_entropy(monkeypatch: pytest.MonkeyPatch) -> None:
    """portable_softmax as it will be once cross_entropy lands (a local stand-in)."""
    import portable_softmax as ps

    monkeypatch.setattr(ps, "cross_entropy", local_cross_entropy, raising=False)
    monkeypatch.setattr(ps, "cross_entropy_backward", local_cross_entropy_backward, raising=False)


@pytest.fixture
def without_cross_entropy(monkeypatch: pytest.MonkeyPatch) -> None:
    """portable_softmax without cross_entropy (as on main before it lands)."""
    import portable_softmax as ps

    monkeypatch.delattr(ps, "cross_entropy", raising=False)
    monkeypatch.delattr(ps, "cross_entropy_backward", raising=False)
    monkeypatch.delattr(ps, "cross_entropy_with_grad", raising=False)


_VECTORS = {"llvm_cpu": "stand-in", "zmm": 0, "ymm": 1, "xmm": 1, "width_bits": 256}


@pytest.fixture(autouse=True)
def _no_vector_probe(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs in these tests report a stand-in vector width: the probe compiles a kernel
    in a subprocess (2-3 s a run). ``test_env.py`` runs the real one."""
    if request.module.__name__.endswith("test_env"):
        return
    from benchmarks import _env

    monkeypatch.setattr(_env, "kernel_vector_width", lambda: dict(_VECTORS))
