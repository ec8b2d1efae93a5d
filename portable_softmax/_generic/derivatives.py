"""VJPs and JVPs of softmax and log_softmax on the portable path.

With ``y = softmax(x/T)`` the Jacobian is ``(diag(y) - y y^T) / T``: symmetric, so the VJP
and the JVP are one formula, ``y * (v - sum(v*y)) / T``. For ``logp = log_softmax(x/T)``
the Jacobian ``(I - 1 p^T) / T`` is not symmetric: the VJP is ``(g - p * sum(g)) / T`` and
the JVP ``(t - sum(p*t)) / T``, with ``p = exp(logp)``. Masked entries are zeroed before
every sum and in the result, so whatever they hold (NaN, inf) never leaks.
"""

from __future__ import annotations

from collections.abc import Callable

from .._lib._arguments import Array
from .._lib._call import Call
from .._lib._slices import Slices, prepare
from .reductions import accurate_sum
from .run import run

__all__ = [
    "log_softmax_backward",
    "log_softmax_jvp",
    "log_softmax_jvp_kernel",
    "log_softmax_vjp_kernel",
    "softmax_backward",
    "softmax_jvp",
    "softmax_product_kernel",
]


def softmax_product_kernel(slices: Slices, y: Array, v: Array) -> Array:
    """``y * (v - sum(v*y)) / T``: the softmax VJP and JVP alike."""
    product = slices.zero_masked(v * y)
    out = product - y * accurate_sum(slices.xp, product, slices.axes)
    return slices.divide_by_temperature(slices.zero_masked(out))


def log_softmax_vjp_kernel(slices: Slices, logp: Array, g: Array) -> Array:
    xp = slices.xp
    g = slices.zero_masked(g)
    out = g - xp.exp(logp) * accurate_sum(xp, g, slices.axes)
    return slices.divide_by_temperature(slices.zero_masked(out))


def log_softmax_jvp_kernel(slices: Slices, logp: Array, t: Array) -> Array:
    xp = slices.xp
    weighted = slices.zero_masked(xp.exp(logp) * t)
    out = t - accurate_sum(xp, weighted, slices.axes)
    return slices.divide_by_temperature(slices.zero_masked(out))


def _apply(kernel: Callable[[Slices, Array, Array], Array], call: Call) -> Array:
    slices, (primary, vector) = prepare(call, call.x, call.vector)
    if slices.empty:
        return slices.finish(vector)
    return slices.finish(run(kernel, slices, primary, vector))


def softmax_backward(call: Call) -> Array:
    """:func:`portable_softmax.softmax_backward` on the portable path."""
    return _apply(softmax_product_kernel, call)


def softmax_jvp(call: Call) -> Array:
    """:func:`portable_softmax.softmax_jvp` on the portable path."""
    return _apply(softmax_product_kernel, call)


def log_softmax_backward(call: Call) -> Array:
    """:func:`portable_softmax.log_softmax_backward` on the portable path."""
    return _apply(log_softmax_vjp_kernel, call)


def log_softmax_jvp(call: Call) -> Array:
    """:func:`portable_softmax.log_softmax_jvp` on the portable path."""
    return _apply(log_softmax_jvp_kernel, call)
