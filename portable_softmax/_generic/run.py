"""Run a numerical kernel on prepared slices: directly, or compiled by JAX.

A kernel takes ``(slices, *arrays)`` and returns the result in the compute dtype; ``run``
casts it to the result dtype (inside the floating-point guard: float32 beyond 65504 becomes
float16 inf, quietly) and ``Slices.finish`` restores the shape. On JAX the kernel runs under
``jax.jit``: the same array-API code, traced once per shape and dtype into one XLA program
instead of a dozen operations each compiled and run on its own. The mask and the temperature
are traced with the data, a float temperature too, so a new value does not compile a new
program, with the package's JVP as its derivative rule where the kernel has one
(``tangents``). Dask arrays never get here with values to compute: the Dask backend runs these
kernels on each block.
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


def run(kernel: Kernel, slices: Slices, *arrays: Array) -> Array:
    """Apply ``kernel(slices, *arrays)``, with the result in the result dtype."""
    if array_api_compat.is_jax_namespace(slices.xp):
        return _run_jitted(kernel, slices, arrays)
    with quiet_floating_point(slices.xp):
        return in_result_dtype(slices, kernel(slices, *arrays))


def in_result_dtype(slices: Slices, out: Array) -> Array:
    """``out`` cast to the result dtype (call it inside the floating-point guard)."""
    if out.dtype == slices.result_dtype:
        return out
    return slices.xp.astype(out, slices.result_dtype)


_JITTED: dict[tuple[Any, ...], tuple[Callable[..., Array], Callable[..., Array]]] = {}
"""``jax.jit`` of each kernel, by the static part of its slices (JAX keys the shapes): as
is, and with its derivative rule (``tangents``)."""


def _run_jitted(kernel: Kernel, slices: Slices, arrays: tuple[Array, ...]) -> Array:
    import jax  # JAX's arrays are here: it is imported

    # The mask and the temperature are traced with the data (a float temperature as a 0-d
    # array of the compute dtype: a constant of the program would compile anew per value);
    # everything else in the slices (axes, dtypes) is a constant of the program and its key.
    t = slices.temperature
    if isinstance(t, float):
        t = slices.xp.asarray(t, dtype=arrays[0].dtype)
    static = replace(slices, mask=None, temperature=None)
    key = (kernel, static, slices.mask is not None, t is not None)
    pair = _JITTED.get(key)
    if pair is None:
        from .tangents import with_rule

        def traced(mask: Array | None, temperature: Array | None, *arrays: Array) -> Array:
            local = replace(static, mask=mask, temperature=temperature)
            return in_result_dtype(local, kernel(local, *arrays))

        ruled = with_rule(kernel, static, traced, in_result_dtype)
        pair = _JITTED[key] = (jax.jit(traced), jax.jit(ruled))
    # Concrete arrays are not being differentiated: the program without the rule (it
    # compiles a little faster); tracers (under grad, jvp, vmap, an outer jit) get the rule.
    operands = (slices.mask, t, *arrays)
    traced_here = any(isinstance(a, jax.core.Tracer) for a in operands)
    return pair[traced_here](*operands)
