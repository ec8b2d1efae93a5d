"""The Dask tree's block operations on NumPy rows, cache-blocked: statistics and rescaling.

A chunk that splits the class axis is still a stack of row pieces. The plain loop (max,
subtract, exp, sum over the whole chunk) walks main memory five times with two fresh
temporaries; here each block of rows (or, for rows longer than a block, each column piece of
a row) is shifted, exponentiated and summed while it sits in the L2 cache, with this
backend's blocking and ufunc buffers (``blocks``). Sums along a row are NumPy's pairwise
sums on contiguous pieces, and the pieces' sums are added pairwise. The registry hands these
the block operations it takes (``row_statistics``, ``rescale_rows``).
"""

from __future__ import annotations

import numpy as np

from ..._lib._call import Call
from .blocks import BLOCK_BYTES, UNSHIFTED_MAX, block_buffer

__all__ = ["rescale_rows", "row_statistics"]


def _layout(rows: np.ndarray) -> tuple[int, int]:
    """Rows per block and columns per piece."""
    n = rows.shape[1]
    row_bytes = max(1, n * rows.itemsize)
    if row_bytes <= BLOCK_BYTES:
        return max(1, BLOCK_BYTES // row_bytes), n
    return 1, max(1, BLOCK_BYTES // rows.itemsize)


def row_statistics(call: Call) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(m, s, e)`` per row of ``call.x`` (``m``, ``s`` as (rows, 1)) when every row maximum
    is finite, else None (the caller's general statistics settle those rows).

    ``e = exp((x - m)/T)`` has the rows' shape and ``s`` its row sums; the temperature is
    None or a float <= 1 (larger ones need the halving shift of the portable code: the
    registry sends those elsewhere). With ``call.keepdims`` (softmax keeps the exponentials)
    and T = 1, a block whose row maxima all lie in ``[0, UNSHIFTED_MAX]`` skips the shift and
    reports ``m = 0``: the record only needs *a* reference point, ``exp(x)`` cannot overflow
    there, and ``x - m`` is never rounded (the reasoning of this backend's forward kernels).
    log_softmax and logsumexp never take it: their outputs would pick up an error of
    ``|m| eps``.
    """
    rows: np.ndarray = call.x
    temperature = call.temperature
    count, n = rows.shape
    per_block, columns = _layout(rows)
    pieces = -(-n // columns)
    unshifted = call.keepdims and temperature is None
    limit = UNSHIFTED_MAX.get(rows.itemsize, -1.0) if unshifted else -1.0
    e = np.empty((count, n), dtype=rows.dtype)
    m = np.empty((count, 1), dtype=rows.dtype)
    sums = np.empty((count, pieces), dtype=rows.dtype)
    with np.errstate(all="ignore"):
        block_buffer(min(n, columns), rows.itemsize)
        for start in range(0, count, per_block):
            here = slice(start, start + per_block)
            mb = m[here]
            np.max(rows[here], axis=1, keepdims=True, out=mb)
            if not np.isfinite(mb).all():
                return None
            skip = limit > 0 and float(mb.min()) >= 0.0 and float(mb.max()) <= limit
            if skip:
                mb[...] = 0.0
            for piece in range(pieces):
                cols = slice(piece * columns, (piece + 1) * columns)
                eb = e[here, cols]
                if skip:
                    np.exp(rows[here, cols], out=eb)
                else:
                    np.subtract(rows[here, cols], mb, out=eb)
                    if temperature is not None:
                        np.divide(eb, temperature, out=eb)
                    np.exp(eb, out=eb)
                np.sum(eb, axis=1, out=sums[here, piece])
        s = sums if pieces == 1 else np.sum(sums, axis=1, keepdims=True)
    return m, s.reshape(count, 1), e


def rescale_rows(call: Call) -> np.ndarray:
    """``min(e * factor, 1)`` row by row, in place (``e = call.x``, ``factor = call.vector``
    of shape (rows, 1)): ``e`` is the private intermediate of one chunk, read by this task
    only (the statistics were taken from it before), so a fresh output (and its page faults)
    is saved. Both factors are rounded, so their product can exceed a probability's range by
    an ulp: the clamp keeps softmax in [0, 1]."""
    e: np.ndarray = call.x
    factor: np.ndarray = call.vector
    count, n = e.shape
    per_block, _ = _layout(e)
    with np.errstate(all="ignore"):
        block_buffer(n, e.itemsize)
        for start in range(0, count, per_block):
            here = slice(start, start + per_block)
            np.multiply(e[here], factor[here], out=e[here])
            np.minimum(e[here], 1, out=e[here])
    return e
