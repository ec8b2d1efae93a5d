"""Chunks that hold whole slices along the reduced axes: one task per chunk, no cross-chunk work.

Each block is the same call on the block's arrays, run through the registry with the path
setting of the caller (captured when the graph is built: Dask's workers do not share it), so
every chunk takes its chunk type's path (numba or NumPy for NumPy chunks, CuPy for CuPy
chunks, the portable kernels under ``generic``), on one thread: Dask's workers are the
parallelism. Operands (mask, temperature, companions) travel as ``map_blocks`` arguments,
rechunked to the data's chunks, and the call itself travels without its arrays and
namespace, so that nothing large is closed over and the graph pickles to ``distributed``
workers.
"""

from __future__ import annotations

from typing import Any

import array_api_compat

from ._graph import Array, aligned, expand, kept_chunks, meta_like
from ._package import Call, dispatch, library_of, one_thread


def static(call: Any, **arrays: None) -> Any:
    """``call`` without its namespace and the named arrays, for a graph's tasks."""
    return call._replace(xp=None, library="", **arrays)


def on_blocks(static_call: Any, first: Any, **arrays: Any) -> Any:
    """The static call completed with one block's arrays and namespace."""
    return static_call._replace(
        xp=array_api_compat.array_namespace(first),
        library=library_of(first),
        **arrays,
    )


def _on_block(
    *blocks: Any, call: Call, has_vector: bool, has_mask: bool, has_t: bool, path: str
) -> Any:
    """The call on one block (runs on a worker)."""
    rest = list(blocks)
    x = rest.pop(0)
    vector = rest.pop(0) if has_vector else None
    where = rest.pop(0) if has_mask else None
    temperature = rest.pop(0) if has_t else call.temperature
    local = on_blocks(call, x, x=x, vector=vector, where=where, temperature=temperature)
    with one_thread():
        return dispatch(local, path)


def map_whole_slices(call: Call, path: str, *, reduces: bool = False) -> Array:
    """``call`` on every chunk of ``call.x``, whose chunks hold whole slices.

    ``where`` and an array temperature are expanded to the data's dimensions and rechunked
    to its chunks (their length-1 axes stay one chunk and broadcast). ``reduces`` says the
    reduced axes come back with length 1 (logsumexp with ``keepdims=True``).
    """
    import dask.array as da

    x = call.x
    operands: list[Array] = [x]
    if call.vector is not None:
        operands.append(aligned(call.vector, x))
    if call.where is not None:
        operands.append(aligned(expand(call.where, x.ndim), x))
    has_t = call.temperature is not None and not isinstance(call.temperature, float)
    if has_t:
        operands.append(aligned(expand(call.temperature, x.ndim), x))
    kept = call._replace(temperature=None) if has_t else call
    dtype = call.result_dtype
    return da.map_blocks(  # type: ignore[no-untyped-call]
        _on_block,
        *operands,
        call=static(kept, x=None, vector=None, where=None),
        has_vector=call.vector is not None,
        has_mask=call.where is not None,
        has_t=has_t,
        path=path,
        dtype=dtype,
        chunks=kept_chunks(x, call.axes) if reduces else x.chunks,
        meta=meta_like(x, dtype),
    )
