"""Sums whose rounding error grows with ``log n`` along any axis.

NumPy sums pairwise only along a contiguous innermost axis; along a strided axis it adds one
slice at a time, so float32 errors grow with ``n`` (a column of a million 0.1s sums to
100958 instead of 100000). Where the native reduction cannot be trusted we fold the axis in
half repeatedly (a pairwise tree built from slices and additions, so it traces lazily on
every backend) and let the native sum finish the last few entries.
"""

from __future__ import annotations

from types import ModuleType

from .._lib._arguments import Array
from .._lib._call import library_of

_NATIVE_LEAF = 8
"""Lengths at or below this are summed natively: their error is at most 7 roundings."""


def accurate_sum(xp: ModuleType, a: Array, axes: tuple[int, ...]) -> Array:
    """Sum ``a`` over ``axes`` keeping dims, with an error that grows like ``log2 n``."""
    if _native_is_pairwise(a, axes):
        return xp.sum(a, axis=axes, keepdims=True)
    for axis in axes:
        a = _folded_sum(xp, a, axis)
    return a


def _native_is_pairwise(a: Array, axes: tuple[int, ...]) -> bool:
    """Whether the backend's own sum over ``axes`` is already blocked or pairwise."""
    trailing = axes == tuple(range(a.ndim - len(axes), a.ndim))
    if not trailing:
        return False
    library = library_of(a)
    if library == "numpy":
        # Pairwise only when the reduced block is contiguous in memory.
        return bool(a.flags.c_contiguous)
    # CuPy reduces in a tree of thread blocks, PyTorch with cascade sums, Dask per chunk
    # with NumPy (chunks are C-ordered); array-api-strict and JAX get the fold.
    return library in ("cupy", "torch", "dask")


def _folded_sum(xp: ModuleType, a: Array, axis: int) -> Array:
    """Pairwise sum along one axis by repeated halving, keeping the axis (length 1)."""
    leftovers = []
    n = a.shape[axis]
    while n > _NATIVE_LEAF:
        half = n // 2
        if n % 2:
            leftovers.append(a[_along(axis, n - 1, n)])
        a = a[_along(axis, 0, half)] + a[_along(axis, half, 2 * half)]
        n = half
    total = xp.sum(a, axis=axis, keepdims=True)
    # Leftovers are single slices, at most log2(n) of them: adding them last costs as
    # many roundings as one more level of the tree.
    for leftover in reversed(leftovers):
        total = total + leftover
    return total


def _along(axis: int, start: int, stop: int) -> tuple[object, ...]:
    """The index selecting ``start:stop`` along ``axis`` and everything elsewhere
    (the trailing ellipsis is required by strict array-API indexing)."""
    return (*[slice(None)] * axis, slice(start, stop), ...)
