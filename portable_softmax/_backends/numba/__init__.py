"""Compiled CPU kernels (numba) behind the public functions, for NumPy arrays.

Each function has the public signature and returns the result, a fresh NumPy array (0-d for
full reductions, as the public functions return), or ``NotImplemented`` when it does not take
the call: anything but the fast case of ``_eligibility`` (C-contiguous float32/float64 rows
along the last axis, no ``where``, a scalar temperature), every invalid argument included,
so that the generic path answers those with its documented errors. Kernels compile on first
use and are cached on disk; importing this module compiles nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import _config
from ._cross_entropy import cross_entropy, cross_entropy_backward
from ._derivatives import LOG_SOFTMAX_JVP, LOG_SOFTMAX_VJP, SOFTMAX_PRODUCT, derivative_kernel
from ._eligibility import float_rows, same_rows, scalar_temperature
from ._forward import LOG_SOFTMAX, LOGSUMEXP, SOFTMAX, forward_kernel
from ._threads import parallel

__all__ = [
    "cross_entropy",
    "cross_entropy_backward",
    "log_softmax",
    "log_softmax_backward",
    "log_softmax_jvp",
    "logsumexp",
    "softmax",
    "softmax_backward",
    "softmax_jvp",
]


def _run_forward(x: Any, axis: Any, where: Any, temperature: Any, kind: int) -> Any:
    rows = float_rows(x, axis) if where is None else None
    if rows is None:
        return NotImplemented
    t = scalar_temperature(temperature, rows.dtype)
    if t is None:
        return NotImplemented
    out = np.empty(rows.shape, rows.dtype)
    threaded = parallel(rows.nbytes, rows.shape[0])
    forward_kernel(kind, threaded, _config.edges_enabled())(rows, out, t)
    return out.reshape(x.shape)


def softmax(x: Any, /, *, axis: Any = -1, where: Any = None, temperature: Any = None) -> Any:
    """:func:`portable_softmax.softmax` on the fast case, else ``NotImplemented``."""
    return _run_forward(x, axis, where, temperature, SOFTMAX)


def log_softmax(x: Any, /, *, axis: Any = -1, where: Any = None, temperature: Any = None) -> Any:
    """:func:`portable_softmax.log_softmax` on the fast case, else ``NotImplemented``."""
    return _run_forward(x, axis, where, temperature, LOG_SOFTMAX)


def logsumexp(x: Any, /, *, axis: Any = -1, where: Any = None, keepdims: Any = False) -> Any:
    """:func:`portable_softmax.logsumexp` on the fast case, else ``NotImplemented``."""
    if type(keepdims) is not bool or where is not None:
        return NotImplemented
    rows = float_rows(x, axis)
    if rows is None:
        return NotImplemented
    out = np.empty((rows.shape[0], 1), rows.dtype)
    threaded = parallel(rows.nbytes, rows.shape[0])
    kernel = forward_kernel(LOGSUMEXP, threaded, _config.edges_enabled())
    kernel(rows, out, rows.dtype.type(1.0))
    if axis is None:
        return out.reshape((1,) * x.ndim if keepdims else ())
    return out.reshape((*x.shape[:-1], 1) if keepdims else x.shape[:-1])


def _run_derivative(
    primary: Any, vector: Any, axis: Any, where: Any, temperature: Any, kind: int
) -> Any:
    rows = float_rows(primary, axis) if where is None else None
    if rows is None:
        return NotImplemented
    vectors = same_rows(vector, primary, rows)
    t = scalar_temperature(temperature, rows.dtype)
    if vectors is None or t is None:
        return NotImplemented
    out = np.empty(rows.shape, rows.dtype)
    derivative_kernel(kind, parallel(rows.nbytes, rows.shape[0]))(rows, vectors, out, t)
    return out.reshape(primary.shape)


def softmax_backward(
    grad: Any, y: Any, /, *, axis: Any = -1, where: Any = None, temperature: Any = None
) -> Any:
    """:func:`portable_softmax.softmax_backward` on the fast case, else ``NotImplemented``."""
    return _run_derivative(y, grad, axis, where, temperature, SOFTMAX_PRODUCT)


def softmax_jvp(
    tangent: Any, y: Any, /, *, axis: Any = -1, where: Any = None, temperature: Any = None
) -> Any:
    """:func:`portable_softmax.softmax_jvp` on the fast case, else ``NotImplemented``."""
    return _run_derivative(y, tangent, axis, where, temperature, SOFTMAX_PRODUCT)


def log_softmax_backward(
    grad: Any, logp: Any, /, *, axis: Any = -1, where: Any = None, temperature: Any = None
) -> Any:
    """:func:`portable_softmax.log_softmax_backward` on the fast case, else
    ``NotImplemented``."""
    return _run_derivative(logp, grad, axis, where, temperature, LOG_SOFTMAX_VJP)


def log_softmax_jvp(
    tangent: Any, logp: Any, /, *, axis: Any = -1, where: Any = None, temperature: Any = None
) -> Any:
    """:func:`portable_softmax.log_softmax_jvp` on the fast case, else ``NotImplemented``."""
    return _run_derivative(logp, tangent, axis, where, temperature, LOG_SOFTMAX_JVP)
