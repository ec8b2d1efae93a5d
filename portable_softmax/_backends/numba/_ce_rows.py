"""One sample of cross-entropy: its loss and gradient row, for integer labels and
probability targets alike (``hard`` selects the target).

Per sample (a row of C logits) with smoothed weighted target ``wt_c = w_c ((1-eps) t_c +
eps/C)``, ``W = sum_c wt_c`` and ``lse = log(sum(exp(x - m)))``:
``l = W * lse - sum_c [wt_c != 0] wt_c (x_c - m)`` (``0 * log 0 = 0``) and the gradient
``scale * (exp(x - m) * W / s - wt)``. Unsmoothed labels need no pass over the target: only
``x_y`` and ``w_y`` are read. A row whose maximum is not finite goes to :func:`_edge_row`,
which builds ``log p`` and ``p`` entry by entry from SPEC section 2's table. Wide rows are
done one by one (:func:`row`), narrow ones a block at a time (:func:`narrow_block`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._jit import jit
from ._reductions import (
    exp_sum,
    exp_sum_in_place,
    row_max,
    scale_row,
)

__all__ = ["narrow_block", "row", "settle_skipped"]


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
def settle_skipped(flat: Any, losses: Any, i: int, n: int, ignored: bool, gradient: bool) -> None:
    """Sample ``i``, ignored (loss and gradient 0) or with an invalid label (NaN), its
    gradient row at ``flat[i * n]``."""
    value = 0.0 if ignored else np.nan
    losses[i] = value
    if gradient:
        for c in range(n):
            flat[i * n + c] = value


@jit()
def _target_terms(
    d: Any,
    start: int,
    n: int,
    m: Any,
    i: int,
    hard: bool,
    y: int,
    target: Any,
    w: Any,
    weighted: bool,
    keep: Any,
    share: Any,
) -> Any:
    """``(W, sum_c wt_c (d_c - m))`` of sample ``i`` whose ``n`` entries start at
    ``d[start]``: its logits (``m`` their maximum) or its shifted logits (``m`` 0)."""  # fmt: skip
    if hard and share == 0:  # one-hot, unsmoothed: only the label's entry
        weight_sum = w[y] * keep if weighted else keep
        return weight_sum, weight_sum * (d[start + y] - m) if weight_sum != 0 else weight_sum
    weight_sum = share - share
    shifted = share - share
    for c in range(n):
        wt = _wt(i, c, hard, y, target, w, weighted, keep, share)
        weight_sum += wt
        if wt != 0:
            shifted += wt * (d[start + c] - m)
    return weight_sum, shifted


@jit()
def _subtract_target(
    o: Any,
    start: int,
    n: int,
    i: int,
    hard: bool,
    y: int,
    target: Any,
    w: Any,
    weighted: bool,
    keep: Any,
    share: Any,
    scale: Any,
    weight_sum: Any,
) -> None:
    """The gradient's target part, ``o[start + c] -= scale * wt_c`` for the ``n`` classes
    of sample ``i``, after ``scale * W * p`` was written there."""  # fmt: skip
    if hard and share == 0:
        o[start + y] -= scale * weight_sum
    else:
        for c in range(n):
            o[start + c] -= scale * _wt(i, c, hard, y, target, w, weighted, keep, share)


@jit()
def row(
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
    # the logits are read here, before exp_sum writes the exponentials: oi may be xi
    weight_sum, shifted = _target_terms(xi, 0, n, m, i, hard, y, target, w, weighted, keep, share)
    s = exp_sum_in_place(oi, m, one) if in_place else exp_sum(xi, oi, m, one, gradient)
    loss = weight_sum * np.log(s) - shifted
    if gradient:
        scale_row(oi, scale * weight_sum / s)
        _subtract_target(oi, 0, n, i, hard, y, target, w, weighted, keep, share, scale, weight_sum)
    return loss


@jit()
def narrow_block(
    x: Any,
    flat: Any,
    losses: Any,
    r0: int,
    r1: int,
    labels: Any,
    target: Any,
    w: Any,
    hard: bool,
    weighted: bool,
    ignore: int,
    has_ignore: bool,
    keep: Any,
    share: Any,
    grads: Any,
    per_sample: bool,
    first: Any,
    gradient: bool,
    edges: bool,
    maxima: Any,
    shifted: Any,
    exps: Any,
) -> None:
    """Rows ``r0:r1`` of narrow logits whose maxima, shifted logits and exponentials the
    block's vectorised pass computed (``_narrow.shifted_exps``): their losses, then their
    gradient into the flat output. All in this one function, with the row factors kept in
    an array between the two loops: a call per row cost more than a narrow row's work, and
    a factor computed in the same loop (``scale * W / s``) is folded back into a division
    per entry under ``reassoc``."""  # fmt: skip
    n = x.shape[1]
    count = r1 - r0
    zero = keep - keep
    plain = hard and share == 0
    factors = np.empty(count, x.dtype)
    scales = np.empty(count, x.dtype)
    sums = np.empty(count, x.dtype)
    written = np.zeros(count, np.bool_)
    for b in range(count):
        i = np.int64(r0 + b)
        k = b * n
        y = labels[i] if hard else -1
        if hard and ((has_ignore and y == ignore) or y < 0 or y >= n):
            settle_skipped(flat, losses, i, n, has_ignore and y == ignore, gradient)
            written[b] = True
            continue
        scale = grads[i] if per_sample else first
        m = maxima[b]
        if edges and m - m != 0:
            oi = flat[i * n : (i + 1) * n]
            losses[i] = _edge_row(x[i], m, i, hard, y, target, w, weighted, keep, share, oi,
                                  scale, gradient)  # fmt: skip
            written[b] = True
            continue
        if plain:  # _target_terms's first case, inline: a call per row costs more
            weight_sum = w[y] * keep if weighted else keep
            shift = weight_sum * shifted[k + y] if weight_sum != 0 else weight_sum
        else:
            weight_sum, shift = _target_terms(shifted, k, n, zero, i, hard, y, target, w,
                                              weighted, keep, share)  # fmt: skip
        total = exps[k]
        for c in range(1, n):
            total += exps[k + c]
        losses[i] = weight_sum * np.log(total) - shift
        factors[b] = scale * weight_sum / total
        scales[b] = scale
        sums[b] = weight_sum
    if not gradient:
        return
    for b in range(count):
        if written[b]:
            continue
        i = np.int64(r0 + b)
        k = b * n
        factor = factors[b]
        for c in range(n):
            flat[i * n + c] = exps[k + c] * factor
        if plain:  # inline: a call per row costs more than the row's work
            flat[i * n + labels[i]] -= scales[b] * sums[b]
        else:
            y = labels[i] if hard else -1
            _subtract_target(flat, i * n, n, i, hard, y, target, w, weighted, keep, share,
                             scales[b], sums[b])  # fmt: skip
