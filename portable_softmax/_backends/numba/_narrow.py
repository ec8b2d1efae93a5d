"""Narrow rows (a few classes each): the exponentials of many rows in one vectorised loop.

The row kernels (``_forward``) vectorise along a row: a row of 10 entries is shorter than
one unrolled vector step (32 float32 entries on AVX2), so all of it runs the scalar ``exp``,
about 6 ns an entry against 0.5 in vector code. Here rows are taken in blocks of about
:data:`BLOCK_ENTRIES` entries: the row maxima and the shifted entries ``(x - m)/T`` go to a
small scratch (per-row loops, no ``exp``), then one flat loop over the whole block computes
the exponentials, then a last per-row pass sums and writes. The block's scratch stays in
cache, so main memory still sees one read of ``x`` and one write of the output, and ``out``
may be ``x`` itself (a row is written only after the whole block was read).
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np

from ._exp import vexp
from ._forward import LOGSUMEXP, SOFTMAX, _edge_row
from ._jit import SOURCE_KEY, jit
from ._reductions import halves, row_max

__all__ = ["BLOCK_ENTRIES", "NARROW_ENTRIES", "block_rows", "narrow_kernel", "shifted_exps"]

NARROW_ENTRIES = 32
"""Rows of at most this many entries take the narrow kernels (measured: see ``narrow``)."""

BLOCK_ENTRIES = 4096
"""Entries per block: two scratch arrays of this size stay in the L1/L2 cache."""


@jit()
def block_rows(n: int) -> int:
    """Rows per block for rows of ``n`` entries."""
    return max(1, BLOCK_ENTRIES // n)


@jit()
def shifted_exps(x: Any, r0: int, r1: int, t: Any) -> Any:
    """``(maxima, shifted, exps)`` of rows ``r0:r1`` of ``x``: their maxima, ``(x - m)/T``
    row after row, and its exponentials, in one vectorised loop over the block (the
    block's scratch, allocated here: one allocation per block, not per row)."""
    n = x.shape[1]
    maxima = np.empty(r1 - r0, x.dtype)
    shifted = np.empty((r1 - r0) * n, x.dtype)
    exps = np.empty((r1 - r0) * n, x.dtype)
    scaled = t != t / t
    for i in range(r0, r1):
        xi = x[i]
        m = row_max(xi)
        maxima[i - r0] = m
        base = (i - r0) * n
        if scaled:
            h, mh, th = halves(m, t)
            for j in range(n):
                shifted[base + j] = (xi[j] * h - mh) / th
        else:
            for j in range(n):
                shifted[base + j] = xi[j] - m
    for k in range((r1 - r0) * n):
        exps[k] = vexp(shifted[k])
    return maxima, shifted, exps


def _build(kind: int, parallel: bool, edges: bool) -> Any:
    """The narrow kernel ``(x, out, t)`` of one ``kind`` (closure constants, as in
    ``_forward``). Its sums are sequential, as the row kernels' are for rows this short.
    The rows' factors (``1/s``, ``log s``) go to an array between the per-row loops: a call
    per row cost more than a narrow row's work, and ``e * (1/s)`` computed in one loop is
    folded back into a division per entry under ``reassoc``."""

    key = SOURCE_KEY

    @jit(parallel=parallel, cache=True)
    def kernel(x: Any, out: Any, t: Any) -> None:
        rows, n = x.shape
        per = block_rows(n)
        one = t / t
        flat = out.reshape(-1)  # C-contiguous: a view (logsumexp: one entry per row)
        for b in numba.prange((rows + per - 1) // per):
            r0 = b * per
            r1 = min(rows, r0 + per)
            count = r1 - r0
            maxima, shifted, exps = shifted_exps(x, r0, r1, t)
            factors = np.empty(count, x.dtype)
            for r in range(count):
                k = r * n
                s = exps[k]
                for j in range(1, n):
                    s += exps[k + j]
                factors[r] = one / s if kind == SOFTMAX else np.log(s)
            for r in range(count):
                i = r0 + r
                m = maxima[r]
                if edges and m - m != 0:
                    _edge_row(x[i], out[i], m, kind)
                elif kind == LOGSUMEXP:
                    flat[i] = m + factors[r]
                else:
                    factor = factors[r]
                    k = r * n
                    for j in range(n):
                        if kind == SOFTMAX:
                            flat[i * n + j] = exps[k + j] * factor
                        else:
                            flat[i * n + j] = shifted[k + j] - factor
        if parallel and key:  # closure cells: numba's cache keys the variants apart
            return

    return kernel


narrow_kernel = functools.cache(_build)
"""The narrow forward kernel ``(x, out, t)`` of ``kind`` and ``(parallel, edges)``
(compiled on first call)."""
