"""The VJPs and JVPs on Dask arrays: whole-slice chunks, or one tree sum then one pass.

Their only cross-entry quantity is a plain per-slice sum (``sum(g*y)``, ``sum(g)`` or
``sum(exp(logp)*t)``): pairwise inside each chunk, pairwise across chunks in Dask's tree,
then one elementwise pass per chunk. Masked entries are zeroed before the sum and in the
result, so whatever they hold never leaks.
"""

from __future__ import annotations

from typing import Any

import array_api_compat

from ._blockwise import map_whole_slices
from ._forward import layout
from ._graph import Array, aligned, indices, meta_like, tree_sum
from ._package import Call, accurate_sum, current_path, prepare, quiet_floating_point
from ._tree import _local, block_slices, slice_operands


def _summand(kind: str, xp: Any, local: Any, p: Any, v: Any) -> Any:
    if kind.startswith("softmax"):
        return local.zero_masked(v * p)
    if kind == "log_softmax_backward":
        return local.zero_masked(v)
    return local.zero_masked(xp.exp(p) * v)


def _partial_block(p: Any, v: Any, *rest: Any, kind: str, axes: tuple[int, ...]) -> Any:
    xp = array_api_compat.array_namespace(p)
    mask = rest[0] if rest else None
    with quiet_floating_point(xp):
        local = _local(xp, axes, mask, None, p.dtype)
        return accurate_sum(xp, _summand(kind, xp, local, p, v), axes)


def _output_block(
    p: Any, v: Any, *rest: Any, kind: str, slicing: dict[str, Any], result_dtype: Any
) -> Any:
    xp = array_api_compat.array_namespace(p)
    with quiet_floating_point(xp):
        local, (total,) = block_slices(xp, p.dtype, rest, **slicing)
        if kind.startswith("softmax"):
            out = _summand(kind, xp, local, p, v) - p * total
        elif kind == "log_softmax_backward":
            out = local.zero_masked(v) - xp.exp(p) * total
        else:
            out = v - total
        out = local.zero_masked(local.divide_by_temperature(out))
        return out if out.dtype == result_dtype else xp.astype(out, result_dtype)


def derivative(call: Call) -> Array:
    """``call.function`` (a VJP or JVP) of Dask arrays, lazily."""
    path = current_path()
    whole = layout(call, path)
    if whole is not None:
        return map_whole_slices(whole, path)
    slices, (p, v) = prepare(call, call.x, call.vector)
    return _tree(call.function, p, aligned(v, p), slices)


def _tree(kind: str, p: Array, v: Array, slices: Any) -> Array:
    import dask.array as da

    axes = slices.axes
    ind = indices(p.ndim)
    mask = slices.mask
    operands: list[Any] = [p, ind, v, ind]
    if mask is not None:
        operands += [aligned(mask, p), ind]
    partials = da.blockwise(  # type: ignore[no-untyped-call]
        _partial_block,
        ind,
        *operands,
        kind=kind,
        axes=axes,
        adjust_chunks={ind[a]: 1 for a in axes},
        dtype=p.dtype,
        meta=meta_like(p, p.dtype),
    )
    total = tree_sum(partials, axes)
    operands, slicing = slice_operands(p, axes, mask, slices.temperature, v)
    dtype = slices.result_dtype
    return da.blockwise(  # type: ignore[no-untyped-call]
        _output_block,
        ind,
        *operands,
        total,
        ind,
        kind=kind,
        slicing=slicing,
        result_dtype=dtype,
        dtype=dtype,
        meta=meta_like(p, dtype),
    )
