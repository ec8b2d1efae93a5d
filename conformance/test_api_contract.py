"""The API contract (SPEC sections 1 and 2): what every call promises besides its values.

Namespace, device, dtype and shape kept; integer inputs promoted before any arithmetic;
inputs never mutated; every kind of bad input refused with the right exception naming the
argument; no floating-point warnings; no computation on Dask and no host synchronisation on
CuPy during a call; traceable under ``jax.jit``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np
import pytest

from conformance._framework import assert_array_like, assert_close, require
from conformance._framework.backends import Backend
from conformance._framework.provided import CROSS_ENTROPY_FUNCTIONS, cross_entropy_function

pytestmark = pytest.mark.api

FLOATS = ("float16", "bfloat16", "float32", "float64")


@dataclass(frozen=True)
class Fn:
    """One core function: how to build its array arguments and the result's shape."""

    name: str
    arg_names: tuple[str, ...]
    reduces: bool = False  # logsumexp drops the reduced axes

    def arrays(self, x: np.ndarray, axis: int | None = -1) -> list[np.ndarray]:
        """NumPy arguments for input ``x``: x itself, or (grad/tangent, y/logp)."""
        if len(self.arg_names) == 1:
            return [x]
        shifted = x - x.max(axis=axis, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        second = logp if "logp" in self.arg_names else np.exp(logp)
        g = np.cos(np.arange(x.size, dtype=np.float64)).reshape(x.shape)  # mixed signs
        return [g, second]

    def out_shape(self, shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
        if not self.reduces:
            return shape
        return tuple(s for i, s in enumerate(shape) if i != axis % len(shape))


CORE = (
    Fn("softmax", ("x",)),
    Fn("log_softmax", ("x",)),
    Fn("logsumexp", ("x",), reduces=True),
    Fn("softmax_backward", ("grad", "y")),
    Fn("log_softmax_backward", ("grad", "logp")),
    Fn("softmax_jvp", ("tangent", "y")),
    Fn("log_softmax_jvp", ("tangent", "logp")),
)
FORWARD = CORE[:3]
DERIVATIVES = CORE[3:]
WITH_TEMPERATURE = tuple(f for f in CORE if f.name != "logsumexp")


def _ids(fns: tuple[Fn, ...]) -> list[Any]:
    return [pytest.param(f, id=f.name) for f in fns]


def _x(shape: tuple[int, ...] = (3, 5)) -> np.ndarray:
    return np.linspace(-3.0, 4.0, int(np.prod(shape))).reshape(shape)


def _other_namespace_array(backend: Backend, data: np.ndarray) -> Any:
    """The same data in a different array library than the backend's."""
    if array_api_compat.is_numpy_namespace(backend.xp):
        strict = pytest.importorskip("array_api_strict")
        return strict.asarray(data)
    return data


def _raises(
    exc: type[Exception] | tuple[type[Exception], ...],
    names: tuple[str, ...],
    fn: Callable[..., Any],
    *args: Any,
    **kwargs: Any,
) -> str:
    """Call must raise ``exc`` with a message naming every string in ``names``."""
    __tracebackhide__ = True
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    for name in names:
        if not re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", message):
            raise AssertionError(f"message does not name {name!r}: {message!r}")
    return message


# -- kind of the result ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("fn", _ids(CORE))
def test_kind_kept(backend: Backend, impl: Any, fn: Fn, axis: int, dtype: str) -> None:
    """Same namespace, device and dtype as the input; the documented shape."""
    f = require(impl, fn.name, "axis")
    backend.require_dtype(dtype)
    x = _x()
    args = [backend.asarray(a, dtype) for a in fn.arrays(x, axis)]
    out = f(*args, axis=axis)
    assert_array_like(
        out,
        xp=backend.xp,
        dtype=dtype,
        shape=fn.out_shape(x.shape, axis),
        device=backend.device,
        context=f"{fn.name}(axis={axis}) [{dtype}]",
    )


@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_keepdims_shape(backend: Backend, impl: Any, keepdims: bool) -> None:
    """logsumexp(keepdims=True) keeps size-1 reduced axes."""
    f = require(impl, "logsumexp", "axis", "keepdims")
    x = backend.asarray(_x((2, 3, 4)), backend.default_float)
    out = f(x, axis=(0, 2), keepdims=keepdims)
    shape = (1, 3, 1) if keepdims else (3,)
    assert_array_like(
        out,
        xp=backend.xp,
        dtype=backend.default_float,
        shape=shape,
        device=backend.device,
        context=f"logsumexp(axis=(0, 2), keepdims={keepdims})",
    )


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_cross_entropy_kind(backend: Backend, impl: Any, reduction: str) -> None:
    """cross_entropy: per-sample shape for "none", 0-d otherwise; the gradient like logits."""
    loss_fn = require(impl, "cross_entropy", "reduction")
    grad_fn = require(impl, "cross_entropy_backward", "reduction")
    dtype = "float32"
    logits = backend.asarray(_x((4, 5)), dtype)
    target = backend.asarray(np.array([0, 4, 2, 1]), backend.int_dtype())
    loss = loss_fn(logits, target, reduction=reduction)
    shape = (4,) if reduction == "none" else ()
    assert_array_like(
        loss,
        xp=backend.xp,
        dtype=dtype,
        shape=shape,
        device=backend.device,
        context=f"cross_entropy(reduction={reduction!r})",
    )
    grad = grad_fn(logits, target, reduction=reduction)
    assert_array_like(
        grad,
        xp=backend.xp,
        dtype=dtype,
        shape=(4, 5),
        device=backend.device,
        context=f"cross_entropy_backward(reduction={reduction!r})",
    )


def test_cross_entropy_logits_dtype_wins(backend: Backend, impl: Any) -> None:
    """Probability targets in float64 are cast to float32 logits' dtype, not the reverse."""
    loss_fn = require(impl, "cross_entropy", "reduction")
    backend.require_dtype("float64")
    logits = backend.asarray(_x((2, 3)), "float32")
    target = backend.asarray(np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]]), "float64")
    out = loss_fn(logits, target, reduction="none")
    assert_array_like(
        out,
        xp=backend.xp,
        dtype="float32",
        shape=(2,),
        device=backend.device,
        context="cross_entropy(float32 logits, float64 target)",
    )


# -- promotion of integer and bool inputs ------------------------------------------------------


def _int_case(dtype: str) -> np.ndarray:
    """Integer data whose differences overflow or wrap in ``dtype`` itself."""
    if dtype == "bool":
        return np.array([[True, False, True], [False, False, True]])
    if dtype.startswith("uint"):
        return np.array([[0, 255, 3], [255, 0, 0]])  # 0 - 255 wraps in unsigned arithmetic
    info = np.iinfo(dtype)
    hi, lo = info.max // 2 + 1, info.min // 2 - 1  # hi - lo overflows
    return np.array([[hi, lo, 0], [1, 2, 3]])


@pytest.mark.parametrize("dtype", ["bool", "int8", "int16", "int32", "int64", "uint8"])
@pytest.mark.parametrize("fn", _ids(FORWARD))
@pytest.mark.convention("no_integer_promotion")
def test_integer_promoted_before_arithmetic(
    backend: Backend, impl: Any, fn: Fn, dtype: str
) -> None:
    """Integer and bool inputs give the default float, computed as if given as floats."""
    f = require(impl, fn.name, "axis")
    backend.require_dtype(dtype)
    data = _int_case(dtype)
    out = f(backend.asarray(data, dtype), axis=1)
    want = backend.default_float
    # Reference: the same function on the data already converted to float64.
    xf = data.astype(np.float64)
    shifted = xf - xf.max(axis=1, keepdims=True)
    lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    ref = {
        "softmax": np.exp(shifted - lse),
        "log_softmax": shifted - lse,
        "logsumexp": (xf.max(axis=1, keepdims=True) + lse)[:, 0],
    }[fn.name]
    eps = float(np.finfo(want).eps)
    scale = np.maximum(np.abs(ref), 1.0) if fn.name != "softmax" else 1.0
    assert_close(
        out,
        ref,
        backend=backend,
        dtype=want,
        rtol=0,
        atol=64 * eps * np.max(scale),
        context=f"{fn.name}({dtype} input, axis=1)",
    )


@pytest.mark.convention("no_integer_promotion")
def test_uint8_does_not_wrap(backend: Backend, impl: Any) -> None:
    """log_softmax of uint8 [0, 255] is [-255, 0], not the wrapped [-1, 0]."""
    f = require(impl, "log_softmax", "axis")
    backend.require_dtype("uint8")
    out = f(backend.asarray(np.array([0, 255]), "uint8"), axis=-1)
    assert_close(
        out,
        np.array([-255.0, 0.0]),
        backend=backend,
        dtype=backend.default_float,
        atol=1e-3,
        context="log_softmax(uint8 [0, 255])",
    )


# -- inputs not mutated ------------------------------------------------------------------------


@contextlib.contextmanager
def _unchanged(backend: Backend, arrays: list[Any], context: str) -> Iterator[None]:
    __tracebackhide__ = True
    before = [backend.to_numpy(a) for a in arrays]
    versions = [getattr(a, "_version", None) for a in arrays]  # torch's in-place counter
    yield
    for i, (a, b, v) in enumerate(zip(arrays, before, versions, strict=True)):
        np.testing.assert_array_equal(
            backend.to_numpy(a), b, err_msg=f"argument {i} was modified [{context}]"
        )
        assert getattr(a, "_version", None) == v, f"argument {i} was written in place [{context}]"


@pytest.mark.parametrize("fn", _ids(CORE))
def test_inputs_not_mutated(backend: Backend, impl: Any, fn: Fn) -> None:
    """No argument is written to, including masks and temperature arrays."""
    f = require(impl, fn.name, "axis", "where")
    dtype = backend.default_float
    x = _x((3, 4))
    x[0, 1] = -np.inf
    args = [backend.asarray(a, dtype) for a in fn.arrays(x, -1)]
    where = backend.asarray(np.array([True, False, True, True]), "bool")
    kwargs: dict[str, Any] = {"axis": -1, "where": where}
    if fn in WITH_TEMPERATURE and "temperature" in _params(f):
        kwargs["temperature"] = backend.asarray(np.full((3, 1), 0.5), dtype)
    watched = [*args, where, *([kwargs["temperature"]] if "temperature" in kwargs else [])]
    with _unchanged(backend, watched, fn.name):
        backend.to_numpy(f(*args, **kwargs))


def _params(f: Any) -> set[str]:
    import inspect

    try:
        return set(inspect.signature(f).parameters)
    except (TypeError, ValueError):
        return set()


def test_cross_entropy_inputs_not_mutated(backend: Backend, impl: Any) -> None:
    """cross_entropy and its backward leave logits, target, weight and grad alone."""
    loss_fn = require(impl, "cross_entropy", "weight", "label_smoothing", "reduction")
    grad_fn = require(impl, "cross_entropy_backward", "weight", "label_smoothing", "reduction")
    dtype = backend.default_float
    logits = backend.asarray(_x((3, 4)), dtype)
    target = backend.asarray(np.array([0, 3, 1]), backend.int_dtype())
    weight = backend.asarray(np.array([1.0, 2.0, 0.5, 1.5]), dtype)
    grad = backend.asarray(np.array([1.0, -2.0, 0.5]), dtype)
    with _unchanged(backend, [logits, target, weight, grad], "cross_entropy"):
        opts = {"weight": weight, "label_smoothing": 0.1}
        backend.to_numpy(loss_fn(logits, target, reduction="none", **opts))
        backend.to_numpy(grad_fn(logits, target, grad=grad, reduction="none", **opts))


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", _ids(CORE))
@pytest.mark.convention("accepts_lists", "own_validation_errors")
def test_list_and_scalar_refused(backend: Backend, impl: Any, fn: Fn) -> None:
    """A list or Python scalar is a TypeError naming the argument (no silent conversion)."""
    f = require(impl, fn.name)
    x = _x((2, 3))
    arrays = [backend.asarray(a, backend.default_float) for a in fn.arrays(x)]
    for i, name in enumerate(fn.arg_names):
        for bad in (fn.arrays(x)[i].tolist(), 1.5):
            args = list(arrays)
            args[i] = bad
            _raises(TypeError, (name,), f, *args)


@pytest.mark.parametrize("fn", _ids(CORE))
@pytest.mark.convention("own_validation_errors")
def test_mixed_namespaces_refused(backend: Backend, impl: Any, fn: Fn) -> None:
    """Arrays from two libraries in one call: TypeError naming the arguments."""
    f = require(impl, fn.name, "where")
    x = _x((2, 3))
    arrays = [backend.asarray(a, backend.default_float) for a in fn.arrays(x)]
    foreign_mask = _other_namespace_array(backend, np.ones((2, 3), dtype=bool))
    _raises(TypeError, ("where",), f, *arrays, where=foreign_mask)
    if len(arrays) == 2:
        foreign = _other_namespace_array(backend, fn.arrays(x)[0])
        _raises(TypeError, fn.arg_names, f, foreign, arrays[1])


@pytest.mark.parametrize("axis", [2, -3, (0, 2), (1, 1), (1, -1)])
@pytest.mark.parametrize("fn", _ids(CORE))
@pytest.mark.convention("own_validation_errors")
def test_bad_axis_value(backend: Backend, impl: Any, fn: Fn, axis: Any) -> None:
    """An axis out of range or repeated is a ValueError naming axis."""
    f = require(impl, fn.name, "axis")
    arrays = [backend.asarray(a, backend.default_float) for a in fn.arrays(_x((2, 3)))]
    _raises(ValueError, ("axis",), f, *arrays, axis=axis)


@pytest.mark.parametrize("axis", [1.0, "1", (0, 1.0)])
@pytest.mark.parametrize("fn", _ids(CORE))
@pytest.mark.convention("own_validation_errors")
def test_bad_axis_type(backend: Backend, impl: Any, fn: Fn, axis: Any) -> None:
    """A float or string axis is a TypeError naming axis."""
    f = require(impl, fn.name, "axis")
    arrays = [backend.asarray(a, backend.default_float) for a in fn.arrays(_x((2, 3)))]
    _raises(TypeError, ("axis",), f, *arrays, axis=axis)


@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("fn", _ids(CORE))
@pytest.mark.convention("own_validation_errors")
def test_int_axis_on_0d_suggests_none(backend: Backend, impl: Any, fn: Fn, axis: int) -> None:
    """An int axis on a 0-d input is a ValueError that suggests axis=None."""
    f = require(impl, fn.name, "axis")
    arrays = [
        backend.asarray(np.asarray(a), backend.default_float)
        for a in fn.arrays(np.array(1.5), axis=None)
    ]
    message = _raises(ValueError, ("axis",), f, *arrays, axis=axis)
    assert "axis=None" in message, message


@pytest.mark.parametrize("fn", _ids(CORE))
@pytest.mark.convention("own_validation_errors")
def test_bad_where(backend: Backend, impl: Any, fn: Fn) -> None:
    """A non-boolean mask is a TypeError, a mask that does not broadcast a ValueError."""
    f = require(impl, fn.name, "where")
    arrays = [backend.asarray(a, backend.default_float) for a in fn.arrays(_x((2, 3)))]
    float_mask = backend.asarray(np.ones((2, 3)), backend.default_float)
    _raises(TypeError, ("where",), f, *arrays, where=float_mask)
    int_mask = backend.asarray(np.ones((2, 3)), backend.int_dtype())
    _raises(TypeError, ("where",), f, *arrays, where=int_mask)
    for shape in ((2,), (4, 3), (2, 3, 2)):
        mask = backend.asarray(np.ones(shape, dtype=bool), "bool")
        _raises(ValueError, ("where",), f, *arrays, where=mask)


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf"), -0.0])
@pytest.mark.parametrize("fn", _ids(WITH_TEMPERATURE))
@pytest.mark.convention("own_validation_errors")
def test_bad_temperature_value(backend: Backend, impl: Any, fn: Fn, value: float) -> None:
    """A temperature that is not a positive finite float is a ValueError naming it."""
    f = require(impl, fn.name, "temperature")
    arrays = [backend.asarray(a, backend.default_float) for a in fn.arrays(_x((2, 3)))]
    _raises(ValueError, ("temperature",), f, *arrays, temperature=value)


@pytest.mark.parametrize("fn", _ids(WITH_TEMPERATURE))
@pytest.mark.convention("own_validation_errors")
def test_bad_temperature_type_and_shape(backend: Backend, impl: Any, fn: Fn) -> None:
    """A bool temperature is a TypeError; an array not of the reduced shape a ValueError."""
    f = require(impl, fn.name, "axis", "temperature")
    dtype = backend.default_float
    arrays = [backend.asarray(a, dtype) for a in fn.arrays(_x((2, 3)))]
    _raises(TypeError, ("temperature",), f, *arrays, axis=1, temperature=True)
    _raises(TypeError, ("temperature",), f, *arrays, axis=1, temperature="2.0")
    for shape in ((3,), (2, 3), (2,), (1, 3)):
        t = backend.asarray(np.full(shape, 2.0), dtype)
        _raises(ValueError, ("temperature",), f, *arrays, axis=1, temperature=t)
    # Well-shaped arrays are accepted: size 1 on the reduced axis.
    for shape in ((2, 1), (1, 1), (1,), ()):
        t = backend.asarray(np.full(shape, 2.0), dtype)
        backend.to_numpy(f(*arrays, axis=1, temperature=t))


@pytest.mark.parametrize("fn", _ids(CORE))
@pytest.mark.convention("own_validation_errors")
def test_complex_refused(backend: Backend, impl: Any, fn: Fn) -> None:
    """Complex input is a TypeError naming the argument."""
    f = require(impl, fn.name)
    cdtype = "complex128" if backend.supports("complex128") else "complex64"
    backend.require_dtype(cdtype)
    arrays = [backend.asarray(a + 0.5j, cdtype) for a in fn.arrays(_x((2, 3)))]
    message = _raises(TypeError, (), f, *arrays)
    assert any(re.search(rf"\b{n}\b", message) for n in fn.arg_names), message


@pytest.mark.parametrize("fn", _ids(DERIVATIVES))
@pytest.mark.convention("own_validation_errors")
def test_derivative_shape_mismatch_names_both_shapes(backend: Backend, impl: Any, fn: Fn) -> None:
    """grad (or tangent) and y (or logp) of different shapes: ValueError with both shapes."""
    f = require(impl, fn.name)
    dtype = backend.default_float
    g = backend.asarray(_x((2, 3)), dtype)
    y = backend.asarray(np.full((2, 4), 0.25), dtype)
    message = _raises(ValueError, fn.arg_names, f, g, y)
    for shape in ("2, 3", "2, 4"):
        assert shape in message, f"message does not show shape ({shape}): {message!r}"


def _ce_inputs(backend: Backend) -> tuple[Any, Any]:
    logits = backend.asarray(_x((3, 4)), backend.default_float)
    target = backend.asarray(np.array([0, 3, 1]), backend.int_dtype())
    return logits, target


@pytest.mark.parametrize("name", CROSS_ENTROPY_FUNCTIONS)
@pytest.mark.convention("own_validation_errors")
def test_cross_entropy_bad_options(backend: Backend, impl: Any, name: str) -> None:
    """Bad reduction, label_smoothing, target shape, weight shape, ignore_index use."""
    f = cross_entropy_function(
        impl, name, "reduction", "label_smoothing", "weight", "ignore_index", "axis"
    )
    logits, target = _ce_inputs(backend)
    _raises(ValueError, ("reduction", "avg"), f, logits, target, reduction="avg")
    for eps in (-0.1, 1.5, float("nan")):
        _raises(ValueError, ("label_smoothing",), f, logits, target, label_smoothing=eps)
    for shape in ((4,), (3, 4, 1)):
        bad = backend.asarray(np.zeros(shape, dtype=np.int32), backend.int_dtype())
        message = _raises(ValueError, ("target",), f, logits, bad)
        assert "3, 4" in message, message
    weight = backend.asarray(np.ones(5), backend.default_float)
    _raises(ValueError, ("weight",), f, logits, target, weight=weight)
    probs = backend.asarray(np.full((3, 4), 0.25), backend.default_float)
    _raises(ValueError, ("ignore_index",), f, logits, probs, ignore_index=0)
    logits3 = backend.asarray(_x((2, 3, 4)), backend.default_float)
    labels2 = backend.asarray(np.zeros((2,), dtype=np.int32), backend.int_dtype())
    _raises(ValueError, ("axis",), f, logits3, labels2, axis=(1, 2))
    float_labels = backend.asarray(np.array([0.0, 3.0, 1.0]), backend.default_float)
    _raises((TypeError, ValueError), ("target",), f, logits, float_labels)


@pytest.mark.convention("own_validation_errors")
def test_cross_entropy_backward_grad_shape(backend: Backend, impl: Any) -> None:
    """cross_entropy_backward's grad must have the loss's shape."""
    f = require(impl, "cross_entropy_backward", "grad", "reduction")
    logits, target = _ce_inputs(backend)
    grad = backend.asarray(np.ones((4,)), backend.default_float)
    _raises(ValueError, ("grad",), f, logits, target, grad=grad, reduction="none")


def test_cross_entropy_invalid_label(backend: Backend, impl: Any) -> None:
    """validate=None: eager CPU raises naming the label; lazy/traced/GPU marks NaN."""
    f = require(impl, "cross_entropy", "validate", "reduction")
    logits = backend.asarray(_x((3, 4)), backend.default_float)
    target = backend.asarray(np.array([0, 7, 1]), backend.int_dtype())
    eager_cpu = not (
        backend.is_lazy or backend.is_gpu or array_api_compat.is_jax_namespace(backend.xp)
    )
    if eager_cpu:
        _raises(ValueError, ("7",), f, logits, target, reduction="none")
        _raises(ValueError, ("7",), f, logits, target, reduction="none", validate=True)
    else:
        _assert_only_sample_1_nan(backend.to_numpy(f(logits, target, reduction="none")))
    _assert_only_sample_1_nan(backend.to_numpy(f(logits, target, reduction="none", validate=False)))


def _assert_only_sample_1_nan(loss: np.ndarray) -> None:
    __tracebackhide__ = True
    np.testing.assert_array_equal(np.isnan(loss), [False, True, False], err_msg="NaN marks")


# -- no floating-point warnings ----------------------------------------------------------------

_EXTREME = np.array(
    [
        [np.inf, 1.0, 2.0, -np.inf],
        [-np.inf, -np.inf, -np.inf, -np.inf],
        [np.nan, 1.0, np.inf, -np.inf],
        [np.finfo(np.float64).max, -np.finfo(np.float64).max, 0.0, 1.0],
        [np.inf, np.inf, 0.0, 0.0],
        [5e-324, -5e-324, 0.0, 1e308],
    ]
)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("fn", _ids(CORE))
def test_no_floating_point_warnings(backend: Backend, impl: Any, fn: Fn, dtype: str) -> None:
    """Extreme documented inputs (inf, NaN, all -inf, the largest floats) raise no warning.

    pytest turns warnings into errors; on NumPy and Dask the floating-point error state is
    also set to raise, and the lazy result is computed inside it.
    """
    f = require(impl, fn.name, "axis", "where")
    backend.require_dtype(dtype)
    with np.errstate(all="ignore"):
        x = _EXTREME.astype(dtype if dtype != "bfloat16" else "float32")
    where = backend.asarray(np.array([True, True, False, True]), "bool")
    if len(fn.arg_names) == 1:
        arrays = [backend.asarray(x, dtype)]
    else:
        y = np.array(
            [
                [0.0, 0.0, 1.0, 0.0],
                [0.25] * 4,
                [np.nan] * 4,
                [1.0, 0.0, 0.0, 0.0],
                [0.5, 0.5, 0.0, 0.0],
                [0.0, 0.0, 0.0, 1.0],
            ]
        )
        with np.errstate(divide="ignore"):
            second = np.log(y) if "logp" in fn.arg_names else y
        g = np.array([1.0, -2.0, 3.0, 1e300])[None, :].repeat(6, axis=0)
        with np.errstate(all="ignore"):
            arrays = [backend.asarray(g.astype(np.float64), dtype), backend.asarray(second, dtype)]
    with np.errstate(all="raise"):
        for kwargs in ({"axis": -1}, {"axis": -1, "where": where}, {"axis": None}):
            backend.to_numpy(f(*arrays, **kwargs))
        empty = [backend.asarray(np.zeros((2, 0)), dtype) for _ in arrays]
        backend.to_numpy(f(*empty, axis=-1))
        zero_d = [backend.asarray(np.array(-np.inf), dtype) for _ in arrays]
        backend.to_numpy(f(*zero_d, axis=None))


# -- laziness, synchronisation, tracing --------------------------------------------------------


def _needs_sync_check(backend: Backend) -> None:
    if not (backend.is_lazy or backend.is_gpu):
        pytest.skip(f"{backend.name} is eager on the host: there is nothing to synchronise")


@pytest.mark.parametrize("fn", _ids(CORE))
def test_no_compute_or_sync_during_call(backend: Backend, impl: Any, fn: Fn) -> None:
    """Dask: nothing computed during the call; CuPy: no host synchronisation."""
    _needs_sync_check(backend)
    f = require(impl, fn.name, "axis", "where")
    dtype = backend.default_float
    x = _x((4, 6))
    arrays = [backend.asarray(a, dtype) for a in fn.arrays(x, -1)]
    where = backend.asarray(np.arange(6) % 3 != 0, "bool")
    kwargs: dict[str, Any] = {"axis": -1, "where": where}
    if "temperature" in _params(f):
        kwargs["temperature"] = backend.asarray(np.full((4, 1), 0.5), dtype)
    calls = [{"axis": -1}, {"axis": (0, 1)}, {"axis": None}, kwargs]
    with backend.forbid_sync():
        outs = [f(*arrays, **kw) for kw in calls]
    for out in outs:
        if backend.is_lazy:
            assert array_api_compat.is_lazy_array(out), f"{fn.name} returned {type(out)}"
        assert np.isfinite(backend.to_numpy(out)).any()


@pytest.mark.parametrize("name", CROSS_ENTROPY_FUNCTIONS)
def test_cross_entropy_no_compute_or_sync(backend: Backend, impl: Any, name: str) -> None:
    """Cross-entropy with validate=None stays lazy on Dask and synchronisation-free on CuPy."""
    _needs_sync_check(backend)
    f = cross_entropy_function(impl, name, "reduction", "weight")
    logits, target = _ce_inputs(backend)
    weight = backend.asarray(np.array([1.0, 2.0, 0.5, 1.5]), backend.default_float)
    with backend.forbid_sync():
        outs = [f(logits, target, reduction=r, weight=weight) for r in ("none", "sum", "mean")]
    for out in outs:
        assert np.isfinite(backend.to_numpy(out)).all()


def _jax_only(backend: Backend) -> Any:
    if not array_api_compat.is_jax_namespace(backend.xp):
        pytest.skip("jax.jit applies to JAX arrays only")
    import jax

    return jax


@pytest.mark.parametrize("fn", _ids(CORE))
def test_traceable_under_jit(backend: Backend, impl: Any, fn: Fn) -> None:
    """Under jax.jit (arrays traced, mask and temperature array too) the results match eager."""
    jax = _jax_only(backend)
    f = require(impl, fn.name, "axis", "where")
    dtype = backend.default_float
    arrays = [backend.asarray(a, dtype) for a in fn.arrays(_x((4, 6)), -1)]
    where = backend.asarray(np.arange(6) % 3 != 0, "bool")
    kwargs: dict[str, Any] = {"where": where}
    if "temperature" in _params(f):
        kwargs["temperature"] = backend.asarray(np.full((4, 1), 0.5), dtype)
    eager = backend.to_numpy(f(*arrays, axis=-1, **kwargs))
    traced = jax.jit(lambda *a, **kw: f(*a, axis=-1, **kw))(*arrays, **kwargs)
    eps = float(np.finfo(dtype).eps)
    assert_close(
        traced,
        eager,
        backend=backend,
        dtype=dtype,
        rtol=8 * eps,
        atol=8 * eps,
        context=f"jax.jit({fn.name})",
    )


@pytest.mark.parametrize("name", CROSS_ENTROPY_FUNCTIONS)
def test_cross_entropy_traceable_under_jit(backend: Backend, impl: Any, name: str) -> None:
    """Cross-entropy (validate=None) traces under jax.jit and matches eager."""
    jax = _jax_only(backend)
    f = cross_entropy_function(impl, name, "reduction")
    logits, target = _ce_inputs(backend)
    eager = backend.to_numpy(f(logits, target, reduction="mean"))
    traced = jax.jit(lambda a, b: f(a, b, reduction="mean"))(logits, target)
    eps = float(np.finfo(backend.default_float).eps)
    assert_close(
        traced,
        eager,
        backend=backend,
        dtype=backend.default_float,
        rtol=16 * eps,
        atol=16 * eps,
        context=f"jax.jit({name})",
    )
