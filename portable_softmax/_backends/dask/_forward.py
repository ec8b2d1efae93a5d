"""softmax, log_softmax and logsumexp on Dask arrays: whole-slice chunks or the tree."""

from __future__ import annotations

from typing import Any

import array_api_compat

from ._blockwise import map_whole_slices
from ._graph import Array, squeezed, whole_slices
from ._output import forward_pass, logsumexp_pass
from ._package import normalize_axis, prepare
from ._tree import statistics


def takes(*arrays: Any) -> bool:
    """Whether this backend takes the call: Dask arrays with something to compute.

    0-d and empty arrays go to the generic path, which settles them from metadata.
    """
    first = arrays[0]
    return (
        all(a is None or array_api_compat.is_dask_array(a) for a in arrays)
        and array_api_compat.is_dask_array(first)
        and first.ndim > 0
        and first.size > 0
    )


def forward(kind: str, x: Array, axis: Any, where: Any, temperature: Any) -> Array:
    """softmax or log_softmax (``kind``) of a Dask array, or NotImplemented."""
    t_array = None if isinstance(temperature, (int, float)) else temperature
    if not takes(x, where, t_array):
        return NotImplemented
    slices, (xc,) = prepare("x", x, axis=axis, where=where, temperature=temperature)
    if slices.empty:
        return NotImplemented
    axes = normalize_axis(axis, x.ndim)
    if slices.added_axis or whole_slices(x, axes):
        return map_whole_slices(
            kind,
            (x,),
            primary=0,
            axes=axes,
            where=where,
            temperature=temperature,
            options={"axis": axes},
            dtype=slices.result_dtype,
        )
    pairs, merged = statistics(
        xc,
        axes=slices.axes,
        mask=slices.mask,
        temperature=slices.temperature,
        keep_exp=kind == "softmax",
    )
    return forward_pass(
        kind,
        xc,
        axes=slices.axes,
        mask=slices.mask,
        temperature=slices.temperature,
        pairs=pairs,
        merged=merged,
        dtype=slices.result_dtype,
    )


def logsumexp(x: Array, axis: Any, where: Any, keepdims: bool) -> Array:
    """logsumexp of a Dask array, or NotImplemented."""
    if not isinstance(keepdims, bool) or not takes(x, where):
        return NotImplemented  # the generic path raises the error
    slices, (xc,) = prepare("x", x, axis=axis, where=where, temperature=None)
    if slices.empty:
        return NotImplemented
    axes = normalize_axis(axis, x.ndim)
    if slices.added_axis:
        return map_whole_slices(
            "logsumexp",
            (x,),
            primary=0,
            axes=axes,
            where=where,
            temperature=None,
            options={"axis": axes},
            dtype=slices.result_dtype,
        )
    if whole_slices(x, axes):
        out = map_whole_slices(
            "logsumexp",
            (x,),
            primary=0,
            axes=axes,
            where=where,
            temperature=None,
            options={"axis": axes, "keepdims": True},
            dtype=slices.result_dtype,
            reduces=True,
        )
    else:
        _, merged = statistics(xc, axes=axes, mask=slices.mask, temperature=None, keep_exp=False)
        out = logsumexp_pass(merged, dtype=slices.result_dtype)
    return out if keepdims else squeezed(out, axes)
