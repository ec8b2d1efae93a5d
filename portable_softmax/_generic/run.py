"""Run a numerical kernel on prepared slices: directly, compiled by JAX, or blockwise on Dask.

A kernel takes ``(slices, *arrays)`` and returns the result in the compute dtype; ``run``
casts it to the result dtype and ``Slices.finish`` restores the shape. On JAX the kernel
runs under ``jax.jit``: the same array-API code, traced once per shape and dtype into one
XLA program instead of a dozen operations each compiled and run on its own (a float
temperature is a constant of the program, as a static argument would be). On
Dask the reduced axes are rechunked whole and the kernel runs on each NumPy block through
``map_blocks``: the graph stays lazy, blocks run in parallel on the workers, and the NumPy
code runs under the same floating-point guard as eager NumPy (a guard set in the calling
thread would not reach Dask's worker threads).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import array_api_compat

from .._lib._arguments import Array
from .._lib._quiet import quiet_floating_point
from .._lib._slices import Slices

Kernel = Callable[..., Array]


def run(kernel: Kernel, slices: Slices, *arrays: Array, reduces: bool = False) -> Array:
    """Apply ``kernel(slices, *arrays)``; ``reduces`` says the reduced axes come back as 1."""
    if array_api_compat.is_dask_namespace(slices.xp):
        return _run_blockwise(kernel, slices, arrays, reduces=reduces)
    if array_api_compat.is_jax_namespace(slices.xp):
        return _run_jitted(kernel, slices, arrays)
    with quiet_floating_point(slices.xp):
        return _in_result_dtype(slices, kernel(slices, *arrays))


def _in_result_dtype(slices: Slices, out: Array) -> Array:
    """Cast inside the floating-point guard: float32 beyond 65504 becomes float16 inf."""
    if out.dtype == slices.result_dtype:
        return out
    return slices.xp.astype(out, slices.result_dtype)


_JITTED: dict[tuple[Any, ...], Callable[..., Array]] = {}
"""``jax.jit`` of each kernel, by the static part of its slices (JAX keys the shapes)."""


def _run_jitted(kernel: Kernel, slices: Slices, arrays: tuple[Array, ...]) -> Array:
    # The mask and an array temperature are traced with the data; everything else in the
    # slices (axes, dtype, a float temperature) is a constant of the program and its key.
    traced_t = slices.temperature is not None and not isinstance(slices.temperature, float)
    static = replace(slices, mask=None, temperature=None if traced_t else slices.temperature)
    key = (kernel, static, slices.mask is not None, traced_t)
    jitted = _JITTED.get(key)
    if jitted is None:
        import jax

        def traced(mask: Array | None, temperature: Array | None, *arrays: Array) -> Array:
            local = replace(static, mask=mask)
            if traced_t:
                local = replace(local, temperature=temperature)
            return _in_result_dtype(local, kernel(local, *arrays))

        jitted = _JITTED[key] = jax.jit(traced)
    return jitted(slices.mask, slices.temperature if traced_t else None, *arrays)


def _run_blockwise(
    kernel: Kernel, slices: Slices, arrays: tuple[Array, ...], *, reduces: bool
) -> Array:
    import array_api_compat.numpy as numpy_namespace
    import dask.array as da
    import numpy as np

    axes = slices.axes
    first = arrays[0].rechunk({axis: -1 for axis in axes})
    chunks = first.chunks
    # Every operand gets the first one's chunks (size-1 axes stay one chunk and broadcast),
    # so that map_blocks pairs blocks that cover the same entries.
    arrays = (first, *(_aligned(a, chunks) for a in arrays[1:]))
    reduced_chunks = tuple((1,) if i in axes else c for i, c in enumerate(chunks))
    operands: list[Any] = list(arrays)
    if slices.mask is not None:
        operands.append(_aligned(slices.mask, chunks))
    temperature = slices.temperature
    if temperature is not None and not isinstance(temperature, float):
        keep_shape = tuple(sum(c) for c in reduced_chunks)
        broadcast = da.broadcast_to(temperature, keep_shape)  # type: ignore[no-untyped-call]
        operands.append(broadcast.rechunk(reduced_chunks))
    traced_t = temperature is not None and not isinstance(temperature, float)
    # Only the static part of the slices travels (the blocks bring mask and temperature),
    # and a module-level block function: Dask tokenizes every argument of map_blocks, and a
    # closure over the slices (Dask arrays inside) went through cloudpickle, ms per call.
    static = replace(
        slices,
        xp=numpy_namespace,
        mask=None,
        temperature=None if traced_t else temperature,
    )
    dtype = slices.result_dtype
    return da.map_blocks(  # type: ignore[no-untyped-call]
        _on_numpy_block,
        *operands,
        kernel=kernel,
        static=static,
        count=len(arrays),
        has_mask=slices.mask is not None,
        traced_t=traced_t,
        dtype=dtype,
        chunks=reduced_chunks if reduces else chunks,
        meta=np.empty((0,) * arrays[0].ndim, dtype=dtype),
    )


def _on_numpy_block(
    *blocks: Any, kernel: Kernel, static: Slices, count: int, has_mask: bool, traced_t: bool
) -> Any:
    """The kernel on one NumPy block: ``count`` arrays, then the mask and the temperature
    blocks where the call has them."""
    import numpy as np

    rest = list(blocks[count:])
    local = replace(static, mask=rest.pop(0) if has_mask else None)
    if traced_t:
        local = replace(local, temperature=rest.pop(0))
    with quiet_floating_point(local.xp):
        return np.asarray(_in_result_dtype(local, kernel(local, *blocks[:count])))


def _aligned(a: Array, chunks: tuple[tuple[int, ...], ...]) -> Array:
    """``a`` rechunked like an array of ``chunks``; its size-1 (broadcast) axes stay whole."""
    own = tuple(c if n == sum(c) else (n,) for n, c in zip(a.shape, chunks, strict=True))
    return a.rechunk(own)
