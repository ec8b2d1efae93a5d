"""softmax, log_softmax and logsumexp on the portable path, every edge in one shared kernel.

The kernel is the max-shifted chain (max, subtract, exp, sum) plus one full-array ``where``
that also settles the edges: entries equal to the slice maximum are set to exactly 0 before
``exp``, which turns the k entries of a +inf slice into k ones (no ``inf - inf``), and a slice
with no finite entry is shifted by 0 so it sums to 0, which the small per-slice arrays then
map to 0 / -inf. NaN propagates through ``max`` by itself. No branch looks at values.
"""

from __future__ import annotations

import math
from types import ModuleType

import array_api_compat

from .._lib._arguments import Array
from .._lib._call import Call
from .._lib._slices import Slices, prepare
from .reductions import accurate_sum
from .run import run

__all__ = [
    "log_softmax",
    "log_softmax_kernel",
    "logsumexp",
    "logsumexp_kernel",
    "softmax",
    "softmax_kernel",
]


def _shifted_exp_sum(slices: Slices, x: Array) -> tuple[Array, Array, Array, Array]:
    """Return ``(m, shifted, exp(shifted), total)``: the slice max (0 where no entry is
    finite), ``(x - m)/T`` with exact zeros at the maxima, and the slice sums."""
    xp = slices.xp
    masked = slices.fill_masked(x, -math.inf)
    m = xp.max(masked, axis=slices.axes, keepdims=True)
    m = xp.where(m == -math.inf, 0.0, m)
    shifted = slices.shift(masked, m)
    e = xp.exp(shifted)
    return m, shifted, e, accurate_sum(xp, e, slices.axes)


def _nonzero(xp: ModuleType, total: Array) -> Array:
    """The slice sums with exact zeros (slices with no finite entry) replaced by 1."""
    return xp.where(total == 0, 1.0, total)


def softmax_kernel(slices: Slices, x: Array) -> Array:
    """Softmax of prepared slices, in the compute dtype."""
    _, _, e, total = _shifted_exp_sum(slices, x)
    return slices.fill_masked(e / _nonzero(slices.xp, total), 0.0)


def log_softmax_kernel(slices: Slices, x: Array) -> Array:
    """Log-softmax of prepared slices, in the compute dtype."""
    _, shifted, _, total = _shifted_exp_sum(slices, x)
    out = shifted - slices.xp.log(_nonzero(slices.xp, total))
    return slices.fill_masked(out, -math.inf)


def logsumexp_kernel(slices: Slices, x: Array) -> Array:
    """logsumexp of prepared slices, reduced axes kept with length 1."""
    xp = slices.xp
    m, _, _, total = _shifted_exp_sum(slices, x)
    positive = total != 0
    return m + xp.where(positive, xp.log(xp.where(positive, total, 1.0)), -math.inf)


def softmax(call: Call) -> Array:
    """:func:`portable_softmax.softmax` on the portable path."""
    slices, (x,) = prepare(call, call.x)
    if slices.empty:
        return slices.finish(x)
    return slices.finish(run(softmax_kernel, slices, x))


def log_softmax(call: Call) -> Array:
    """:func:`portable_softmax.log_softmax` on the portable path."""
    slices, (x,) = prepare(call, call.x)
    if slices.empty:
        return slices.finish(x)
    return slices.finish(run(log_softmax_kernel, slices, x))


def logsumexp(call: Call) -> Array:
    """:func:`portable_softmax.logsumexp` on the portable path."""
    slices, (x,) = prepare(call, call.x)
    if slices.empty:
        xp = slices.xp
        shape = tuple(1 if i in slices.axes else n for i, n in enumerate(x.shape))
        out = xp.full(shape, -math.inf, dtype=x.dtype, device=array_api_compat.device(x))
    else:
        out = run(logsumexp_kernel, slices, x)
    return slices.finish(out, reduced=True, keepdims=call.keepdims)
