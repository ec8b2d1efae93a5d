"""JAX's derivative rules for the portable kernels: ``jax.custom_jvp`` from this package's JVPs.

JAX would otherwise differentiate the kernels' chains (a dozen ``where``, ``max`` and
slicing steps, each with its own derivative, and the NaN guards of the edges). A kernel with
a rule here gets a ``custom_jvp`` whose tangent with respect to ``x`` is the package's JVP,
linear in the tangent, so ``grad`` works by JAX's transposition and is NaN-free wherever
the JVP is (SPEC section 2). The tangents of the other floating inputs (an array
temperature, a class weight) come from JAX's own JVP of the kernel with respect to them,
as before: every input that was differentiable stays so. The mask and labels have none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .._lib._arguments import Array
from .._lib._slices import Slices
from .derivatives import log_softmax_jvp_kernel, softmax_product_kernel
from .forward import log_softmax_kernel, logsumexp_kernel, softmax_kernel
from .reductions import accurate_sum

__all__ = ["Rule", "register", "with_rule"]

Rule = Callable[[Slices, Array, tuple[Array, ...], Array], Array]
"""``rule(slices, out, arrays, dx)``: the tangent of the kernel's output (in the compute
dtype, ``out`` its value there) for a tangent ``dx`` of its first array."""

_RULES: dict[Any, Rule] = {}


def register(kernel: Any, rule: Rule) -> None:
    """Give ``kernel`` its rule (the cross-entropy kernels register theirs when built)."""
    _RULES[kernel] = rule


def _softmax_tangent(slices: Slices, y: Array, arrays: tuple[Array, ...], dx: Array) -> Array:
    return softmax_product_kernel(slices, y, dx)


def _log_softmax_tangent(
    slices: Slices, logp: Array, arrays: tuple[Array, ...], dx: Array
) -> Array:
    return log_softmax_jvp_kernel(slices, logp, dx)


def _logsumexp_tangent(slices: Slices, _: Array, arrays: tuple[Array, ...], dx: Array) -> Array:
    p = softmax_kernel(slices, arrays[0])
    return accurate_sum(slices.xp, slices.zero_masked(p * dx), slices.axes)


register(softmax_kernel, _softmax_tangent)
register(log_softmax_kernel, _log_softmax_tangent)
register(logsumexp_kernel, _logsumexp_tangent)


def with_rule(
    kernel: Any, static: Slices, traced: Callable[..., Array], cast: Callable[..., Array]
) -> Callable[..., Array]:
    """``traced(mask, temperature, *arrays)`` with the kernel's rule as its JVP, or
    ``traced`` itself for a kernel without one. ``cast(slices, out)`` puts a compute-dtype
    result in the result dtype, as ``traced`` does."""
    rule = _RULES.get(kernel)
    if rule is None:
        return traced
    import jax
    from jax.custom_derivatives import SymbolicZero

    def jvp(primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Array, Array]:
        mask, temperature, *arrays = primals
        local = replace(static, mask=mask, temperature=temperature)
        out = kernel(local, *arrays)
        dx = tangents[2]
        tangent = None if isinstance(dx, SymbolicZero) else rule(local, out, tuple(arrays), dx)
        # the other floating inputs with a tangent: JAX's own JVP of the kernel for them
        others = [
            i for i in range(1, len(primals))
            if i != 2 and primals[i] is not None and not isinstance(tangents[i], SymbolicZero)
            and jax.numpy.issubdtype(primals[i].dtype, jax.numpy.inexact)
        ]  # fmt: skip
        if others:

            def of_others(*values: Array) -> Array:
                replaced = list(primals)
                for i, value in zip(others, values, strict=True):
                    replaced[i] = value
                mask, temperature, *arrays = replaced
                return kernel(replace(static, mask=mask, temperature=temperature), *arrays)

            point = tuple(primals[i] for i in others)
            direction = tuple(tangents[i] for i in others)
            _, extra = jax.jvp(of_others, point, direction)
            tangent = extra if tangent is None else tangent + extra
        if tangent is None:
            tangent = jax.numpy.zeros_like(out)
        return cast(local, out), cast(local, tangent)

    function = jax.custom_jvp(traced)
    function.defjvp(jvp, symbolic_zeros=True)
    return function
