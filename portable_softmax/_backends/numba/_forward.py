"""Forward kernels: softmax, log_softmax and logsumexp over the rows of a C-contiguous
2-D array, one kernel per ``kind`` and (parallel, edges) variant.

Per row: the maximum ``m`` (one vectorised pass); if ``m`` is not finite (+inf, -inf or
NaN) the row takes :func:`_edge_row`, a scalar pass that applies SPEC section 2's table;
otherwise ``sum(exp((x - m)/T))`` in blocks (softmax writes the exponentials on the way)
and a last pass that scales or shifts. A NaN in a row with a finite maximum reaches the sum,
so the row comes out NaN without a test. Without edge handling (the benchmark's switch) the
test on ``m`` is compiled out.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np

from ._jit import SOURCE_KEY, jit
from ._reductions import exp_sum, exp_sum_in_place, halves, row_max, scale_row

__all__ = ["LOGSUMEXP", "LOG_SOFTMAX", "SOFTMAX", "forward_kernel"]

SOFTMAX, LOG_SOFTMAX, LOGSUMEXP = 0, 1, 2
"""The ``kind`` argument of a forward kernel; logsumexp writes ``out[:, 0]``."""


@jit()
def _edge_row(xi: Any, oi: Any, m: Any, kind: int) -> None:
    """A row whose maximum is not finite: NaN, else k entries +inf, else no finite entry."""
    nan = m != m
    k = 0
    for j in range(xi.shape[0]):
        v = xi[j]
        nan = nan or v != v
        k += v == np.inf
    if nan:
        for j in range(oi.shape[0]):
            oi[j] = np.nan
        return
    if kind == LOGSUMEXP:
        oi[0] = np.inf if k > 0 else -np.inf
        return
    for j in range(xi.shape[0]):
        hit = xi[j] == np.inf
        if kind == SOFTMAX:
            oi[j] = 1.0 / k if hit else 0.0
        else:
            oi[j] = -np.log(k) if hit else -np.inf
    return


def _build(kind: int, parallel: bool, edges: bool, in_place: bool = False) -> Any:
    """The kernel of one ``kind`` and variant. All four are closure constants: the branches
    on them fold away (a runtime ``kind`` measured up to 1.5x slower), and numba's cache,
    which hashes closure cells, keeps the variants apart. ``in_place`` writes into ``x``
    (``out`` is ignored): LLVM then sees one array, where two that overlap fail its runtime
    overlap test and run the scalar loops (4x slower at (4096, 4096))."""

    key = SOURCE_KEY

    @jit(parallel=parallel, cache=True)
    def kernel(x: Any, out: Any, t: Any) -> None:
        one = t / t
        for i in numba.prange(x.shape[0]):
            xi = x[i]
            oi = xi if in_place else out[i]
            m = row_max(xi)
            if edges and m - m != 0:
                _edge_row(xi, oi, m, kind)
                continue
            if in_place and kind == SOFTMAX:
                s = exp_sum_in_place(oi, m, t)
            else:
                s = exp_sum(xi, oi, m, t, kind == SOFTMAX)
            if kind == SOFTMAX:
                scale_row(oi, one / s)
            elif kind == LOGSUMEXP:
                oi[0] = m + np.log(s)
            elif t != one:
                lse = np.log(s)
                h, mh, th = halves(m, t)
                for j in range(xi.shape[0]):
                    oi[j] = (xi[j] * h - mh) / th - lse
            else:
                lse = np.log(s)
                for j in range(xi.shape[0]):
                    oi[j] = (xi[j] - m) - lse
        if parallel and key:  # closure cells: numba's cache keys the variants apart
            return

    return kernel


forward_kernel = functools.cache(_build)
"""The forward kernel ``(x, out, t)`` of ``kind`` and the variant ``(parallel, edges,
in_place)`` (compiled on first call)."""
