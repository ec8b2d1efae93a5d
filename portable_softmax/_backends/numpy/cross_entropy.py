"""NumPy fast path of cross-entropy with integer labels: one route, by cache blocks.

For a label ``y``, no mask and smoothing ``eps`` over ``C`` classes, with ``m`` the row
maximum and ``s = sum_c exp(x_c - m)``: ``l = (1 - eps) w_y (m + log s - x_y) +
(eps / C) (sum_c w_c log s - sum_c w_c (x_c - m))``, and the gradient
``(p S - (eps / C) w - (1 - eps) w_y e_y) * scale`` with ``S = (1 - eps) w_y + (eps / C)
sum_c w_c``. The one-hot target is never built: the label entries are gathered.

The registry took the call (``portable_softmax._dispatch``); ``plan.Plan`` sorts the labels.
Inputs over 4 KB first try
``exp(x)`` without the row-max shift (two passes fewer), redoing with the shift any block
whose row sums leave ``[1/16, 2**64]``. Rows whose maximum is not finite (NaN, +inf, nothing
finite), and rows where smoothing meets a
-inf logit, go to the portable kernel, which settles every edge as on other backends.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._config import edges_enabled
from ..._generic.cross_entropy_kernels import kernel_of
from ..._lib._call import CrossEntropyCall
from ..._lib._out import numpy_destination
from ..._lib._slices import Slices
from . import small
from .blocks import BLOCK_BYTES, finite
from .plan import Plan

__all__ = ["cross_entropy", "cross_entropy_backward", "cross_entropy_with_grad"]

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_SMALL_BYTES = 4 * 1024
"""Logits up to this size take the fewest NumPy calls (shifted, one block)."""
_TINY = {_F32: np.finfo(_F32).tiny, _F64: np.finfo(_F64).tiny}
_HUGE = {_F32: np.finfo(_F32).max, _F64: np.finfo(_F64).max}
_UNSHIFTED_LOW = 1.0 / 16
_UNSHIFTED_HIGH = 2.0**64


def _per_block(rows: np.ndarray) -> int:
    return max(1, BLOCK_BYTES // (int(rows.shape[1]) * rows.itemsize))


def _maxima_and_sums(
    rows: np.ndarray, out: np.ndarray | None, scale: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Row maxima ``m``, ``s = sum(exp(x - m))`` and which rows went unshifted, by blocks.

    With ``out``, ``exp(x - m) * scale / s`` is left there (one ``scale`` per row), written
    while the block is in the cache. Inputs over ``_SMALL_BYTES`` are first tried without the
    shift (:func:`_unshifted`): those rows are marked and keep ``m = 0``.
    """
    n = rows.shape[0]
    if rows.nbytes <= _SMALL_BYTES:  # let NumPy allocate: fewer calls
        m = np.maximum.reduce(rows, axis=1)
        e = np.subtract(rows, m[:, None], out=out)
        np.exp(e, out=e)
        s = np.add.reduce(e, axis=1)
        if out is not None:
            np.multiply(e, (scale / s)[:, None], out=e)
        return m, s, None
    per = _per_block(rows)
    m = np.zeros(n, rows.dtype)
    unshifted = np.zeros(n, bool)
    s = np.empty(n, rows.dtype)
    scratch = np.empty((min(per, n), rows.shape[1]), rows.dtype) if out is None else out
    for start in range(0, n, per):
        stop = min(start + per, n)
        xb = rows[start:stop]
        eb = scratch[: stop - start] if out is None else scratch[start:stop]
        mb = m[start:stop]
        sb = s[start:stop]
        if _unshifted(xb, eb, sb):
            unshifted[start:stop] = True
        else:
            np.maximum.reduce(xb, axis=1, out=mb)
            np.subtract(xb, mb[:, None], out=eb)
            np.exp(eb, out=eb)
            np.add.reduce(eb, axis=1, out=sb)
        if out is not None and scale is not None:
            np.multiply(eb, (scale[start:stop] / sb)[:, None], out=eb)
    return m, s, unshifted


def _unshifted(xb: np.ndarray, eb: np.ndarray, sb: np.ndarray) -> bool:
    """Try ``eb = exp(xb)`` and ``sb`` its row sums without the shift by the row maxima,
    two passes fewer; True when every sum lies in ``[1/16, 2**64]``.

    Then no entry overflowed and ``p = exp(x) / s`` is as accurate as with the shift: an
    ``exp(x)`` below the normal range gives ``p`` at most 16 times above it (within SPEC's
    absolute bound there); ``log(s) <= 45`` keeps the loss's rounding small. Otherwise
    (NaN, infinities, very large or small logits) the caller redoes the block with the shift.
    """
    np.exp(xb, out=eb)
    np.add.reduce(eb, axis=1, out=sb)
    return bool(
        np.minimum.reduce(sb) >= _UNSHIFTED_LOW and np.maximum.reduce(sb) <= _UNSHIFTED_HIGH
    )


def _by_blocks(plan: Plan, step: Any) -> None:
    """Call ``step(rows_slice)`` for each cache block of rows."""
    per = _per_block(plan.rows)
    for start in range(0, plan.rows.shape[0], per):
        step(slice(start, start + per))


def _portable(plan: Plan, kind: str, bad: np.ndarray, *scale: np.ndarray) -> np.ndarray:
    """The portable kernel on the rows ``bad`` (maxima not finite, or smoothing meeting -inf)."""
    import array_api_compat.numpy as xp

    slices = Slices(xp, (1,), None, None, None, added_axis=False, empty=False)
    weight = () if plan.weight is None else (plan.weight[None, :],)
    operands = (plan.rows[bad], plan.labels[bad][:, None], *weight, *scale)
    out: np.ndarray = kernel_of(plan.config(scaled=bool(scale)), kind)(slices, *operands)
    return out


def _mean_scale(plan: Plan, grad: np.ndarray | Any) -> Any:
    """``grad / D``, 0 when ``D`` is 0 (a NaN ``grad`` stays NaN), as the portable path."""
    if plan.d == 0:
        return grad * 0 if np.isnan(grad).any() else np.zeros_like(grad)
    return grad / plan.d


def losses(plan: Plan) -> np.ndarray:
    """Per-sample losses, flat, in the logits' dtype (settled: ignored 0, invalid NaN)."""
    rows = plan.rows
    m, s, unshifted = _maxima_and_sums(rows, None, None)
    picked = rows[np.arange(rows.shape[0]), plan.index]
    out: np.ndarray = np.subtract(m, picked)
    out += np.log(s)
    if unshifted is not None:  # there m = 0 and s = sum(exp(x))
        # log(s / exp(x_y)) = -log(p_y) keeps l accurate when l << |x_y|; where exp(x_y)
        # is not normal (or the ratio overflows), l > 80 and log(s) - x_y is accurate enough
        e_y = np.exp(picked)
        ratio = np.divide(s, e_y)
        better = unshifted & (e_y >= _TINY[rows.dtype]) & (ratio <= _HUGE[rows.dtype])
        np.copyto(out, np.log(ratio, out=ratio), where=better)
    coef = plan.w_y if plan.smoothing == 0 else plan.w_y * (1 - plan.smoothing)
    if plan.weight is not None or plan.smoothing or plan.counted is not None:
        out = np.where(coef == 0, 0.0, coef * out).astype(rows.dtype, copy=False)  # 0 log 0
    spread_ok: np.ndarray | None = None
    if plan.smoothing:  # + (eps/C) (sum_w log s - sum_c w_c (x_c - m)), by blocks
        spread = np.empty_like(out)

        def step(block: slice) -> None:
            shifted = rows[block] - m[block, None]
            spread[block] = shifted.sum(axis=1) if plan.weight is None else shifted @ plan.weight

        _by_blocks(plan, step)
        spread_ok = np.isfinite(spread)  # a -inf logit meets smoothing: the portable kernel
        out += plan.share * (plan.sum_w * np.log(s) - spread)
    if finite(m) and (spread_ok is None or not edges_enabled() or spread_ok.all()):
        return out
    bad = ~np.isfinite(m) if spread_ok is None else ~(np.isfinite(m) & spread_ok)
    out[bad] = _portable(plan, "loss", bad)[:, 0]
    return out


def gradient(plan: Plan, scale: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The gradient in ``rows``' shape, into ``out`` (no input: the blocks that go unshifted
    and the edge rows read the logits again after writing); ``scale`` has one factor per
    row."""
    rows = plan.rows
    n = rows.shape[0]
    total_weight = plan.w_y * (1 - plan.smoothing) if plan.smoothing else plan.w_y
    row_scale = (total_weight + plan.share * plan.sum_w) * scale
    m, _, _ = _maxima_and_sums(rows, out, row_scale)
    if plan.smoothing:  # - (eps/C) w * scale, by blocks
        w = plan.weight

        def step(block: slice) -> None:
            shares = (plan.share * scale[block])[:, None]
            out[block] -= shares if w is None else shares * w

        _by_blocks(plan, step)
    out[np.arange(n), plan.index] -= total_weight * scale
    if finite(m):
        return out
    bad = ~np.isfinite(m)
    out[bad] = _portable(plan, "gradient", bad, scale[bad][:, None])
    return out


def _loss(p: Plan) -> Any:
    with np.errstate(all="ignore"):
        out = losses(p)
        p.settle(out)
        if p.reduction == "none":
            return out.reshape(p.shape)
        total = np.add.reduce(out)
        if p.reduction == "mean":
            total = _mean_scale(p, np.asarray(total))
    return np.asarray(total, dtype=p.rows.dtype)


def _gradient(p: Plan, call: CrossEntropyCall) -> Any:
    dtype = p.rows.dtype
    grad = np.ones((), dtype) if call.grad is None else call.grad.astype(dtype, copy=False)
    with np.errstate(all="ignore"):
        if p.reduction == "mean":
            grad = _mean_scale(p, grad)
        scale = np.broadcast_to(grad.reshape(-1), (p.rows.shape[0],))
        target, written = numpy_destination(call, p.rows.shape, ())
        out = gradient(p, np.ascontiguousarray(scale), target)
        p.settle(out)
    return call.out if written else out.reshape(call.logits.shape)


def _small(call: CrossEntropyCall, gradient: bool) -> tuple[Any, Any] | None:
    """The plain small call (a few KiB of logits, valid labels, no weight, smoothing,
    ``ignore_index`` or ``grad``) by the shortest chain of ufuncs; None for any other call
    or at an edge (then the blocked kernels serve it)."""
    logits: np.ndarray = call.logits
    if (
        logits.nbytes > small.SMALL_BYTES
        or not call.labels_checked
        or call.weight is not None
        or call.smoothing
        or call.ignore_index is not None
        or call.grad is not None
    ):
        return None
    rows = logits.reshape(-1, logits.shape[-1])
    found = small.cross_entropy(rows, call.target.reshape(-1), call.reduction, gradient)
    if found is None:
        return None
    loss, grad = found
    if call.reduction == "none":
        loss = loss.reshape(call.loss_shape)
    return loss, None if grad is None else grad.reshape(logits.shape)


def cross_entropy(call: CrossEntropyCall) -> Any:
    """:func:`portable_softmax.cross_entropy` on this path."""
    found = _small(call, False)
    return _loss(Plan(call)) if found is None else found[0]


def cross_entropy_backward(call: CrossEntropyCall) -> Any:
    """:func:`portable_softmax.cross_entropy_backward` on this path."""
    found = _small(call, True)
    return _gradient(Plan(call), call) if found is None else found[1]


def cross_entropy_with_grad(call: CrossEntropyCall) -> tuple[Any, Any]:
    """:func:`portable_softmax.cross_entropy_with_grad` on this path (one plan for both)."""
    found = _small(call, True)
    if found is not None:
        return found
    p = Plan(call)
    return _loss(p), _gradient(p, call)
