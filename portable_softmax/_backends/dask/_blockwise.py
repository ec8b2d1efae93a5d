"""Chunks that hold whole slices: one ``map_blocks`` per chunk, no cross-chunk work.

Each block is computed by the *public* function of the package called on the block itself,
so every chunk takes its own chunk type's fastest path (the NumPy blocked kernels for NumPy
chunks, CuPy's kernels for CuPy chunks) and the edges of SPEC section 2 are settled there.
Operands (mask, temperature, companions) travel as ``map_blocks`` arguments, rechunked to
the data's chunks, so that nothing large is closed over and the graph pickles to
``distributed`` workers.
"""

from __future__ import annotations

from typing import Any

from ._graph import Array, aligned, expand, kept_chunks, meta_like
from ._package import one_thread, public


def _on_block(
    *blocks: Any,
    function: str,
    positional: int,
    keywords: tuple[str, ...],
    options: dict[str, Any],
) -> Any:
    """Call ``portable_softmax.<function>`` on one block (runs on a worker, on one thread:
    Dask's workers are the parallelism)."""
    kwargs = dict(options)
    kwargs.update(zip(keywords, blocks[positional:], strict=True))
    with one_thread():
        return getattr(public(), function)(*blocks[:positional], **kwargs)


def map_whole_slices(
    function: str,
    arrays: tuple[Array, ...],
    *,
    primary: int,
    axes: tuple[int, ...],
    where: Array | None,
    temperature: Any,
    options: dict[str, Any],
    dtype: Any,
    reduces: bool = False,
) -> Array:
    """``function`` on every chunk of ``arrays[primary]``, whose chunks hold whole slices.

    ``where`` and an array ``temperature`` are expanded to the data's dimensions and
    rechunked to its chunks (their length-1 axes stay one chunk and broadcast); a float
    temperature goes into ``options``. ``reduces`` says the reduced axes come back with
    length 1 (logsumexp with ``keepdims=True``).
    """
    import dask.array as da

    x = arrays[primary]
    operands: list[Array] = [aligned(a, x) if i != primary else a for i, a in enumerate(arrays)]
    keywords: list[str] = []
    options = dict(options)
    if where is not None:
        operands.append(aligned(expand(where, x.ndim), x))
        keywords.append("where")
    if temperature is not None and not isinstance(temperature, (int, float)):
        operands.append(aligned(expand(temperature, x.ndim), x))
        keywords.append("temperature")
    elif temperature is not None:
        options["temperature"] = temperature
    return da.map_blocks(  # type: ignore[no-untyped-call]
        _on_block,
        *operands,
        function=function,
        positional=len(arrays),
        keywords=tuple(keywords),
        options=options,
        dtype=dtype,
        chunks=kept_chunks(x, axes) if reduces else x.chunks,
        meta=meta_like(x, dtype),
    )
