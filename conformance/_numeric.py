"""Glue shared by the numerical test modules: dtypes, inputs, and one call on a backend.

Inputs are made in NumPy float64, rounded to the dtype under test (so the reference sees
exactly the values the implementation receives), sent to the backend, and the result comes
back as NumPy after its namespace, dtype and shape were checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from conformance import _reference as ref
from conformance._framework import assert_array_like

FLOATS = ("float16", "bfloat16", "float32", "float64")
FORWARD = ("softmax", "log_softmax", "logsumexp")


def need_dtype(backend: Any, name: str) -> None:
    """Skip (with the reason) when the backend has no dtype ``name``."""
    if not backend.supports(name):
        pytest.skip(f"{backend.name} has no {name}")


def result_dtype(backend: Any, name: str) -> str:
    """Floating dtype of the result for an input of dtype ``name`` (SPEC section 2)."""
    return name if name in FLOATS else backend.default_float


def prepare(x: Any, dtype: str) -> np.ndarray:
    """float64 values of ``x`` rounded to ``dtype`` (integers and bools kept exact)."""
    x = np.asarray(x)
    if dtype in FLOATS:
        return ref.round_to(x.astype(np.float64), dtype)
    return x.astype(dtype)


def as_float(x: np.ndarray, backend: Any, dtype: str) -> np.ndarray:
    """The float64 values the implementation works on after promotion (SPEC section 2)."""
    return ref.round_to(np.asarray(x, dtype=np.float64), result_dtype(backend, dtype))


def reduced_shape(
    shape: tuple[int, ...], axis: ref.Axis, keepdims: bool = False
) -> tuple[int, ...]:
    """Shape of a reduction of ``shape`` over ``axis``."""
    axes = ref.normalize_axis(axis, len(shape))
    if keepdims:
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def call(
    backend: Any,
    fn: Callable[..., Any],
    arrays: tuple[np.ndarray, ...],
    dtypes: tuple[str, ...],
    *,
    out_dtype: str,
    out_shape: tuple[int, ...],
    context: str,
    **options: Any,
) -> np.ndarray:
    """Call ``fn`` on backend arrays and return the checked result as NumPy.

    ``options`` holding NumPy arrays (``where``, ``temperature``) are sent to the backend
    too: boolean ones as bool, floating ones in the dtype of the first array.
    """
    __tracebackhide__ = True
    args = tuple(backend.asarray(a, d) for a, d in zip(arrays, dtypes, strict=True))
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, np.ndarray):
            d = (
                "bool"
                if value.dtype == np.bool_
                else (dtypes[0] if dtypes[0] in FLOATS else backend.default_float)
            )
            value = backend.asarray(value, d)
        kwargs[key] = value
    out = fn(*args, **kwargs)
    assert_array_like(out, xp=backend.xp, dtype=out_dtype, shape=out_shape, context=context)
    return np.asarray(backend.to_numpy(out), dtype=np.float64)


def forward_reference(name: str, x: np.ndarray, **options: Any) -> ref.Ref:
    """Cached mpmath reference of a forward function."""
    fn = {"softmax": ref.softmax, "log_softmax": ref.log_softmax, "logsumexp": ref.logsumexp}
    return ref.cached(fn[name], x, **options)


def forward_bound(name: str, x: np.ndarray, **options: Any) -> np.ndarray:
    """SPEC section 3 bound (in eps) of a forward function, per output entry."""
    if name == "softmax":
        return ref.bound_softmax(x, **options)
    if name == "log_softmax":
        return ref.bound_log_softmax(x, **options)
    return ref.bound_logsumexp(x, **options)


def check_forward(
    backend: Any,
    impl: Any,
    name: str,
    x: np.ndarray,
    dtype: str,
    *,
    context: str = "",
    **options: Any,
) -> np.ndarray:
    """Run a forward function on ``x`` (already rounded to ``dtype``) and check it.

    Checks the kind of the result, every entry against the mpmath reference under the SPEC
    section 3 bound, and records the worst error. Returns the result as float64 NumPy.
    """
    __tracebackhide__ = True
    from conformance._framework import require

    keys = [k for k in ("where", "temperature", "keepdims") if k in options]
    fn = require(impl, name, *keys)
    axis = options.get("axis", -1)
    shape = (
        reduced_shape(x.shape, axis, options.get("keepdims", False))
        if name == "logsumexp"
        else x.shape
    )
    shown = ", ".join(
        f"{k}={'array' if isinstance(v, np.ndarray) else v!r}" for k, v in options.items()
    )
    context = context or f"{name}({dtype}{x.shape}, {shown})"
    out = call(
        backend,
        fn,
        (x,),
        (dtype,),
        out_dtype=result_dtype(backend, dtype),
        out_shape=shape,
        context=context,
        **options,
    )
    xf = as_float(x, backend, dtype)
    ropts = dict(options)
    t = ropts.get("temperature")
    if t is not None:
        # the temperature meets x in x's floating dtype (half inputs compute in float32)
        ropts["temperature"] = ref.round_to(np.asarray(t, np.float64), compute(backend, dtype))
    r = forward_reference(name, xf, **ropts)
    bopts = {k: v for k, v in ropts.items() if k != "keepdims" or name == "logsumexp"}
    if name == "logsumexp":
        bopts.pop("temperature", None)
    bound = forward_bound(name, xf, **bopts)
    ref.check(
        out, r, bound, result_dtype(backend, dtype), relative=name == "softmax", context=context
    )
    return out


def compute(backend: Any, dtype: str) -> str:
    """dtype the arithmetic runs in: float32 for half inputs, else the result dtype."""
    out = result_dtype(backend, dtype)
    return "float32" if out in ref.HALF else out
