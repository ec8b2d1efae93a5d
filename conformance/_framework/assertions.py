"""Assertion helpers: the kind of array first, then the values.

Messages follow array-api-tests: ``out.dtype=float32, but should be float64
[softmax(axis=1)]``, so that a failure in any backend reads the same.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np

from .backends import dtype_name
from .errors import record_error


def _namespace_name(ns: Any) -> str:
    return str(getattr(ns, "__name__", ns))


def _same_namespace(a: Any, b: Any) -> bool:
    if a is b:
        return True
    # ``--xp numpy`` versus array_api_compat.numpy: one library, two module objects.
    canon = array_api_compat.array_namespace
    try:
        return bool(canon(a.asarray(0.0)) is canon(b.asarray(0.0)))
    except Exception:
        return False


def _shape_of(x: Any) -> tuple[Any, ...]:
    return tuple(
        int(s) if s is not None and not (isinstance(s, float) and math.isnan(s)) else s
        for s in x.shape
    )


def assert_array_like(
    out: Any,
    *,
    xp: Any,
    dtype: Any,
    shape: tuple[int, ...] | None,
    device: Any = None,
    context: str = "",
    name: str = "out",
) -> None:
    """Check that ``out`` is an array of namespace ``xp`` with the given dtype and shape.

    Parameters
    ----------
    out : array
        The result under test.
    xp : namespace
        The namespace ``out`` must belong to (``backend.xp``).
    dtype : str or dtype
        Expected dtype, by name (``"float32"``) or as a dtype object.
    shape : tuple of int or None
        Expected shape; None skips the shape check.
    device : object, optional
        Expected device (``backend.device``); None skips the device check.
    context : str
        Short description of the call for the message, e.g. ``"softmax(axis=1)"``.
    name : str
        How the result is called in messages.
    """
    __tracebackhide__ = True
    where = f" [{context}]" if context else ""
    try:
        ns = array_api_compat.array_namespace(out)
    except TypeError as exc:
        raise AssertionError(
            f"type({name})={type(out).__name__} is not an array ({exc}){where}"
        ) from None
    if not _same_namespace(ns, xp):
        raise AssertionError(
            f"namespace({name})={_namespace_name(ns)}, but should be {_namespace_name(xp)}{where}"
        )
    if device is not None:
        got = array_api_compat.device(out)
        if got != device:
            raise AssertionError(f"{name}.device={got}, but should be {device}{where}")
    want = dtype if isinstance(dtype, str) else dtype_name(dtype)
    got_dtype = dtype_name(out.dtype)
    if got_dtype != want:
        raise AssertionError(f"{name}.dtype={got_dtype}, but should be {want}{where}")
    if shape is not None and _shape_of(out) != tuple(shape):
        raise AssertionError(f"{name}.shape={_shape_of(out)}, but should be {tuple(shape)}{where}")


def assert_within_bound(err_in_eps: float, bound_in_eps: float, context: str = "") -> None:
    """Assert ``err <= bound`` (both in units of eps) and record the pair for the report."""
    __tracebackhide__ = True
    record_error(err_in_eps, bound_in_eps, context)
    if not err_in_eps <= bound_in_eps:  # also catches a NaN error
        where = f" [{context}]" if context else ""
        raise AssertionError(
            f"error={err_in_eps:.4g} eps, but should be <= {bound_in_eps:.4g} eps{where}"
        )


def assert_same_specials(actual: np.ndarray, desired: np.ndarray, context: str = "") -> None:
    """Assert NaN, +inf and -inf sit at the same positions in both NumPy arrays."""
    __tracebackhide__ = True
    where = f" [{context}]" if context else ""
    for label, test in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
        a, d = test(actual), test(desired)
        if not np.array_equal(a, d):
            idx = tuple(int(i) for i in np.argwhere(a != d)[0])
            raise AssertionError(
                f"out[{idx}]={actual[idx]!r}, but should be {desired[idx]!r} ({label} "
                f"positions differ){where}"
            )


def assert_close(
    out: Any,
    desired: Any,
    *,
    backend: Any,
    dtype: Any,
    shape: tuple[int, ...] | None = None,
    rtol: float = 0.0,
    atol: float = 0.0,
    context: str = "",
) -> np.ndarray:
    """Kind checks via :func:`assert_array_like`, then values against a NumPy reference.

    NaN and infinities must sit at the same positions; finite entries must satisfy
    ``|out - desired| <= atol + rtol * |desired|``. Returns ``out`` as a NumPy array.
    """
    __tracebackhide__ = True
    desired = np.asarray(desired)
    assert_array_like(
        out,
        xp=backend.xp,
        dtype=dtype,
        shape=desired.shape if shape is None else shape,
        device=backend.device,
        context=context,
    )
    actual = backend.to_numpy(out)
    where = f" [{context}]" if context else ""
    assert_same_specials(actual, desired, context)
    finite = np.isfinite(desired)
    a = actual[finite].astype(np.float64)
    d = desired[finite].astype(np.float64)
    excess = np.abs(a - d) - (atol + rtol * np.abs(d))
    if excess.size and excess.max() > 0:
        k = int(np.argmax(excess))
        idx = tuple(int(i) for i in np.argwhere(finite)[k])
        raise AssertionError(
            f"out[{idx}]={actual[idx]!r}, but should be {desired[idx]!r} "
            f"(|diff|={abs(a[k] - d[k]):.3g} > atol={atol:.3g} + rtol={rtol:.3g}*|desired|){where}"
        )
    return actual
