"""NumPy's fast paths: cache-blocked kernels for the common calls on ``numpy.ndarray``.

Each function has the public signature and returns ``NotImplemented`` for a call it does not
take, from metadata alone: it takes float32/float64 arrays reduced over their last axis (or a
1-D array with ``axis=None``), C-contiguous beyond two dimensions, without ``where`` and with
no temperature or a positive finite Python float. log_softmax's derivatives stay on the
generic path (measured no faster here); the compiled kernels are ``_backends.numba``.
"""

from __future__ import annotations

from typing import Any

from . import derivatives, forward, small
from .blocks import backward_eligible, eligible, plain_temperature
from .cross_entropy import cross_entropy, cross_entropy_backward

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


def softmax(x: Any, /, *, axis: Any, where: Any, temperature: Any) -> Any:
    if not eligible(x, axis, where, temperature):
        return NotImplemented
    t = plain_temperature(temperature)
    if t is None and x.nbytes <= small.SMALL_BYTES:
        out = small.softmax(x)
        if out is not None:
            return out
    return forward.softmax(x, t)


def log_softmax(x: Any, /, *, axis: Any, where: Any, temperature: Any) -> Any:
    if not eligible(x, axis, where, temperature):
        return NotImplemented
    t = plain_temperature(temperature)
    if t is None and x.nbytes <= small.SMALL_BYTES:
        out = small.log_softmax(x)
        if out is not None:
            return out
    return forward.log_softmax(x, t)


def logsumexp(x: Any, /, *, axis: Any, where: Any, keepdims: bool) -> Any:
    if not eligible(x, axis, where, None):
        return NotImplemented
    out = small.logsumexp(x) if x.nbytes <= small.SMALL_BYTES else None
    if out is None:
        out = forward.logsumexp(x)
    return out if keepdims else out[..., 0]


def softmax_backward(grad: Any, y: Any, /, *, axis: Any, where: Any, temperature: Any) -> Any:
    if not backward_eligible(y, grad, axis, where, temperature):
        return NotImplemented
    if y.nbytes <= small.SMALL_BYTES:
        return small.softmax_backward(y, grad, plain_temperature(temperature))
    return derivatives.softmax_backward(y, grad, plain_temperature(temperature))


def softmax_jvp(tangent: Any, y: Any, /, *, axis: Any, where: Any, temperature: Any) -> Any:
    # the softmax Jacobian is symmetric: the JVP is the VJP's formula
    return softmax_backward(tangent, y, axis=axis, where=where, temperature=temperature)


def log_softmax_backward(grad: Any, logp: Any, /, **options: Any) -> Any:
    return NotImplemented


def log_softmax_jvp(tangent: Any, logp: Any, /, **options: Any) -> Any:
    return NotImplemented
