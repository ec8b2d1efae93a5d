"""Cross-entropy kernels: the whole call (the mean's denominator, every sample, the reduced
loss) in one compiled function per variant; one sample's loss and gradient are ``_ce_rows``.
Ignored samples give 0 and invalid labels NaN.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np

from ._ce_rows import narrow_block, row, settle_skipped
from ._jit import SOURCE_KEY, jit
from ._narrow import block_rows, shifted_exps
from ._reductions import compensated_add, compensated_total

__all__ = ["MEAN", "NONE", "SUM", "ce_kernel"]


@jit(fastmath=frozenset())
def _labels_denominator(
    labels: Any, classes: int, w: Any, weighted: bool, ignore: int, has_ignore: bool, one: Any
) -> Any:
    """``D = sum w_y`` over the labels in ``[0, C)`` that are not ignored (compensated)."""
    total = one - one
    carry = total
    for i in range(labels.shape[0]):
        y = labels[i]
        if (has_ignore and y == ignore) or y < 0 or y >= classes:
            continue
        total, carry = compensated_add(total, carry, w[y] if weighted else one)
    return compensated_total(total, carry)


@jit(fastmath=frozenset())
def _probability_denominator(target: Any, w: Any, weighted: bool, one: Any) -> Any:
    """``D = sum_n sum_c w_c t_nc`` for probability targets (compensated)."""
    total = one - one
    carry = total
    for i in range(target.shape[0]):
        for c in range(target.shape[1]):
            v = target[i, c] * w[c] if weighted else target[i, c]
            total, carry = compensated_add(total, carry, v)
    return compensated_total(total, carry)


@jit(fastmath=frozenset())
def _safe_scale(g: Any, d: Any) -> Any:
    """``g / d``, 0 when ``d`` is 0 (a NaN ``g`` stays NaN): the mean's scale."""
    if d == 0:
        return g if g != g else d - d  # 0 even for an infinite g (g - g would be NaN)
    return g / d


@jit(fastmath=frozenset())
def _total(losses: Any, one: Any) -> Any:
    """The sum of the per-sample losses (compensated; inf + -inf gives NaN quietly)."""
    t = one - one
    carry = t
    for i in range(losses.shape[0]):
        t, carry = compensated_add(t, carry, losses[i])
    return compensated_total(t, carry)


NONE, SUM, MEAN = 0, 1, 2
"""The ``reduction`` codes of the kernel."""


def _build(parallel: bool, edges: bool, in_place: bool = False, narrow: bool = False) -> Any:
    """The whole call in one compiled function: the mean's denominator ``D`` first (its
    scale multiplies the gradient), then every row (in parallel), then the reduced loss.
    One call from Python per cross-entropy call: a small call pays the dispatch once.
    ``in_place`` writes the gradient into the logits (``out`` unused), as one array for
    LLVM (two overlapping ones would run its scalar loops). ``narrow`` takes the rows in
    blocks whose exponentials one vectorised loop computes (``_narrow``)."""
    key = SOURCE_KEY

    @jit(parallel=parallel, cache=True)
    def kernel(
        x: Any,
        labels: Any,
        target: Any,
        w: Any,
        hard: bool,
        weighted: bool,
        ignore: int,
        has_ignore: bool,
        keep: Any,
        share: Any,
        one: Any,
        grads: Any,
        per_sample: bool,
        gradient: bool,
        reduction: int,
        out: Any,
        losses: Any,
    ) -> Any:
        # closure cells: numba's cache keys the variants apart by them only when the body
        # reads them (without `parallel` here, the serial and parallel variants shared one
        # cache entry, and the first compiled served both)
        _ = (key, parallel)
        classes = x.shape[1]
        zero = one - one
        d = zero
        first = grads[0]
        if reduction == MEAN:
            if hard:
                d = _labels_denominator(labels, classes, w, weighted, ignore, has_ignore, one)
            else:
                d = _probability_denominator(target, w, weighted, one)
            first = _safe_scale(first, d)
        rows = x.shape[0]
        per = block_rows(classes) if narrow else 1
        flat = (x if in_place else out).reshape(-1)  # C-contiguous: a view
        for b in numba.prange((rows + per - 1) // per):
            r0 = b * per
            r1 = min(rows, r0 + per)
            if narrow:
                maxima, shifted, exps = shifted_exps(x, r0, r1, one)
                narrow_block(
                    x, flat, losses, r0, r1, labels, target, w, hard, weighted, ignore,
                    has_ignore, keep, share, grads, per_sample, first, gradient, edges,
                    maxima, shifted, exps,
                )  # fmt: skip
                continue
            for r in range(r0, r1):
                # a signed row index in both variants (prange's is unsigned): the row
                # helpers then compile once per dtype, not once per variant
                i = np.int64(r)
                y = labels[i] if hard else -1
                if hard and ((has_ignore and y == ignore) or y < 0 or y >= classes):
                    settle_skipped(flat, losses, i, classes, has_ignore and y == ignore, gradient)
                    continue
                scale = grads[i] if per_sample else first
                oi = x[i] if in_place else (out[i] if gradient else out[0])
                losses[i] = row(
                        x[i], i, hard, y, target, w, weighted, keep, share, one, oi, scale,
                        gradient, edges, in_place,
                    )  # fmt: skip
        if reduction == NONE:
            return zero
        total = _total(losses, one)
        if reduction == SUM:
            return total
        return _safe_scale(total, d)

    return kernel


ce_kernel = functools.cache(_build)
"""The cross-entropy kernel of this variant, ``(parallel, edges, in_place, narrow)``
(compiled on first call)."""
