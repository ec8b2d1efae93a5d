"""Cross-entropy kernels: per-sample loss and fused gradient in one pass structure, for
integer labels and probability targets alike (``hard`` selects the target).

Per sample (a row of C logits) with smoothed weighted target ``wt_c = w_c ((1-eps) t_c +
eps/C)``, ``W = sum_c wt_c`` and ``lse = log(sum(exp(x - m)))``:
``l = W * lse - sum_c [wt_c != 0] wt_c (x_c - m)`` (``0 * log 0 = 0``) and the gradient
``scale * (exp(x - m) * W / s - wt)``. Unsmoothed labels need no pass over the target: only
``x_y`` and ``w_y`` are read. Ignored samples give 0, invalid labels NaN, and a row whose
maximum is not finite goes to :func:`_edge_row`, which builds ``log p`` and ``p`` entry by
entry from SPEC section 2's table.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np

from ._jit import SOURCE_KEY, jit
from ._reductions import compensated_add, compensated_total, exp_sum, exp_sum_in_place, row_max

__all__ = ["MEAN", "NONE", "SUM", "ce_kernel"]


@jit()
def _wt(
    i: int, c: int, hard: bool, y: int, target: Any, w: Any, weighted: bool, keep: Any, share: Any
) -> Any:
    """``wt_c`` of sample ``i``: ``keep = 1 - eps``, ``share = eps / C``."""
    t = (keep if c == y else keep - keep) if hard else keep * target[i, c]
    t = t + share
    return w[c] * t if weighted else t


@jit()
def _edge_row(
    xi: Any,
    m: Any,
    i: int,
    hard: bool,
    y: int,
    target: Any,
    w: Any,
    weighted: bool,
    keep: Any,
    share: Any,
    oi: Any,
    scale: Any,
    gradient: bool,
) -> Any:
    """Loss (and gradient into ``oi``) of a row whose maximum is not finite."""
    n = xi.shape[0]
    nan = m != m
    k = 0
    for j in range(n):
        nan = nan or xi[j] != xi[j]
        k += xi[j] == np.inf
    big = 0.0 if nan else (-np.log(k) if k > 0 else -np.inf)  # log p at the maxima
    loss = 0.0
    weight_sum = 0.0
    for c in range(n):
        wt = _wt(i, c, hard, y, target, w, weighted, keep, share)
        weight_sum += wt
        logp = big if (k > 0 and xi[c] == np.inf) else -np.inf
        logp = np.nan if nan else logp
        if wt != 0:
            loss -= wt * logp
    if gradient:
        for c in range(n):
            wt = _wt(i, c, hard, y, target, w, weighted, keep, share)
            p = (1.0 / k if xi[c] == np.inf else 0.0) if k > 0 else 0.0
            p = np.nan if nan else p
            oi[c] = scale * (p * weight_sum - wt)
    return loss


@jit()
def _row(
    xi: Any,
    i: int,
    hard: bool,
    y: int,
    target: Any,
    w: Any,
    weighted: bool,
    keep: Any,
    share: Any,
    one: Any,
    oi: Any,
    scale: Any,
    gradient: bool,
    edges: bool,
    in_place: bool,
) -> Any:
    m = row_max(xi)
    if edges and m - m != 0:
        return _edge_row(xi, m, i, hard, y, target, w, weighted, keep, share, oi, scale, gradient)
    n = xi.shape[0]
    plain = hard and share == 0
    # the logits are read here, before exp_sum writes the exponentials: oi may be xi
    if plain:  # one-hot, unsmoothed: only the label's entry
        weight_sum = w[y] * keep if weighted else keep
        shifted = weight_sum * (xi[y] - m) if weight_sum != 0 else weight_sum
    else:
        weight_sum = share - share
        shifted = share - share
        for c in range(n):
            wt = _wt(i, c, hard, y, target, w, weighted, keep, share)
            weight_sum += wt
            if wt != 0:
                shifted += wt * (xi[c] - m)
    s = exp_sum_in_place(oi, m, one) if in_place else exp_sum(xi, oi, m, one, gradient)
    lse = np.log(s)
    loss = weight_sum * lse - shifted
    if gradient:
        factor = scale * weight_sum / s
        for c in range(n):
            oi[c] *= factor
        if plain:
            oi[y] -= scale * weight_sum
        else:
            for c in range(n):
                oi[c] -= scale * _wt(i, c, hard, y, target, w, weighted, keep, share)
    return loss


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


def _build(parallel: bool, edges: bool, in_place: bool = False) -> Any:
    """The whole call in one compiled function: the mean's denominator ``D`` first (its
    scale multiplies the gradient), then every row (in parallel), then the reduced loss.
    One call from Python per cross-entropy call: a small call pays the dispatch once.
    ``in_place`` writes the gradient into the logits (``out`` unused), as one array for
    LLVM (two overlapping ones would run its scalar loops)."""
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
        _ = key  # a closure cell: numba's cache keys the variants apart by it
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
        for i in numba.prange(x.shape[0]):
            y = labels[i] if hard else -1
            oi = x[i] if in_place else (out[i] if gradient else out[0])
            if hard and has_ignore and y == ignore:
                losses[i] = 0.0
                if gradient:
                    oi[:] = 0.0
                continue
            if hard and (y < 0 or y >= classes):
                losses[i] = np.nan
                if gradient:
                    oi[:] = np.nan
                continue
            scale = grads[i] if per_sample else first
            # a signed row index in both variants (prange's is unsigned): the row helpers
            # then compile once per dtype, not once per variant
            losses[i] = _row(
                x[i],
                np.int64(i),
                hard,
                y,
                target,
                w,
                weighted,
                keep,
                share,
                one,
                oi,
                scale,
                gradient,
                edges,
                in_place,
            )
        if reduction == NONE:
            return zero
        total = _total(losses, one)
        if reduction == SUM:
            return total
        return _safe_scale(total, d)

    return kernel


ce_kernel = functools.cache(_build)
"""The cross-entropy kernel of this variant, ``(parallel, edges, in_place)`` (compiled on
first call)."""
