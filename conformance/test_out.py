"""``out=`` (SPEC sections 1-2), on every backend and path: the result lands in ``out``, which
is returned, whether ``out`` is a separate array or one of the inputs (in place); no other
input changes; the aliasing, shape, dtype and library errors; JAX and Dask refuse ``out``;
PyTorch refuses it where autograd would record the call; the fast paths write into ``out``
without allocating an array's worth of memory.

The expected values are float64 NumPy formulas written out here, never the package's output.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import portable_softmax as ps
from conformance._framework.processes import run_python

pytestmark = pytest.mark.api

READ_ONLY = ("jax", "jax_x64", "dask")
"""Backends whose arrays cannot be written in place."""


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))  # type: ignore[no-any-return]


def _ce_gradient(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    onehot = np.zeros_like(x)
    onehot[np.arange(x.shape[0]), labels] = 1.0
    return (_softmax(x) - onehot) / x.shape[0]  # type: ignore[no-any-return]


def _ce_loss(x: np.ndarray, labels: np.ndarray) -> float:
    return float(-_log_softmax(x)[np.arange(x.shape[0]), labels].mean())


Reference = Callable[[dict[str, np.ndarray]], np.ndarray]


class Function:
    """A public function with ``out``: its array arguments (in order), how to call it, and
    the float64 reference of its (gradient) result."""

    def __init__(self, arrays: tuple[str, ...], call: Callable[..., Any], want: Reference):
        self.arrays = arrays
        self.call = call
        self.want = want

    @property
    def floating(self) -> tuple[str, ...]:
        """The inputs ``out`` may be (the labels are integers)."""
        return tuple(name for name in self.arrays if name != "labels")


def _sum(a: np.ndarray) -> np.ndarray:
    return a.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


FUNCTIONS = {
    "softmax": Function(("x",), ps.softmax, lambda d: _softmax(d["x"])),
    "log_softmax": Function(("x",), ps.log_softmax, lambda d: _log_softmax(d["x"])),
    "softmax_backward": Function(
        ("grad", "y"),
        ps.softmax_backward,
        lambda d: d["y"] * (d["grad"] - _sum(d["grad"] * d["y"])),
    ),
    "softmax_jvp": Function(
        ("grad", "y"), ps.softmax_jvp, lambda d: d["y"] * (d["grad"] - _sum(d["grad"] * d["y"]))
    ),
    "log_softmax_backward": Function(
        ("grad", "logp"),
        ps.log_softmax_backward,
        lambda d: d["grad"] - np.exp(d["logp"]) * _sum(d["grad"]),
    ),
    "log_softmax_jvp": Function(
        ("grad", "logp"),
        ps.log_softmax_jvp,
        lambda d: d["grad"] - _sum(np.exp(d["logp"]) * d["grad"]),
    ),
    "cross_entropy_backward": Function(
        ("x", "labels"), ps.cross_entropy_backward, lambda d: _ce_gradient(d["x"], d["labels"])
    ),
    "cross_entropy_with_grad": Function(
        ("x", "labels"),
        lambda *a, **k: ps.cross_entropy_with_grad(*a, **k)[1],
        lambda d: _ce_gradient(d["x"], d["labels"]),
    ),
}

CASES = {
    # (shape, dtype): a small call (narrow rows), rows of the row kernels and the NumPy
    # path's blocks, and a long row (the NumPy path's column chunks). One dtype, and all
    # under numba's parallel threshold (256 KiB, or one row): the other variants run the
    # same loop bodies, and compiling each of them, in place and not, cost over a minute
    # of a run with numba's cache cold (float64 and in-place calls are in the suite too)
    "small-float32": ((6, 9), "float32"),
    "rows-float32": ((24, 2500), "float32"),
    "chunks-float32": ((1, 66000), "float32"),
}
TOLERANCE = {"float32": 2e-6}


def _data(shape: tuple[int, int], dtype: str) -> dict[str, np.ndarray]:
    """The inputs as float64 values already rounded to ``dtype`` (labels as int64)."""
    rng = np.random.default_rng(shape[0] * 7919 + shape[1])
    x = rng.normal(0.0, 3.0, shape).astype(dtype).astype(np.float64)
    return {
        "x": x,
        "y": _softmax(x).astype(dtype).astype(np.float64),
        "logp": _log_softmax(x).astype(dtype).astype(np.float64),
        "grad": rng.normal(0.0, 1.0, shape).astype(dtype).astype(np.float64),
        "labels": rng.integers(0, shape[1], shape[0]),
    }


def _arrays(backend: Any, data: dict[str, np.ndarray], dtype: str) -> dict[str, Any]:
    return {
        name: backend.asarray(value, backend.int_dtype() if name == "labels" else dtype)
        for name, value in data.items()
    }


def _place_ids() -> list[tuple[str, str]]:
    return [(name, place) for name, f in FUNCTIONS.items() for place in ("new", *f.floating)]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize(("name", "place"), _place_ids(), ids=[f"{n}-{p}" for n, p in _place_ids()])
def test_out_gets_the_result(backend: Any, path: str, name: str, place: str, case: str) -> None:
    """The result is written into ``out`` and ``out`` is returned, for a separate ``out``
    (``new``) and for ``out`` being each floating input in turn; the other inputs keep their
    values."""
    shape, dtype = CASES[case]
    backend.require_dtype(dtype)
    if path == "generic" and case != "small-float32":
        pytest.skip("the portable path computes, then copies into out: one case shows it")
    f = FUNCTIONS[name]
    data = _data(shape, dtype)
    arrays = _arrays(backend, data, dtype)
    args = [arrays[a] for a in f.arrays]
    if backend.name in READ_ONLY:
        with pytest.raises(TypeError, match=r"out="):
            f.call(*args, out=backend.asarray(np.zeros(shape), dtype))
        return
    out = backend.asarray(np.full(shape, 7.0), dtype) if place == "new" else arrays[place]
    result = f.call(*args, out=out)
    assert result is out, f"{name} did not return out"
    got = np.asarray(backend.to_numpy(out), np.float64)
    want = f.want(data)
    scale = np.maximum(1.0, np.abs(want))
    error = float(np.max(np.abs(got - want) / scale))
    assert error <= TOLERANCE[dtype], (name, place, case, error)
    for other in f.arrays:
        if other != place:
            kept = np.asarray(backend.to_numpy(arrays[other]), np.float64)
            np.testing.assert_array_equal(kept, data[other], err_msg=f"{name} changed {other}")


def test_with_grad_returns_the_loss_with_out(backend: Any) -> None:
    """``cross_entropy_with_grad(logits, t, out=logits)``: the loss is the loss of the
    logits as they were, the gradient overwrites them."""
    data = _data((40, 2500), "float32")
    arrays = _arrays(backend, data, "float32")
    if backend.name in READ_ONLY:
        pytest.skip(f"{backend.name} arrays cannot be written in place (tested above)")
    logits = arrays["x"]
    loss, grad = ps.cross_entropy_with_grad(logits, arrays["labels"], out=logits)
    assert grad is logits
    assert abs(float(backend.to_numpy(loss)) - _ce_loss(data["x"], data["labels"])) < 1e-5


def _errors(backend: Any) -> list[tuple[Callable[[], Any], type[Exception], str]]:
    x = backend.asarray(np.linspace(-2.0, 2.0, 24).reshape(4, 6), "float64")
    wrong_shape = backend.asarray(np.zeros((4, 5)), "float64")
    wrong_dtype = backend.asarray(np.zeros((4, 6)), "float32")
    cases = [
        (lambda: ps.softmax(x, out=wrong_shape), ValueError, r"out has shape \(4, 5\)"),
        (lambda: ps.log_softmax(x, out=wrong_dtype), TypeError, r"out has dtype \S*float32"),
        (lambda: ps.softmax(x, out=np.zeros((4, 6)).tolist()), TypeError, r"out"),
    ]
    if backend.name != "numpy":
        numpy_out = np.zeros((4, 6))
        cases.append((lambda: ps.softmax(x, out=numpy_out), TypeError, r"out"))
    return cases


def test_bad_out_is_refused_naming_it(backend: Any) -> None:
    """A wrong shape (ValueError), dtype or library (TypeError) names ``out`` and the fix."""
    if backend.name in READ_ONLY:
        x = backend.asarray(np.zeros((4, 6)), "float32")
        library = "Dask" if backend.name == "dask" else "JAX"
        with pytest.raises(TypeError, match=rf"out=, but {library} arrays cannot be written"):
            ps.softmax(x, out=x)
        return
    for call, error, message in _errors(backend):
        with pytest.raises(error, match=message):
            call()


def _overlapping(backend: Any) -> tuple[Any, Any, Any]:
    """An input and an ``out`` that share memory without being the same array."""
    base = backend.asarray(np.linspace(-2.0, 2.0, 56).reshape(8, 7), "float64")
    return base[1:5, :], base[0:4, :], base


def test_out_sharing_memory_with_an_input_is_refused(backend: Any) -> None:
    """``out`` overlapping an input (a shifted view) raises ValueError; the input is intact."""
    if backend.name in READ_ONLY:
        pytest.skip(f"{backend.name} arrays cannot be written in place (tested above)")
    if backend.name not in ("numpy", "torch", "array_api_strict", "cupy"):
        pytest.skip(f"no memory layout known for {backend.name}")
    x, out, base = _overlapping(backend)
    before = np.asarray(backend.to_numpy(base)).copy()
    with pytest.raises(ValueError, match=r"out shares memory with x"):
        ps.softmax(x, out=out)
    g = backend.asarray(np.ones((4, 7)), "float64")
    with pytest.raises(ValueError, match=r"out shares memory with y"):
        ps.softmax_backward(g, x, out=out)
    np.testing.assert_array_equal(np.asarray(backend.to_numpy(base)), before)


def test_interleaved_views_share_no_memory() -> None:
    """Views that interleave but share no element are accepted (exact NumPy test)."""
    base = np.linspace(-2.0, 2.0, 48).reshape(4, 12)
    x, out = base[:, ::2], base[:, 1::2]
    ps.softmax(x, out=out)
    np.testing.assert_allclose(out, _softmax(base[:, ::2]), rtol=1e-14)


def test_read_only_out_is_refused() -> None:
    out = np.zeros((2, 3))
    out.flags.writeable = False
    with pytest.raises(ValueError, match=r"out is read-only"):
        ps.softmax(np.ones((2, 3)), out=out)


def test_torch_out_is_refused_where_autograd_records() -> None:
    """As PyTorch's own ``out=`` functions: refused when an argument requires grad, unless
    under ``torch.no_grad()``."""
    torch = pytest.importorskip("torch")
    x = torch.linspace(-1.0, 1.0, 12, dtype=torch.float64).reshape(3, 4).requires_grad_()
    out = torch.empty(3, 4, dtype=torch.float64)
    with pytest.raises(RuntimeError, match=r"softmax\(\): functions with out=.*requires grad"):
        ps.softmax(x, out=out)
    with torch.no_grad():
        assert ps.softmax(x, out=out) is out
    want = _softmax(np.linspace(-1.0, 1.0, 12).reshape(3, 4))
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-14)


ALLOCATING = {
    "softmax": lambda x, o, labels: ps.softmax(x, out=o),
    "log_softmax": lambda x, o, labels: ps.log_softmax(x, out=o),
    "softmax_backward": lambda x, o, labels: ps.softmax_backward(x, x, out=o),
    "cross_entropy_with_grad": lambda x, o, labels: ps.cross_entropy_with_grad(x, labels, out=o),
}


@pytest.mark.parametrize("in_place", [False, True], ids=["separate", "in-place"])
@pytest.mark.parametrize("name", list(ALLOCATING))
def test_out_allocates_little(backend: Any, path: str, name: str, in_place: bool) -> None:
    """With ``out=``, a fast-path call allocates (NumPy, as tracemalloc sees it) under 5% of
    the bytes of a 16 MiB array (SPEC section 4; the NumPy path keeps one 256 KiB cache block
    of scratch whatever the size). The portable path computes a fresh result and copies
    it, so it is not held to this."""
    if backend.name != "numpy" or path == "generic":
        pytest.skip("held to the NumPy fast paths only (the portable path copies its result)")
    if path == "numpy" and in_place and name == "cross_entropy_with_grad":
        pytest.skip("the NumPy path's cross-entropy writes a fresh gradient when out=logits")
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 2.0, (1024, 4096)).astype(np.float32)
    labels = rng.integers(0, 4096, 1024)
    out = x.copy() if in_place else np.empty_like(x)
    target = out if in_place else x
    threads = ps.get_num_threads()
    ps.set_num_threads(1)  # the serial kernels: the other tests compiled them already
    try:
        ALLOCATING[name](target, out, labels)  # compiled and warm
        tracemalloc.start()
        try:
            ALLOCATING[name](target, out, labels)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        ps.set_num_threads(threads)
    assert peak < 0.05 * x.nbytes, (name, path, peak, x.nbytes)


def test_numba_out_allocates_little_in_the_process() -> None:
    """What tracemalloc cannot see (numba's own allocations): the peak resident memory of a
    process grows by under 5% of a 64 MiB array over forward, backward and cross-entropy
    calls with ``out=``, after a smaller warm-up call compiled the same kernels."""
    pytest.importorskip("numba")
    code = """
import resource
import numpy as np
import portable_softmax as ps

def calls(x, o, labels):
    ps.softmax(x, out=o)
    ps.softmax(o, out=o)
    ps.softmax_backward(x, o, out=o)
    ps.cross_entropy_with_grad(x, labels, out=o)
    ps.cross_entropy_with_grad(o, labels, out=o)

small = np.ones((512, 4096), np.float32)
calls(small, small.copy(), np.zeros(512, np.int64))  # same kernel variants, compiled
x = np.random.default_rng(0).normal(size=(4096, 4096)).astype(np.float32)
o = np.ones_like(x)
labels = np.zeros(4096, np.int64)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
calls(x, o, labels)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(after - before, x.nbytes)
"""
    env = {"PORTABLE_SOFTMAX_PATH": "numba", "PORTABLE_SOFTMAX_NUM_THREADS": "1"}
    done = run_python(code, set_env=env)
    assert done.returncode == 0, done.stderr
    grown, nbytes = map(int, done.stdout.split())
    assert grown < 0.05 * nbytes, (grown, nbytes)
