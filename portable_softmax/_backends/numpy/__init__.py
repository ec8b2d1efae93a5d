"""NumPy's fast paths: cache-blocked kernels for the common calls on ``numpy.ndarray``.

Each function takes a described call that the registry (``portable_softmax._dispatch``) found
within this backend's capabilities there: float32/float64 rows along the trailing axes,
without ``where`` and with no temperature array. Inputs of a few KiB take the shortest chain
of ufuncs (``small``), larger ones the blocked kernels; rows at an edge (NaN, +inf, nothing
finite) are settled by the portable kernels. log_softmax's derivatives have no kernel here
(measured no faster than the generic path); the compiled kernels are ``_backends.numba``.
"""

from __future__ import annotations

from typing import Any

from ..._lib._call import Call
from ..._lib._out import numpy_destination
from . import derivatives, forward, small
from .cross_entropy import cross_entropy, cross_entropy_backward, cross_entropy_with_grad
from .statistics import rescale_rows, row_statistics

__all__ = [
    "cross_entropy",
    "cross_entropy_backward",
    "cross_entropy_with_grad",
    "log_softmax",
    "logsumexp",
    "rescale_rows",
    "row_statistics",
    "softmax",
    "softmax_backward",
    "softmax_jvp",
]


def _forward(call: Call, small_kernel: Any, blocked_kernel: Any) -> Any:
    """A small input's shortest chain (T = 1, no edge), else the blocked kernel (into the
    call's ``out`` where it can write there: each block reads ``x`` before writing)."""
    x = call.rows(call.x)
    t = call.temperature
    out = small_kernel(x) if t is None and x.nbytes <= small.SMALL_BYTES else None
    if out is None:
        target, written = numpy_destination(call, x.shape, ("x",))
        out = blocked_kernel(x, t, target)
        if written:
            return call.out
    return out if out.shape == call.x.shape else out.reshape(call.x.shape)


def softmax(call: Call) -> Any:
    return _forward(call, small.softmax, forward.softmax)


def log_softmax(call: Call) -> Any:
    return _forward(call, small.log_softmax, forward.log_softmax)


def logsumexp(call: Call) -> Any:
    x = call.rows(call.x)
    out = small.logsumexp(x) if x.nbytes <= small.SMALL_BYTES else None
    if out is None:
        out = forward.logsumexp(x)
    return out.reshape(call.reduced_shape())


def softmax_backward(call: Call) -> Any:
    y = call.rows(call.x)
    g = call.rows(call.vector)
    if y.nbytes <= small.SMALL_BYTES:
        out = small.softmax_backward(y, g, call.temperature)
    else:
        target, written = numpy_destination(call, y.shape, ("x", "vector"))
        out = derivatives.softmax_backward(y, g, call.temperature, target)
        if written:
            return call.out
    return out if out.shape == call.x.shape else out.reshape(call.x.shape)


softmax_jvp = softmax_backward  # the softmax Jacobian is symmetric: the JVP is the VJP
