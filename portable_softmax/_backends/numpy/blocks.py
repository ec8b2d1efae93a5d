"""The NumPy fast path: cache-blocked kernels writing into one fresh output.

The portable chain makes five full-array passes through main memory with three temporaries.
Here rows are processed in blocks small enough to stay in the L2 cache, every step writes
into the block of the output, so main memory sees one read of the input and one write of the
output. Rows longer than ``_CHUNK_BYTES`` are processed in column chunks: each chunk is
exponentiated and summed while it is in cache, and the per-chunk pairwise sums are added
pairwise, so sums stay as accurate as one pairwise sum over the row. Blocks run under a
ufunc buffer no longer than a row (see ``_UNBUFFERED_ROW_BYTES``), and softmax and
logsumexp skip the shift by the row maximum where that is safe (see :func:`softmax`).

Only the common case comes here (the registry's capabilities for this backend): a NumPy
``ndarray`` of float32 or float64 as rows, with no mask and no temperature array. A block
whose row maxima are not all finite (NaN, +inf, or nothing finite) is handed to the portable
kernel, which settles the edges; NumPy arrays are eager host arrays, so this per-block check traces
nothing and synchronises nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..._config import edges_enabled
from ..._lib._slices import Slices

BLOCK_BYTES = 256 * 1024
"""Bytes of input per block: the input, output and scratch blocks stay in the L2 cache."""

BACKWARD_BLOCK_BYTES = 128 * 1024
"""Bytes of ``y`` per backward block: ``y``, ``g`` and the output blocks stay in cache."""

_ONE_BLOCK_BYTES = 256 * 1024
"""Inputs up to this size are one block whatever the kernel's block size: they live in
cache anyway, and per-block calls would only add interpreter overhead. (At 1 MiB, one block
of the backward's three arrays overflowed the L2 cache: 10% slower at (256, 1000).)"""

_CHUNK_BYTES = 256 * 1024
"""Rows longer than this are processed in column chunks of this size, so that each chunk's
passes (shift, exp, sum) stay in the L2 cache."""

_UNBUFFERED_ROW_BYTES = 1024
"""From this row size on, ufuncs run with a buffer of at most ``n`` elements. With the
default buffer (8192 elements, NumPy 2.x) the ufunc machinery copies the per-row operand of a
broadcast ``(rows, n) - (rows, 1)`` into buffers whenever ``n`` is at most half the buffer,
which makes the shift and the scaling about 3x slower than the same work without
broadcasting. Sums come out bitwise the same with either buffer size."""

_DEFAULT_BUFSIZE = 8192
"""NumPy's default ufunc buffer size, in elements."""

UNSHIFTED_MAX = {4: 64.0, 8: 512.0}
"""Per itemsize, the largest row maximum for which softmax may skip the shift by ``m``: ``n``
terms up to ``exp(limit)`` sum below the dtype's largest value for any ``n < 2**31``."""

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)

Kernel = Callable[..., Any]
"""A portable kernel ``(slices, *arrays)`` of ``portable_softmax._generic``."""


def rows_of(x: np.ndarray) -> np.ndarray:
    """``x`` as a 2-D (rows, n) view along its last axis."""
    return x.reshape(1, -1) if x.ndim == 1 else x.reshape(-1, x.shape[-1])


def blockwise(
    x: np.ndarray,
    *others: np.ndarray,
    block: Callable[..., bool],
    fallback: Kernel,
    temperature: float | None,
    out_columns: int | None = None,
    scratch: bool = True,
    block_bytes: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Run ``block(out_block, scratch, *in_blocks)`` over row blocks, into ``out`` (rows of
    the result's shape; it may be ``x`` itself where ``block`` reads each element before
    writing it) or a fresh output.

    ``block`` returns False, before writing, when its rows need the portable kernel
    ``fallback``. With ``scratch=False`` the block gets None instead of a scratch block of
    the input's shape; ``block_bytes`` (bytes of ``x`` per block) defaults to
    ``BLOCK_BYTES``.
    """
    rows = rows_of(x)
    arrays = (rows, *(rows_of(o) for o in others))
    count, n = rows.shape
    if out is None:
        out = np.empty((count, n if out_columns is None else out_columns), dtype=x.dtype)
    row_bytes = n * x.itemsize
    if x.nbytes <= _ONE_BLOCK_BYTES:
        per_block = max(1, _ONE_BLOCK_BYTES // row_bytes)
    else:
        per_block = max(1, (block_bytes or BLOCK_BYTES) // row_bytes)
    work = np.empty((min(per_block, count), n), dtype=x.dtype) if scratch else None
    with np.errstate(all="ignore"):
        block_buffer(n, x.itemsize)
        for start in range(0, count, per_block):
            rows_here = slice(start, start + per_block)
            blocks = [a[rows_here] for a in arrays]
            block_work = None if work is None else work[: len(blocks[0])]
            if block(out[rows_here], block_work, *blocks) is False:
                out[rows_here] = fallback(row_slices(temperature), *blocks)
    return out


def block_buffer(n: int, itemsize: int) -> None:
    """Inside an ``errstate`` block (which restores it): ufunc buffers of at most ``n``
    elements for rows of ``_UNBUFFERED_ROW_BYTES`` or more: the largest power of two up to
    ``n`` (at most the default), so rows are over half a buffer, and casts in a caller's
    block still get buffers of useful size."""
    if n * itemsize >= _UNBUFFERED_ROW_BYTES:
        np.setbufsize(min(_DEFAULT_BUFSIZE, 1 << (n.bit_length() - 1)))


def column_chunks(n: int, itemsize: int) -> list[slice]:
    """Column slices of ``_CHUNK_BYTES`` each (one slice for rows shorter than that)."""
    step = max(1, _CHUNK_BYTES // itemsize)
    if n <= step:
        return [slice(None)]
    return [slice(start, start + step) for start in range(0, n, step)]


def chunked_sum(
    rows: int, dtype: np.dtype[Any], chunks: list[slice], fill: Callable[[slice], np.ndarray]
) -> np.ndarray:
    """Per-row sum, over all chunks, of the ``(rows, width)`` arrays that ``fill`` returns.

    Each chunk is summed (pairwise) right after ``fill`` wrote it, while it is still in
    cache; the per-chunk sums of a row are then added pairwise too, so accuracy stays that
    of one pairwise sum over the row.
    """
    if len(chunks) == 1:
        whole: np.ndarray = fill(chunks[0]).sum(axis=1, keepdims=True)
        return whole
    partial = np.empty((rows, len(chunks)), dtype=dtype)  # a row's partials contiguous:
    for j, chunk in enumerate(chunks):  # NumPy sums pairwise only along contiguous axes
        fill(chunk).sum(axis=1, out=partial[:, j])
    total: np.ndarray = partial.sum(axis=1, keepdims=True)
    return total


def chunk_scratch(holder: list[np.ndarray], part: np.ndarray) -> np.ndarray:
    """Scratch of ``part``'s shape, allocated once per call into ``holder``.

    The first request comes from the first block's first chunk, the largest of all.
    """
    if not holder:
        holder.append(np.empty(part.shape, dtype=part.dtype))
    return holder[0][: part.shape[0], : part.shape[1]]


def row_slices(temperature: float | None) -> Slices:
    """Slices for the portable kernel on a 2-D block reduced over its rows."""
    import array_api_compat.numpy as numpy_namespace

    return Slices(
        numpy_namespace,
        axes=(1,),
        mask=None,
        temperature=temperature,
        result_dtype=None,
        added_axis=False,
        empty=False,
    )


def shift(xb: np.ndarray, m: np.ndarray, temperature: float | None, out: np.ndarray) -> None:
    """``out = (xb - m) / T``, through halves when T > 1 (see ``Slices.shift``)."""
    if temperature is None or temperature <= 1:
        np.subtract(xb, m, out=out)
        if temperature is not None:
            np.divide(out, temperature, out=out)
        return
    np.multiply(xb, 0.5, out=out)
    np.subtract(out, m * 0.5, out=out)
    np.divide(out, temperature * 0.5, out=out)


def finite(m: np.ndarray) -> bool:
    """Whether every row maximum is finite; always True under the private edge switch
    (``_config.without_edge_handling``), which measures what the check costs."""
    return not edges_enabled() or bool(np.isfinite(m).all())
