"""NumPy fast path of cross-entropy with integer labels: cache-blocked, with gathers.

For a label ``y``, no mask and smoothing ``eps`` over ``C`` classes, with ``lse`` the row's
logsumexp: ``l = (1 - eps) w_y (lse - x_y) + (eps / C) sum_c w_c (lse - x_c)`` and the gradient
``p * S - (eps / C) w - (1 - eps) w_y e_y`` with ``S = (1 - eps) w_y + (eps / C) sum_c w_c``.
So the one-hot target is never built: one pass over the logits per block (plus a row product
when smoothing), the label entries by ``take_along_axis``. Arguments arrive validated (the
portable path checked them, and the labels where SPEC says to); a block whose row maxima are
not all finite, or where smoothing meets a -inf logit, goes to the portable kernel, which
settles every edge as on other backends.

:func:`plain` routes the commonest call (plain integer labels: no weight, mask, smoothing
or ``grad``) past the generic validation, from metadata alone, then checks the labels with
the portable path's rule and message. Its kernels gather at ``(arange, label)``, use
the number of counted samples as the mean's ``D``, and on inputs over 4 KB first try
``exp(x)`` without the row-max shift (two passes fewer), redoing with the shift any block
whose row sums leave ``[1/16, 2**64]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._numpy_fast import _blockwise, _finite, eligible

Kernel = Callable[..., Any]


def takes(logits: object, target: object, axis: object, where: object) -> bool:
    """Whether the fast path takes this call: NumPy float32/float64 logits reduced over the
    last axis (``_numpy_fast.eligible``), NumPy integer labels, no mask."""
    return (
        eligible(logits, axis, where, None)
        and type(target) is np.ndarray
        and target.ndim == logits.ndim - 1  # type: ignore[attr-defined]
        and target.dtype.kind in "iu"
    )


class Labels:
    """Per-row label facts of one block: which rows count, are ignored or are invalid."""

    def __init__(self, lb: np.ndarray, classes: int, ignore: int | None) -> None:
        valid = (lb >= 0) & (lb < classes)
        ignored = np.zeros_like(valid) if ignore is None else lb == ignore
        self.counted = valid & ~ignored
        self.invalid = ~valid & ~ignored
        self.index = np.where(self.counted, lb, 0)

    def weight(self, w: np.ndarray | None, dtype: Any) -> np.ndarray:
        """``w_y`` per row, 0 where the row does not count."""
        picked = np.ones(self.index.shape, dtype) if w is None else w[self.index]
        return np.where(self.counted, picked, 0).astype(dtype, copy=False)

    def settle(self, out: np.ndarray) -> None:
        """Rows that do not count get 0, invalid rows NaN (in place)."""
        out[~self.counted[:, 0]] = 0.0
        out[self.invalid[:, 0]] = np.nan


def denominator(
    labels: np.ndarray, w: np.ndarray | None, classes: int, ignore: int | None, dtype: Any
) -> Any:
    """``D = sum_n w_{y_n}`` over the samples that count."""
    return Labels(labels.reshape(-1, 1), classes, ignore).weight(w, dtype).sum(dtype=dtype)


def _sum_w(x: np.ndarray, w: np.ndarray | None) -> Any:
    return x.dtype.type(x.shape[-1]) if w is None else w.sum(dtype=x.dtype)


def losses(
    x: np.ndarray,
    labels: np.ndarray,
    w: np.ndarray | None,
    ignore: int | None,
    smoothing: float,
    fallback: Kernel,
) -> np.ndarray:
    """Per-sample losses as ``(rows, 1)`` in ``x``'s dtype."""
    classes = x.shape[-1]
    share = smoothing / classes
    sum_w = _sum_w(x, w)

    def block(out: np.ndarray, scratch: np.ndarray, xb: np.ndarray, lb: np.ndarray) -> bool:
        m = xb.max(axis=1, keepdims=True)
        if not _finite(m):
            return False
        np.subtract(xb, m, out=scratch)
        shifted_sum = None
        if smoothing:  # sum_c w_c (x_c - m), before scratch is overwritten
            shifted_sum = scratch.sum(axis=1, keepdims=True) if w is None else scratch @ w[:, None]
            if not np.isfinite(shifted_sum).all():
                return False  # -inf logits meet smoothing: the portable kernel decides
        np.exp(scratch, out=scratch)
        lse = np.log(scratch.sum(axis=1, keepdims=True))
        rows = Labels(lb, classes, ignore)
        logp_y = np.take_along_axis(xb, rows.index, axis=1) - m - lse
        coef = rows.weight(w, x.dtype) * (1 - smoothing)
        np.negative(np.where(coef == 0, 0.0, coef * logp_y), out=out)  # 0 * log 0 = 0
        if shifted_sum is not None:
            out -= share * (shifted_sum - sum_w * lse)
        rows.settle(out)
        return True

    return _blockwise(x, labels, block=block, fallback=fallback, temperature=None, out_columns=1)


def gradient(
    x: np.ndarray,
    labels: np.ndarray,
    w: np.ndarray | None,
    ignore: int | None,
    smoothing: float,
    scale: np.ndarray | None,
    fallback: Kernel,
) -> np.ndarray:
    """``(p * S - (eps/C) w - (1 - eps) w_y e_y) * scale`` per row, in ``x``'s shape.

    ``scale`` is None (ones), 0-d, or one value per row.
    """
    classes = x.shape[-1]
    rows = (labels.shape[0], 1)
    scales = np.ones(rows, x.dtype) if scale is None else np.reshape(scale, (-1, 1))
    scale = np.broadcast_to(scales, rows)
    share = smoothing / classes
    sum_w = _sum_w(x, w)

    def block(
        out: np.ndarray, scratch: np.ndarray, xb: np.ndarray, lb: np.ndarray, sb: np.ndarray
    ) -> bool:
        m = xb.max(axis=1, keepdims=True)
        if not _finite(m):
            return False
        np.subtract(xb, m, out=out)
        np.exp(out, out=out)
        rows = Labels(lb, classes, ignore)
        w_y = rows.weight(w, x.dtype) * (1 - smoothing)
        np.multiply(out, (w_y + share * sum_w) / out.sum(axis=1, keepdims=True), out=out)
        if smoothing:
            out -= share if w is None else share * w
        at_label = np.take_along_axis(out, rows.index, axis=1) - w_y
        np.put_along_axis(out, rows.index, at_label, axis=1)
        out *= sb
        rows.settle(out)
        return True

    out = _blockwise(x, labels, scale, block=block, fallback=fallback, temperature=None)
    return out.reshape(x.shape)


# ------------------------------------------------------------------ the plain-label route

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_I64 = np.dtype(np.int64)
_REDUCTIONS = ("none", "sum", "mean")

_PLAIN_SMALL_BYTES = 4 * 1024
"""Logits up to this size take the fewest NumPy calls (shifted, one block)."""

_PLAIN_BLOCK_BYTES = 256 * 1024
"""Bytes of logits per block for larger inputs: a block and its output stay in L2."""


class Plain:
    """A call of the commonest form, checked from metadata alone: NumPy float32/float64
    logits reduced over the last axis, NumPy integer labels of the logits' other axes, no
    ``where``, ``weight``, ``grad`` or smoothing, and valid scalar options.

    Every such call is valid up to the label values, which are checked here under the same
    rule and with the same message as on the portable path (``_targets.wants_check``).
    """

    __slots__ = ("count", "counted", "index", "invalid", "labels", "reduction", "rows", "shape")

    def __init__(
        self,
        logits: np.ndarray,
        target: np.ndarray,
        reduction: str,
        ignore: int | None,
        validate: bool | None,
    ) -> None:
        classes = logits.shape[-1]
        self.rows = logits.reshape(-1, classes)
        self.shape = target.shape
        self.reduction = reduction
        labels = target.reshape(-1)
        if labels.dtype is not _I64:  # widest signed integer, as on the portable path
            wraps = labels.dtype == np.uint64  # values above int64's maximum turn negative
            labels = labels.astype(_I64)
            if wraps:  # keep them invalid (never ignore_index): no class is that large
                labels = np.where(labels < 0, np.iinfo(_I64).max, labels)
        self.labels = labels
        # as unsigned, a negative label is huge: one comparison tests [0, C)
        unsigned = labels.view(np.uint64)
        if ignore is None and validate is not False:  # every sample counts, or we raise
            if unsigned.max() >= classes:
                _raise_first_bad(target, unsigned >= classes, classes, logits.ndim - 1)
            self.index = labels
            self.counted = None
            self.invalid = None
            self.count = labels.shape[0]
            return
        in_range = unsigned < classes
        ignored = None if ignore is None else labels == ignore
        if validate is not False:
            ok = in_range if ignored is None else in_range | ignored
            if not ok.all():
                _raise_first_bad(target, ~ok, classes, logits.ndim - 1)
        counted = in_range if ignored is None else in_range & ~ignored
        invalid = ~in_range if ignored is None else ~in_range & ~ignored
        self.index = np.where(counted, labels, 0)
        self.counted = counted
        self.invalid = invalid if invalid.any() else None
        self.count = int(np.count_nonzero(counted))

    def settle(self, out: np.ndarray) -> None:
        """Samples that do not count get 0, invalid ones NaN (in place)."""
        if self.counted is not None:
            out[~self.counted] = 0.0
        if self.invalid is not None:
            out[self.invalid] = np.nan


def _raise_first_bad(target: np.ndarray, bad: np.ndarray, classes: int, axis: int) -> None:
    """Raise as ``_cross_entropy._maybe_check_labels`` does, naming the label as given."""
    import array_api_compat.numpy as xp

    from ._targets import raise_first_bad

    raise_first_bad(
        xp, target, bad.reshape(target.shape), f"outside [0, {classes}) (classes on axis {axis})"
    )


def plain(
    logits: object,
    target: object,
    axis: object,
    reduction: object,
    weight: object,
    ignore_index: object,
    label_smoothing: object,
    where: object,
    validate: object,
) -> Plain | None:
    """The call as a :class:`Plain`, or None when it needs the general path."""
    if type(logits) is not np.ndarray or type(target) is not np.ndarray:
        return None
    if where is not None or weight is not None:
        return None
    if type(reduction) is not str or reduction not in _REDUCTIONS:
        return None
    if ignore_index is not None and type(ignore_index) is not int:
        return None
    if (
        type(label_smoothing) is not float and type(label_smoothing) is not int
    ) or label_smoothing != 0:
        return None
    if validate is not None and validate is not True and validate is not False:
        return None
    dtype = logits.dtype
    if dtype is not _F32 and dtype is not _F64:
        return None
    ndim = logits.ndim
    if ndim == 0 or target.ndim != ndim - 1 or target.dtype.kind not in "iu":
        return None
    if type(axis) is not int or (axis != -1 and axis != ndim - 1):
        return None
    if target.shape != logits.shape[:-1] or logits.size == 0:
        return None
    if ndim > 2 and not logits.flags.c_contiguous:
        return None
    return Plain(logits, target, reduction, ignore_index, validate)


_TINY = {_F32: np.finfo(_F32).tiny, _F64: np.finfo(_F64).tiny}
_HUGE = {_F32: np.finfo(_F32).max, _F64: np.finfo(_F64).max}
_UNSHIFTED_LOW = 1.0 / 16
_UNSHIFTED_HIGH = 2.0**64


def _per_block(rows: np.ndarray) -> int:
    return max(1, _PLAIN_BLOCK_BYTES // (int(rows.shape[1]) * rows.itemsize))


def _maxima_and_sums(
    rows: np.ndarray, out: np.ndarray | None, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Row maxima ``m``, ``s = sum(exp(x - m))`` and which rows went unshifted, by blocks.

    With ``out``, ``exp(x - m) * scale / s`` is left there, written while the block is in
    the cache (and ``s`` holds ``scale / s``). Inputs over ``_PLAIN_SMALL_BYTES`` are
    first tried without the shift (``_unshifted``): those rows are marked and keep ``m = 0``.
    """
    n = rows.shape[0]
    if rows.nbytes <= _PLAIN_SMALL_BYTES:  # let NumPy allocate: fewer calls
        m = np.maximum.reduce(rows, axis=1)
        e = np.subtract(rows, m[:, None], out=out)
        np.exp(e, out=e)
        s = np.add.reduce(e, axis=1)
        if out is not None:
            np.multiply(e, np.divide(scale, s, out=s)[:, None], out=e)
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
            if out is not None:
                np.multiply(eb, np.divide(scale, sb, out=sb)[:, None], out=eb)
            continue
        np.maximum.reduce(xb, axis=1, out=mb)
        np.subtract(xb, mb[:, None], out=eb)
        np.exp(eb, out=eb)
        np.add.reduce(eb, axis=1, out=sb)
        if out is not None:
            np.divide(scale, sb, out=sb)
            np.multiply(eb, sb[:, None], out=eb)
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


def _portable(plan: Plain, kind: str, bad: np.ndarray, *rest: np.ndarray) -> np.ndarray:
    """The portable kernel on the rows whose maxima are not finite (NaN, +inf, all -inf)."""
    import array_api_compat.numpy as xp

    from ._cross_entropy_kernels import Config, kernel_of
    from ._slices import Slices

    config = Config(
        hard=True,
        classes=plan.rows.shape[1],
        ignore_index=None,  # ignored rows are settled by the caller
        smoothing=0.0,
        weighted=False,
        scaled=bool(rest),
    )
    slices = Slices(xp, (1,), None, None, None, added_axis=False, empty=False)
    labels = plan.labels[bad][:, None]
    out: np.ndarray = kernel_of(config, kind)(slices, plan.rows[bad], labels, *rest)
    return out


def plain_loss(plan: Plain) -> np.ndarray:
    """The loss of a :class:`Plain` call, in the logits' dtype."""
    rows = plan.rows
    with np.errstate(all="ignore"):
        m, s, unshifted = _maxima_and_sums(rows, None, 1.0)
        picked = rows[np.arange(rows.shape[0]), plan.index]
        losses = np.subtract(m, picked)
        losses += np.log(s)
        if unshifted is not None:  # there m = 0 and s = sum(exp(x))
            # log(s / exp(x_y)) = -log(p_y) keeps l accurate when l << |x_y|; where
            # exp(x_y) is not normal (or the ratio overflows), l > 80 and log(s) - x_y is
            e_y = np.exp(picked)
            ratio = np.divide(s, e_y, out=s)
            better = unshifted & (e_y >= _TINY[rows.dtype]) & (ratio <= _HUGE[rows.dtype])
            np.copyto(losses, np.log(ratio, out=ratio), where=better)
        if not np.isfinite(m).all():
            bad = ~np.isfinite(m)
            losses[bad] = _portable(plan, "loss", bad)[:, 0]
        plan.settle(losses)
        if plan.reduction == "none":
            per_sample: np.ndarray = losses.reshape(plan.shape)
            return per_sample
        total = np.add.reduce(losses)
        if plan.reduction == "mean":
            total = total / plan.count if plan.count else total * 0  # NaN stays NaN
    return np.asarray(total, dtype=rows.dtype)


def plain_gradient(plan: Plain) -> np.ndarray:
    """The gradient of a :class:`Plain` call, in the logits' shape and dtype."""
    rows = plan.rows
    n = rows.shape[0]
    scale = 1.0
    if plan.reduction == "mean":
        scale = 1.0 / plan.count if plan.count else 0.0
    out = np.empty(rows.shape, rows.dtype)
    with np.errstate(all="ignore"):
        m, _, _ = _maxima_and_sums(rows, out, scale)
        out[np.arange(n), plan.index] -= scale
        if not np.isfinite(m).all():
            bad = ~np.isfinite(m)
            scales = np.full((int(np.count_nonzero(bad)), 1), scale, rows.dtype)
            out[bad] = _portable(plan, "gradient", bad, scales)
        plan.settle(out)
    shaped: np.ndarray = out.reshape(plan.shape + rows.shape[1:])
    return shaped
