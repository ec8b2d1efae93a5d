"""NumPy fast path of cross-entropy with integer labels: cache-blocked, with gathers.

For a label ``y``, no mask and smoothing ``eps`` over ``C`` classes, with ``lse`` the row's
logsumexp: ``l = (1 - eps) w_y (lse - x_y) + (eps / C) sum_c w_c (lse - x_c)`` and the gradient
``p * S - (eps / C) w - (1 - eps) w_y e_y`` with ``S = (1 - eps) w_y + (eps / C) sum_c w_c``.
So the one-hot target is never built: one pass over the logits per block (plus a row product
when smoothing), the label entries by ``take_along_axis``. Arguments arrive validated (the
portable path checked them, and the labels where SPEC says to); a block whose row maxima are
not all finite, or where smoothing meets a -inf logit, goes to the portable kernel, which
settles every edge as on other backends.
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
