"""softmax, log_softmax and logsumexp on Dask arrays: whole-slice chunks, or the tree."""

from __future__ import annotations

from typing import Any

from ._blockwise import map_whole_slices
from ._graph import Array, served_whole, squeezed
from ._output import forward_pass, logsumexp_pass
from ._package import Call, current_path, prepare
from ._tree import statistics


def layout(call: Any, path: str) -> Any:
    """The call on chunks that hold whole slices (see ``served_whole``), or None when the
    tree serves it."""
    if not served_whole(call.x, call.axes, path):
        return None
    return call._replace(x=call.x.rechunk(dict.fromkeys(call.axes, -1)))


def forward(call: Call) -> Array:
    """softmax or log_softmax (``call.function``) of a Dask array, lazily."""
    path = current_path()
    whole = layout(call, path)
    if whole is not None:
        return map_whole_slices(whole, path)
    slices, (xc,) = prepare(call, call.x)
    kind = call.function
    pairs, merged = statistics(
        xc,
        axes=slices.axes,
        mask=slices.mask,
        temperature=slices.temperature,
        keep_exp=kind == "softmax",
        path=path,
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
        path=path,
    )


def logsumexp(call: Call) -> Array:
    """logsumexp of a Dask array, lazily."""
    path = current_path()
    axes = call.axes
    whole = layout(call, path)
    if whole is not None:
        if not axes:  # every element its own slice: nothing is reduced
            return map_whole_slices(whole, path)
        out = map_whole_slices(whole._replace(keepdims=True), path, reduces=True)
    else:
        slices, (xc,) = prepare(call, call.x)
        _, merged = statistics(
            xc, axes=axes, mask=slices.mask, temperature=None, keep_exp=False, path=path
        )
        out = logsumexp_pass(merged, dtype=slices.result_dtype)
    return out if call.keepdims else squeezed(out, axes)
