"""NumPy chunks of the tree path, cache-blocked: statistics and rescaling in one read each.

A chunk that splits the class axis is still a stack of row pieces. The plain loop (max,
subtract, exp, sum over the whole chunk) walks main memory five times with two fresh
temporaries; here each block of rows (or, for rows longer than a block, each column piece of
a row) is shifted, exponentiated and summed while it sits in the L2 cache, as in the NumPy
fast path of the package, and ufunc buffers are sized as there (broadcast row operands of
short rows are otherwise copied through buffers, about 3x slower). Sums along a row are
NumPy's pairwise sums on contiguous pieces, and the pieces' sums are added pairwise.
"""

from __future__ import annotations

import math

import numpy as np

_BLOCK_BYTES = 256 * 1024
"""Bytes of input per block: input, exponentials and scratch stay in the L2 cache."""

_DEFAULT_BUFSIZE = 8192

UNSHIFTED_MAX = {4: 64.0, 8: 512.0}
"""Per itemsize, the largest row maximum for which softmax may skip the shift: ``n`` terms
up to ``exp(limit)`` stay below the dtype's largest value for any ``n < 2**31``."""


def rows_of(block: np.ndarray, axes: tuple[int, ...]) -> np.ndarray | None:
    """``block`` as a 2-D (rows, n) view with the reduced axes last, or None if it would
    need a copy (then the caller takes the unblocked loop)."""
    if axes != tuple(range(block.ndim - len(axes), block.ndim)):
        return None
    n = math.prod(block.shape[block.ndim - len(axes) :])
    rows = block.reshape(-1, n) if block.ndim > 1 else block.reshape(1, -1)
    return rows if np.shares_memory(rows, block) and rows.strides[1] == block.itemsize else None


def _layout(rows: np.ndarray) -> tuple[int, int]:
    """Rows per block and columns per piece."""
    n = rows.shape[1]
    row_bytes = max(1, n * rows.itemsize)
    if row_bytes <= _BLOCK_BYTES:
        return max(1, _BLOCK_BYTES // row_bytes), n
    return 1, max(1, _BLOCK_BYTES // rows.itemsize)


_UNBUFFERED_ROW_BYTES = 1024
"""Rows from this size on get ufunc buffers of at most one row (shorter rows keep NumPy's)."""


def _set_buffer(n: int, itemsize: int) -> None:
    """Inside an ``errstate`` block (which restores it): buffers of at most ``n`` elements,
    the largest power of two up to ``n``, for rows of ``_UNBUFFERED_ROW_BYTES`` or more."""
    if n * itemsize >= _UNBUFFERED_ROW_BYTES:
        np.setbufsize(min(_DEFAULT_BUFSIZE, 1 << (n.bit_length() - 1)))


def statistics(
    rows: np.ndarray, temperature: float | None, *, unshifted: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(m, s, e)`` per row (``m``, ``s`` as (rows, 1)) when every row maximum is finite.

    ``e = exp((x - m)/T)`` has the rows' shape and ``s`` its row sums; ``temperature`` is
    None or a float <= 1 (larger ones need the halving shift of the portable code). None if
    some maximum is NaN, +inf or -inf: the caller then takes the general statistics, which
    settle those rows.

    With ``unshifted`` (softmax only, T = 1), a block whose row maxima all lie in
    ``[0, UNSHIFTED_MAX]`` skips the shift and reports ``m = 0``: the record only needs
    *a* reference point, ``exp(x)`` cannot overflow there, and ``x - m`` is never rounded
    (the reasoning of the package's NumPy fast path). log_softmax and logsumexp never take
    it: their outputs would pick up an error of ``|m| eps``.
    """
    count, n = rows.shape
    per_block, columns = _layout(rows)
    pieces = -(-n // columns)
    limit = UNSHIFTED_MAX.get(rows.itemsize, -1.0) if unshifted and temperature is None else -1.0
    e = np.empty((count, n), dtype=rows.dtype)
    m = np.empty((count, 1), dtype=rows.dtype)
    sums = np.empty((count, pieces), dtype=rows.dtype)
    with np.errstate(all="ignore"):
        _set_buffer(min(n, columns), rows.itemsize)
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


def rescale(e: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``e * factor`` row by row, in place: ``e`` is the private intermediate of one chunk,
    read by this task only (the statistics were taken from it before), so a fresh output
    (and its page faults) is saved."""
    count, n = e.shape
    per_block, _ = _layout(e)
    with np.errstate(all="ignore"):
        _set_buffer(n, e.itemsize)
        for start in range(0, count, per_block):
            here = slice(start, start + per_block)
            np.multiply(e[here], factor[here], out=e[here])
    return e
