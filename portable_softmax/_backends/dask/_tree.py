"""Chunks that split the reduced axes (and ``axis=None``): a tree of per-slice statistics.

Per chunk and slice we keep ``(m, s, k, n)``: the largest finite unmasked entry ``m`` (-inf
when there is none), ``s = sum(exp((x - m)/T))`` over the finite unmasked entries, the count
``k`` of unmasked +inf entries and the count ``n`` of unmasked NaNs. Two such records merge
exactly as one slice would: ``m = max(m1, m2)``, ``s = s1 exp((m1 - m)/T) + s2 exp((m2 - m)/T)``
and the counts add, so after ``dask.array.reduction`` every slice has its global record and
the SPEC section 2 table is read off it: ``n > 0`` NaN, ``k > 0`` 1/k at the +inf entries,
``m = -inf`` nothing finite, else the formula. An array temperature rides along as a fifth
field, because the merge needs it. Sums inside a chunk are pairwise (``accurate_sum``) and the
tree adds chunk sums pairwise, so the error stays within the ``log2 n`` term of SPEC
section 3. Then one elementwise pass per chunk writes softmax or log_softmax.

NumPy chunks whose slices are all plain (finite maxima) and lie as rows (the reduced axes
last) take the registry's ``row_statistics`` block operation (numba's or NumPy's cache-blocked
one, as the path setting picks) and keep ``exp((x - m_chunk)/T)`` from the statistics pass,
so that the output pass only rescales it: one exponential per entry in all, as in one NumPy
call. Every block function runs under NumPy's floating-point guard itself
(worker threads do not inherit ``errstate``) and takes its namespace from the block, so CuPy
chunks run the same graph on the GPU.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat

from ._graph import Array, aligned, expand, indices, meta_like
from ._package import Call, Slices, accurate_sum, dispatch, quiet_floating_point

M, S, K, N, T = range(5)
"""Fields of a statistics record, along its leading axis."""


def _local(xp: Any, axes: tuple[int, ...], mask: Any, temperature: Any, dtype: Any) -> Slices:
    """Slices over one block, for the shared edge helpers (fill_masked, shift)."""
    return Slices(xp, axes, mask, temperature, dtype, False, False)


def slice_operands(
    x: Array, axes: tuple[int, ...], mask: Array | None, temperature: Any, *extra: Array
) -> tuple[list[Any], dict[str, Any]]:
    """Blockwise operands: ``x`` and the ``extra`` arrays (on its chunks already), then the
    mask and an array temperature, rechunked to ``x``'s chunks (their length-1 axes stay one
    chunk and broadcast); and ``slicing``, the keywords that tell a block function what it
    receives (:func:`block_slices` reads them)."""
    ind = indices(x.ndim)
    operands: list[Any] = [x, ind]
    for a in extra:
        operands += [a, ind]
    has_t = temperature is not None and not isinstance(temperature, float)
    if mask is not None:
        operands += [aligned(mask, x), ind]
    if has_t:
        operands += [aligned(expand(temperature, x.ndim), x), ind]
    slicing = {
        "axes": axes,
        "has_mask": mask is not None,
        "has_t": has_t,
        "temperature": None if has_t else temperature,
    }
    return operands, slicing


def block_slices(
    xp: Any,
    dtype: Any,
    rest: tuple[Any, ...],
    *,
    axes: tuple[int, ...],
    has_mask: bool,
    has_t: bool,
    temperature: Any,
) -> tuple[Slices, list[Any]]:
    """The slices of one block (mask and temperature from its trailing operands, as
    :func:`slice_operands` laid them out) and the operands after them."""
    items = list(rest)
    mask = items.pop(0) if has_mask else None
    t = items.pop(0) if has_t else temperature
    return _local(xp, axes, mask, t, dtype), items


def rows_of(block: Any, axes: tuple[int, ...]) -> Any:
    """A NumPy ``block`` as a 2-D (rows, n) view with the reduced axes last, or None where
    that would need a copy (the general statistics then serve it)."""
    import numpy as np

    if axes != tuple(range(block.ndim - len(axes), block.ndim)):
        return None
    n = math.prod(block.shape[block.ndim - len(axes) :])
    rows = block.reshape(-1, n) if block.ndim > 1 else block.reshape(1, -1)
    return rows if np.shares_memory(rows, block) and rows.strides[1] == block.itemsize else None


def rows_call(function: str, rows: Any, vector: Any, temperature: Any, keep: bool) -> Call:
    """The registry's description of a block operation on NumPy ``rows`` (``row_statistics``:
    ``keep`` the exponentials; ``rescale_rows``: ``vector`` the factors)."""
    import array_api_compat.numpy as numpy_namespace

    dtype = rows.dtype
    return Call(function, numpy_namespace, "numpy", rows, vector, (1,), None, temperature,
                keep, dtype, dtype)  # fmt: skip


def _plain_statistics(local: Slices, masked: Any, *, keep: bool, path: str) -> Any:
    """NumPy rows with finite maxima: ``(m, s, e)`` from the registry's ``row_statistics``;
    None where none takes them or some slice is at an edge (the general step settles it).

    Reading the block's values is fine here: a NumPy block is an eager host array inside a
    worker task, so nothing is traced and nothing waits for a device.
    """
    t = local.temperature
    rows = rows_of(masked, local.axes)
    if rows is None or not isinstance(t, (float, type(None))):
        return None
    found = dispatch(rows_call("row_statistics", rows, None, t, keep), path, _none)
    if found is None:
        return None
    m, s, e = found
    shape = tuple(1 if i in local.axes else n for i, n in enumerate(masked.shape))
    return m.reshape(shape), s.reshape(shape), None if e is None else e.reshape(masked.shape)


def _none(call: Any) -> None:
    """No backend takes this block operation: the general step serves the block."""
    return None


def _general_statistics(local: Slices, masked: Any) -> tuple[Any, Any, Any, Any]:
    """``(m, s, k, n)`` of one block for any chunk type and any values."""
    xp = local.xp
    axes = local.axes
    dtype = masked.dtype
    n = xp.sum(xp.astype(xp.isnan(masked), dtype), axis=axes, keepdims=True)
    k = xp.sum(xp.astype(masked == math.inf, dtype), axis=axes, keepdims=True)
    finite = xp.where(xp.isfinite(masked), masked, -math.inf)
    m = xp.max(finite, axis=axes, keepdims=True)
    # Shift a slice with nothing finite by 0, so that its -inf entries give exp(-inf) = 0.
    e = xp.exp(local.shift(finite, xp.where(m == -math.inf, 0.0, m)))
    return m, accurate_sum(xp, e, axes), k, n


def _statistics_block(
    x: Any, *rest: Any, slicing: dict[str, Any], keep_exp: bool, path: str
) -> Any:
    """The statistics record of one chunk (and, for softmax, its exponentials or None)."""
    xp = array_api_compat.array_namespace(x)
    with quiet_floating_point(xp):
        local, _ = block_slices(xp, x.dtype, rest, **slicing)
        masked = local.fill_masked(x, -math.inf)
        plain = None
        if array_api_compat.is_numpy_array(x):
            plain = _plain_statistics(local, masked, keep=keep_exp, path=path)
        e = None
        if plain is None:
            fields = list(_general_statistics(local, masked))
        else:
            m, s, e = plain
            zero = xp.zeros_like(m)
            fields = [m, s, zero, zero]
        if slicing["has_t"]:
            fields.append(xp.astype(xp.broadcast_to(local.temperature, fields[0].shape), x.dtype))
        stats = xp.stack(fields)
    return (e if keep_exp else None, stats)


def _first(a: Any, axes: tuple[int, ...]) -> Any:
    """The first entry along ``axes`` (temperatures repeat along the reduced axes)."""
    return a[tuple(slice(0, 1) if i in axes else slice(None) for i in range(a.ndim))]


def _merge(
    stats: Any,
    axis: tuple[int, ...],
    keepdims: bool = True,
    *,
    has_t: bool,
    temperature: float | None,
) -> Any:
    """Merge the records along ``axis`` (the tree's chunk, combine and aggregate step)."""
    xp = array_api_compat.array_namespace(stats)
    axes = tuple(a - 1 for a in axis)  # the record fields lead
    with quiet_floating_point(xp):
        m, s = stats[M], stats[S]
        top = xp.max(m, axis=axes, keepdims=True)
        t = _first(stats[T], axes) if has_t else temperature
        local = _local(xp, axes, None, t, stats.dtype)
        # shift gives exact 0 where m == top (also -inf == -inf: a slice with nothing
        # finite has s = 0 and stays 0), and the halving trick for T > 1.
        total = accurate_sum(xp, s * xp.exp(local.shift(m, top)), axes)
        fields = [top, total]
        fields += [xp.sum(stats[f], axis=axes, keepdims=True) for f in (K, N)]
        if has_t:
            fields.append(t)
        return xp.stack(fields)


def _take_stats(pair: tuple[Any, Any]) -> Any:
    return pair[1]


def statistics(
    x: Array,
    *,
    axes: tuple[int, ...],
    mask: Array | None,
    temperature: Any,
    keep_exp: bool,
    path: str,
) -> tuple[Array, Array]:
    """The per-chunk ``(exponentials, record)`` array and the merged records.

    The first is a Dask array whose blocks are ``(e or None, record)`` pairs, aligned with
    ``x``'s chunks; the second has the fields on a leading axis and length 1 on ``axes``.
    """
    import dask.array as da

    ind = indices(x.ndim)
    operands, slicing = slice_operands(x, axes, mask, temperature)
    has_t = slicing["has_t"]
    fields = 5 if has_t else 4
    meta = meta_like(x, x.dtype)
    pairs = da.blockwise(  # type: ignore[no-untyped-call]
        _statistics_block,
        ind,
        *operands,
        slicing=slicing,
        keep_exp=keep_exp,
        path=path,
        dtype=x.dtype,
        meta=meta,
    )
    records = da.blockwise(  # type: ignore[no-untyped-call]
        _take_stats,
        "F" + ind,
        pairs,
        ind,
        new_axes={"F": fields},
        adjust_chunks={ind[a]: 1 for a in axes},
        dtype=x.dtype,
        meta=meta_like(x, x.dtype, x.ndim + 1),
    )
    merge = _merge_function(has_t, None if has_t else temperature)
    merged = da.reduction(  # type: ignore[no-untyped-call]
        records,
        merge,
        merge,
        combine=merge,
        axis=tuple(a + 1 for a in axes),
        keepdims=True,
        dtype=x.dtype,
        concatenate=True,
        meta=meta_like(x, x.dtype, x.ndim + 1),
    )
    return pairs, merged


def _merge_function(has_t: bool, temperature: float | None) -> Any:
    import functools

    return functools.partial(_merge, has_t=has_t, temperature=temperature)
