"""Graph-building helpers shared by the Dask backend: chunk layout, alignment and meta.

Everything here reads metadata only (shapes, chunks, ``_meta``), so building a graph never
computes a value. ``meta`` always comes from the chunk type (``x._meta``): a CuPy-backed
array gets CuPy meta, never a NumPy probe.
"""

from __future__ import annotations

from typing import Any

import array_api_compat

Array = Any
"""A ``dask.array.Array``."""

LETTERS = "abcdefghijklmnopqrstuvwxyz"
"""Index letters for ``dask.array.blockwise``; ``F`` is reserved for the statistics axis."""


def indices(ndim: int) -> str:
    """The blockwise index of an array of ``ndim`` dimensions."""
    if ndim > len(LETTERS):
        raise ValueError(f"Dask arrays of more than {len(LETTERS)} dimensions are not supported")
    return LETTERS[:ndim]


def whole_slices(x: Array, axes: tuple[int, ...]) -> bool:
    """Whether every chunk of ``x`` holds whole slices along ``axes`` (one chunk each)."""
    return all(x.numblocks[a] == 1 for a in axes)


def served_whole(x: Array, axes: tuple[int, ...], path: str) -> bool:
    """Whether a call on ``x`` runs on chunks that hold whole slices along ``axes``: where
    they already do, on the portable path (its reference is the plain kernel on whole
    slices) and for empty arrays (nothing to compute); elsewhere the tree serves split
    chunks. The caller rechunks the reduced axes whole (a no-op where they are)."""
    return whole_slices(x, axes) or path == "generic" or x.size == 0


def meta_like(x: Array, dtype: Any, ndim: int | None = None) -> Any:
    """An empty array of ``x``'s chunk type with ``dtype`` and ``ndim >= 1`` dimensions
    (0-d results are built with keepdims and squeezed by Dask)."""
    meta = x._meta
    xp = array_api_compat.array_namespace(meta)
    ndim = max(meta.ndim, 1) if ndim is None else ndim
    empty = xp.reshape(meta, (-1,))[:0]
    empty = empty if empty.dtype == dtype else xp.astype(empty, dtype)
    return xp.reshape(empty, (0,) * ndim)


def expand(a: Array, ndim: int) -> Array:
    """``a`` with leading length-1 axes up to ``ndim`` dimensions (NumPy broadcasting)."""
    if a.ndim == ndim:
        return a
    return a.reshape((1,) * (ndim - a.ndim) + tuple(a.shape))


def aligned(a: Array, like: Array, skip: tuple[int, ...] = ()) -> Array:
    """``a`` (same ndim as ``like``) rechunked to ``like``'s chunks.

    Axes where ``a`` has length 1 stay one chunk (they broadcast), and so do the axes in
    ``skip``. Only the operand is rechunked, never the data: the data's layout decides the
    path (whole slices or tree) and the mask or temperature follows it.
    """
    target = tuple(
        (n,) if n == 1 or i in skip else c
        for i, (n, c) in enumerate(zip(a.shape, like.chunks, strict=True))
    )
    return a if a.chunks == target else a.rechunk(target)


def kept_chunks(x: Array, axes: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """``x``'s chunks with every reduced axis as one chunk of length 1."""
    return tuple((1,) if i in axes else c for i, c in enumerate(x.chunks))


def squeezed(a: Array, axes: tuple[int, ...]) -> Array:
    """``a`` without its length-1 ``axes`` (one chunk each), as one blockwise layer: Dask's
    own ``squeeze`` is a ``getitem`` that lists every chunk in the graph at build time."""
    if not axes:
        return a
    if len(axes) == a.ndim:  # a 0-d result is one chunk: Dask's getitem lists just it
        return a.squeeze(axis=axes)
    xp = array_api_compat.array_namespace(a._meta)
    return a.map_blocks(
        xp.squeeze, axis=axes, drop_axis=axes, meta=meta_like(a, a.dtype, a.ndim - len(axes))
    )


def quiet_sum(block: Any, axis: Any = None, keepdims: bool = False, **_: Any) -> Any:
    """One step of a tree sum (chunk, combine or aggregate), without floating-point warnings
    on NumPy chunks: ``inf + -inf`` or an overflow is a result here, not an accident."""
    from ._package import quiet_floating_point

    xp = array_api_compat.array_namespace(block)
    with quiet_floating_point(xp):
        return xp.sum(block, axis=axis, keepdims=keepdims)


def tree_sum(a: Array, axes: tuple[int, ...] | None, *, keepdims: bool = True) -> Array:
    """Sum of ``a`` over ``axes`` (None: all) as a Dask tree of pairwise-added chunk sums."""
    import dask.array as da

    axes = tuple(range(a.ndim)) if axes is None else axes
    ndim = a.ndim if keepdims else a.ndim - len(axes)
    return da.reduction(  # type: ignore[no-untyped-call]
        a,
        quiet_sum,
        quiet_sum,
        combine=quiet_sum,
        axis=axes,
        keepdims=keepdims,
        dtype=a.dtype,
        meta=meta_like(a, a.dtype, ndim) if ndim else None,  # 0-d: Dask probes _meta
    )
