"""Compiled CPU kernels (numba) behind the public functions, for NumPy arrays.

Each function takes a described call that the registry (``portable_softmax._dispatch``)
found within this backend's capabilities there (C-contiguous float32/float64 rows along the
trailing axes, no ``where``, no temperature array) and returns a fresh NumPy array (0-d for
full reductions, as the public functions return), or writes into the call's ``out``.
Kernels compile on first use and are cached on disk where a cache directory can be
written; importing this module compiles nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import _config
from ..._lib._call import FUNCTIONS, Call
from ..._lib._out import numpy_destination
from ._cross_entropy import (
    cross_entropy as cross_entropy,
)
from ._cross_entropy import (
    cross_entropy_backward as cross_entropy_backward,
)
from ._cross_entropy import (
    cross_entropy_with_grad as cross_entropy_with_grad,
)
from ._derivatives import (
    INTO_PRIMARY,
    INTO_VECTOR,
    LOG_SOFTMAX_JVP,
    LOG_SOFTMAX_VJP,
    NOT_IN_PLACE,
    SOFTMAX_PRODUCT,
    derivative_kernel,
)
from ._forward import LOG_SOFTMAX, LOGSUMEXP, SOFTMAX, forward_kernel
from ._narrow import NARROW_ENTRIES, narrow_kernel
from ._statistics import rescale_rows as rescale_rows
from ._statistics import row_statistics as row_statistics
from ._threads import parallel

# a kernel for every public function, and the Dask tree's two block operations
__all__ = [*FUNCTIONS, "rescale_rows", "row_statistics"]


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


def _forward_kernel(kind: int, rows: np.ndarray, in_place: bool = False) -> Any:
    """The forward kernel for ``rows``: the narrow block kernel for rows of at most
    ``NARROW_ENTRIES`` (it reads a block of rows before writing any: no in-place variant),
    else the row kernel."""
    threads = parallel(rows.nbytes, rows.shape[0])
    if rows.shape[1] <= NARROW_ENTRIES:
        return narrow_kernel(kind, threads, _config.edges_enabled())
    return forward_kernel(kind, threads, _config.edges_enabled(), in_place)


def _run_forward(call: Call, kind: int) -> Any:
    x = call.x
    rows = call.rows(x)
    # each element of x is read before its own output is written: x itself may be out
    out, written = numpy_destination(call, rows.shape, ("x",))
    kernel = _forward_kernel(kind, rows, written and call.out_alias == "x")
    kernel(rows, out, _temperature(call, rows.dtype))
    if written:
        return call.out
    return out if rows is x else out.reshape(x.shape)


def softmax(call: Call) -> Any:
    """:func:`portable_softmax.softmax` on the compiled kernels."""
    return _run_forward(call, SOFTMAX)


def log_softmax(call: Call) -> Any:
    """:func:`portable_softmax.log_softmax` on the compiled kernels."""
    return _run_forward(call, LOG_SOFTMAX)


def logsumexp(call: Call) -> Any:
    """:func:`portable_softmax.logsumexp` on the compiled kernels."""
    rows = call.rows(call.x)
    out = np.empty((rows.shape[0], 1), rows.dtype)
    _forward_kernel(LOGSUMEXP, rows)(rows, out, _temperature(call, rows.dtype))
    return out.reshape(call.reduced_shape())


_INTO = {"x": INTO_PRIMARY, "vector": INTO_VECTOR}


def _run_derivative(call: Call, kind: int) -> Any:
    x = call.x
    rows = call.rows(x)
    # the row sum reads only; the last pass reads both inputs' element before writing it
    out, written = numpy_destination(call, rows.shape, ("x", "vector"))
    narrow = rows.shape[1] <= NARROW_ENTRIES
    # narrow rows need no in-place variant: their short loops do not vectorise anyway
    in_place = NOT_IN_PLACE
    if written and not narrow:
        in_place = _INTO.get(call.out_alias or "", NOT_IN_PLACE)
    # narrow rows on one thread: their parallel variant measured up to 3x slower than the
    # serial one at (100000, 10) on two threads (0.7 ms against 2.2)
    threads = not narrow and parallel(rows.nbytes, rows.shape[0])
    kernel = derivative_kernel(kind, threads, in_place, narrow)
    kernel(rows, call.rows(call.vector), out, _temperature(call, rows.dtype))
    if written:
        return call.out
    return out if rows is x else out.reshape(x.shape)


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
