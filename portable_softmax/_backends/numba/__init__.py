"""Compiled CPU kernels (numba) behind the public functions, for NumPy arrays.

Each function takes a described call that the registry (``portable_softmax._dispatch``)
found within this backend's capabilities there (C-contiguous float32/float64 rows along the
trailing axes, no ``where``, no temperature array) and returns a fresh NumPy array (0-d for
full reductions, as the public functions return). Kernels compile on first use and are
cached on disk where a cache directory can be written; importing this module compiles
nothing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import _config
from ..._lib._call import FUNCTIONS, Call
from ._cross_entropy import (
    cross_entropy as cross_entropy,
)
from ._cross_entropy import (
    cross_entropy_backward as cross_entropy_backward,
)
from ._cross_entropy import (
    cross_entropy_with_grad as cross_entropy_with_grad,
)
from ._derivatives import LOG_SOFTMAX_JVP, LOG_SOFTMAX_VJP, SOFTMAX_PRODUCT, derivative_kernel
from ._forward import LOG_SOFTMAX, LOGSUMEXP, SOFTMAX, forward_kernel
from ._statistics import rescale_rows as rescale_rows
from ._statistics import row_statistics as row_statistics
from ._threads import PARALLEL_BYTES, parallel

# a kernel for every public function, and the Dask tree's two block operations
__all__ = [*FUNCTIONS, "rescale_rows", "row_statistics"]


def _rows(call: Call, a: np.ndarray) -> np.ndarray:
    """``a`` as ``(rows, n)``, the reduced trailing axes flattened into ``n`` (a view: the
    registry took C-contiguous arrays only)."""
    if a.ndim == 2 and len(call.axes) == 1:
        return a
    n = math.prod(a.shape[a.ndim - len(call.axes) :])
    return a.reshape(-1, n)


_ONES: dict[str, Any] = {}


def _temperature(call: Call, dtype: np.dtype[Any]) -> Any:
    """The temperature as a scalar of ``dtype`` (the kernels' signature), 1 for None."""
    t = call.temperature
    if t is not None:
        return dtype.type(t)
    one = _ONES.get(dtype.char)
    if one is None:
        one = _ONES[dtype.char] = dtype.type(1.0)
    return one


def _run_forward(call: Call, kind: int) -> Any:
    x = call.x
    out = np.empty(x.shape, x.dtype)
    t = _temperature(call, x.dtype)
    if x.ndim == 2 and len(call.axes) == 1 and x.nbytes < PARALLEL_BYTES:
        # the common small call: its rows as they are, on one thread (every step here
        # costs a visible part of an (8, 10) call)
        forward_kernel(kind, False, _config.edges_enabled())(x, out, t)
        return out
    rows = _rows(call, x)
    threaded = parallel(rows.nbytes, rows.shape[0])
    forward_kernel(kind, threaded, _config.edges_enabled())(rows, out.reshape(rows.shape), t)
    return out


def softmax(call: Call) -> Any:
    """:func:`portable_softmax.softmax` on the compiled kernels."""
    return _run_forward(call, SOFTMAX)


def log_softmax(call: Call) -> Any:
    """:func:`portable_softmax.log_softmax` on the compiled kernels."""
    return _run_forward(call, LOG_SOFTMAX)


def logsumexp(call: Call) -> Any:
    """:func:`portable_softmax.logsumexp` on the compiled kernels."""
    rows = _rows(call, call.x)
    out = np.empty((rows.shape[0], 1), rows.dtype)
    threaded = parallel(rows.nbytes, rows.shape[0])
    kernel = forward_kernel(LOGSUMEXP, threaded, _config.edges_enabled())
    kernel(rows, out, _temperature(call, rows.dtype))
    shape = call.x.shape
    if call.keepdims:
        return out.reshape(tuple(1 if i in call.axes else n for i, n in enumerate(shape)))
    return out.reshape(shape[: len(shape) - len(call.axes)])


def _run_derivative(call: Call, kind: int) -> Any:
    x = call.x
    out = np.empty(x.shape, x.dtype)
    t = _temperature(call, x.dtype)
    if x.ndim == 2 and len(call.axes) == 1 and x.nbytes < PARALLEL_BYTES:  # as above
        derivative_kernel(kind, False)(x, call.vector, out, t)
        return out
    rows = _rows(call, x)
    kernel = derivative_kernel(kind, parallel(rows.nbytes, rows.shape[0]))
    kernel(rows, _rows(call, call.vector), out.reshape(rows.shape), t)
    return out


def softmax_backward(call: Call) -> Any:
    """:func:`portable_softmax.softmax_backward` on the compiled kernels."""
    return _run_derivative(call, SOFTMAX_PRODUCT)


def softmax_jvp(call: Call) -> Any:
    """:func:`portable_softmax.softmax_jvp` on the compiled kernels."""
    return _run_derivative(call, SOFTMAX_PRODUCT)


def log_softmax_backward(call: Call) -> Any:
    """:func:`portable_softmax.log_softmax_backward` on the compiled kernels."""
    return _run_derivative(call, LOG_SOFTMAX_VJP)


def log_softmax_jvp(call: Call) -> Any:
    """:func:`portable_softmax.log_softmax_jvp` on the compiled kernels."""
    return _run_derivative(call, LOG_SOFTMAX_JVP)
