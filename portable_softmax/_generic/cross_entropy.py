"""Softmax cross-entropy and its fused gradient on the portable path, every option of SPEC 2.

Per sample ``l = -sum_c w_c t'_c log p_c``, with ``t'`` the (smoothed, masked) target. Its
exact gradient with respect to the logits is ``p * sum_c(w_c t'_c) - w * t'``: the shortcut
``p - t`` holds only without weights and smoothing and for targets summing to one. The
kernels work per slice (``cross_entropy_kernels``, so the Dask backend runs them on blocks);
the batch reductions, including the mean's denominator ``D = sum_n sum_c w_c t_nc``, are
plain array operations around them. Invalid samples (a label outside ``[0, C)`` or on a
masked class) are marked NaN inside the kernels without reading any value; the labels were
read, where SPEC's ``validate`` rule says to, before dispatch (``_lib._labels``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import array_api_compat

from .._lib._arguments import Array
from .._lib._call import CrossEntropyCall
from .._lib._labels import signed_labels
from .._lib._quiet import quiet_floating_point
from .._lib._slices import Slices, cast, prepare
from .cross_entropy_kernels import Config, kernel_of
from .reductions import accurate_sum
from .run import run

__all__ = ["cross_entropy", "cross_entropy_backward", "cross_entropy_with_grad", "operands"]


@dataclass(frozen=True)
class Operands:
    """A validated call: slices (computing in the compute dtype) and kernel operands."""

    slices: Slices
    config: Config
    operands: tuple[Array, ...]
    """logits, target (labels with a length-1 class axis, or probabilities), [weight]."""
    result_dtype: Any


def operands(call: CrossEntropyCall) -> Operands:
    """The call's slices (computing in the compute dtype) and kernel operands."""
    xp = call.xp
    slices, arrays = prepare(call, call.logits, *(() if call.hard else (call.target,)))
    x = arrays[0]
    axes = slices.axes
    if call.hard:
        operand = xp.expand_dims(signed_labels(xp, call.target), axis=axes[0])
    else:
        operand = arrays[1]
    kernel_operands = [x, operand]
    if call.weight is not None:
        shape = tuple(n if i in axes else 1 for i, n in enumerate(x.shape))
        kernel_operands.append(xp.reshape(cast(xp, call.weight, x.dtype), shape))
    config = Config(
        hard=call.hard,
        classes=call.classes,
        ignore_index=call.ignore_index,
        smoothing=call.smoothing,
        weighted=call.weight is not None,
        scaled=False,
    )
    return Operands(
        slices=replace(slices, result_dtype=x.dtype),
        config=config,
        operands=tuple(kernel_operands),
        result_dtype=call.result_dtype,
    )


def _per_sample(call: Operands, kernel: Any) -> Array:
    """Run a per-sample kernel; result in the compute dtype with the loss's sample shape."""
    slices = call.slices
    if slices.empty:  # no classes: every sample is all-masked, hence ignored
        x = call.operands[0]
        shape = tuple(1 if i in slices.axes else n for i, n in enumerate(x.shape))
        out = slices.xp.zeros(shape, dtype=x.dtype, device=array_api_compat.device(x))
    else:
        out = run(kernel, slices, *call.operands)
    return slices.finish(out, reduced=True, keepdims=False)


def _total(xp: ModuleType, a: Array) -> Array:
    """Accurate sum of every entry, as a 0-d array; ``inf + -inf`` (negative weights) gives
    NaN without a floating-point warning."""
    if a.ndim == 0:
        return a
    with quiet_floating_point(xp):
        return xp.reshape(accurate_sum(xp, a, tuple(range(a.ndim))), ())


def _denominator(call: Operands) -> Array:
    """``D = sum_n sum_c w_c t_nc`` over the samples that take part (0-d, compute dtype)."""
    return _total(call.slices.xp, _per_sample(call, kernel_of(call.config, "denominator")))


def _safe_divide(xp: ModuleType, total: Array, d: Array) -> Array:
    """``total / d``, with 0 for ``d == 0`` (a NaN total, from invalid labels, stays NaN)."""
    zero = xp.where(xp.isnan(total), total, 0.0)
    return xp.where(d == 0, zero, total / xp.where(d == 0, 1.0, d))


def _finish(call: Operands, out: Array) -> Array:
    """``out`` in the result dtype: a float16 loss beyond 65504 rounds to inf, quietly."""
    xp = call.slices.xp
    if out.dtype == call.result_dtype:
        return out
    with quiet_floating_point(xp):
        return xp.astype(out, call.result_dtype)


def _loss(call: Operands, reduction: str) -> Array:
    xp = call.slices.xp
    losses = _per_sample(call, kernel_of(call.config, "loss"))
    if reduction == "none":
        return _finish(call, losses)
    total = _total(xp, losses)
    if reduction == "sum":
        return _finish(call, total)
    return _finish(call, _safe_divide(xp, total, _denominator(call)))


def _gradient(call: Operands, reduction: str, grad: Array | None) -> Array:
    slices = call.slices
    xp = slices.xp
    x = call.operands[0]
    out_slices = replace(slices, result_dtype=call.result_dtype)
    if slices.empty:
        return out_slices.finish(x)
    if grad is not None:
        grad = cast(xp, grad, x.dtype)
    scale = grad
    if reduction == "mean":
        one = xp.ones((), dtype=x.dtype, device=array_api_compat.device(x))
        scale = _safe_divide(xp, one if grad is None else grad, _denominator(call))
    operands = call.operands
    if scale is not None:
        keep_shape = tuple(1 if i in slices.axes else n for i, n in enumerate(x.shape))
        if reduction != "none":
            keep_shape = (1,) * x.ndim
        operands = (*operands, xp.reshape(scale, keep_shape))
    config = replace(call.config, scaled=scale is not None)
    return out_slices.finish(run(kernel_of(config, "gradient"), out_slices, *operands))


def cross_entropy(call: CrossEntropyCall) -> Array:
    """:func:`portable_softmax.cross_entropy` on the portable path."""
    return _loss(operands(call), call.reduction)


def cross_entropy_backward(call: CrossEntropyCall) -> Array:
    """:func:`portable_softmax.cross_entropy_backward` on the portable path."""
    return _gradient(operands(call), call.reduction, call.grad)


def cross_entropy_with_grad(call: CrossEntropyCall) -> tuple[Array, Array]:
    """:func:`portable_softmax.cross_entropy_with_grad` on the portable path (the loss and
    the gradient from the same operands, one kernel each)."""
    prepared = operands(call)
    return _loss(prepared, call.reduction), _gradient(prepared, call.reduction, call.grad)
