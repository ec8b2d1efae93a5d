"""Softmax cross-entropy and its fused gradient on the portable path, every option of SPEC 2.

Per sample ``l = -sum_c w_c t'_c log p_c``, with ``t'`` the (smoothed, masked) target. Its
exact gradient with respect to the logits is ``p * sum_c(w_c t'_c) - w * t'``: the shortcut
``p - t`` holds only without weights and smoothing and for targets summing to one. The
kernels work per slice (so Dask runs them blockwise); the batch reductions, including the
mean's denominator ``D = sum_n sum_c w_c t_nc``, are plain array operations around them.
Invalid samples (a label outside ``[0, C)`` or on a masked class) are marked NaN inside the
kernels without reading any value; reading labels to raise happens only in
``_lib._targets.wants_check`` cases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import array_api_compat

from .._lib import _targets
from .._lib._arguments import Array, Axis, namespace_of
from .._lib._quiet import quiet_floating_point
from .._lib._slices import Slices, prepare
from .cross_entropy_kernels import Config, kernel_of
from .reductions import accurate_sum
from .run import run

__all__ = ["cross_entropy", "cross_entropy_backward"]


@dataclass(frozen=True)
class _Call:
    """A validated call: slices (computing in the compute dtype) and kernel operands."""

    slices: Slices
    config: Config
    operands: tuple[Array, ...]
    """logits, target (labels with a length-1 class axis, or probabilities), [weight]."""
    loss_shape: tuple[int, ...]
    result_dtype: Any


def _setup(
    logits: Array,
    target: Array,
    grad: Array | None,
    *,
    axis: Axis,
    reduction: object,
    weight: Array | None,
    ignore_index: object,
    label_smoothing: object,
    where: Array | None,
    validate: object,
) -> tuple[_Call, _targets.Options, Array | None]:
    """Validate everything; return the call, the options and ``grad`` in the compute dtype."""
    options = _targets.check_options(reduction, ignore_index, label_smoothing, validate)
    xp = namespace_of(logits=logits, target=target, weight=weight, grad=grad, where=where)
    hard = _targets.is_hard(logits, target, axis)
    companions = {} if hard else {"target": target}
    if not hard:
        _targets.check_soft_target(xp, logits, target, options)
    slices, arrays = prepare(
        "logits", logits, axis=axis, where=where, temperature=None, companions=companions
    )
    x = arrays[0]
    axes = slices.axes
    if hard:
        _targets.check_hard_target(xp, logits, target, axes, options)
        operand = _targets.signed_labels(xp, target)
    else:
        operand = arrays[1]
    _targets.check_weight(xp, weight, logits, axes)
    operands = [x, operand]
    if weight is not None:
        shape = tuple(n if i in axes else 1 for i, n in enumerate(x.shape))
        operands.append(xp.reshape(_targets.as_floating(xp, weight, x.dtype), shape))
    loss_shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    if options.reduction != "none":
        loss_shape = ()
    _targets.check_grad(grad, loss_shape, options.reduction)
    if grad is not None:
        if xp.isdtype(grad.dtype, ("bool", "complex floating")):
            raise TypeError(f"grad has dtype {grad.dtype}; pass a real floating array")
        grad = _targets.as_floating(xp, grad, x.dtype)
    if hard:  # values last: every metadata error comes first
        _maybe_check_labels(xp, slices, operand, target, x.shape[axes[0]], options)
        operands[1] = xp.expand_dims(operand, axis=axes[0])
    config = Config(
        hard=hard,
        classes=int(x.shape[axes[0]]) if len(axes) == 1 else math.prod(x.shape[i] for i in axes),
        ignore_index=options.ignore_index,
        smoothing=options.label_smoothing,
        weighted=weight is not None,
        scaled=False,
    )
    call = _Call(
        slices=replace(slices, result_dtype=x.dtype),
        config=config,
        operands=tuple(operands),
        loss_shape=loss_shape,
        result_dtype=slices.result_dtype,
    )
    return call, options, grad


def _maybe_check_labels(
    xp: ModuleType,
    slices: Slices,
    labels: Array,
    given: Array,
    classes: int,
    options: _targets.Options,
) -> None:
    """Raise on the first invalid label where SPEC's ``validate`` rule says to read them.

    ``labels`` are the signed labels checked; ``given`` the user's, whose values errors name.
    """
    if not _targets.wants_check(options.validate, labels):
        return
    axis = slices.axes[0]
    mask = slices.mask
    ok = _targets.labels_in_range(xp, labels, classes, options.ignore_index)
    live = None if mask is None else xp.any(mask, axis=axis)  # all-masked: ignored
    bad = ~ok if live is None else ~ok & live
    _targets.raise_first_bad(xp, given, bad, f"outside [0, {classes}) (classes on axis {axis})")
    if mask is None:
        return
    index = xp.arange(classes, dtype=labels.dtype, device=array_api_compat.device(labels))
    shape = tuple(classes if i == axis else 1 for i in range(mask.ndim))
    hit = xp.any(mask & (xp.reshape(index, shape) == xp.expand_dims(labels, axis=axis)), axis=axis)
    if options.ignore_index is not None:
        hit = hit | (labels == options.ignore_index)
    _targets.raise_first_bad(xp, given, ~hit & live, "a class masked by where")


def _per_sample(call: _Call, kernel: Any) -> Array:
    """Run a per-sample kernel; result in the compute dtype with the loss's sample shape."""
    slices = call.slices
    if slices.empty:  # no classes: every sample is all-masked, hence ignored
        x = call.operands[0]
        shape = tuple(1 if i in slices.axes else n for i, n in enumerate(x.shape))
        out = slices.xp.zeros(shape, dtype=x.dtype, device=array_api_compat.device(x))
    else:
        out = run(kernel, slices, *call.operands, reduces=True)
    return slices.finish(out, reduced=True, keepdims=False)


def _total(xp: ModuleType, a: Array) -> Array:
    """Accurate sum of every entry, as a 0-d array; ``inf + -inf`` (negative weights) gives
    NaN without a floating-point warning, on Dask's workers too."""
    if a.ndim == 0:
        return a
    if array_api_compat.is_dask_namespace(xp):
        import dask.array as da

        return da.reduction(  # type: ignore[no-untyped-call]
            a, _quiet_sum, _quiet_sum, axis=None, keepdims=False, dtype=a.dtype
        )
    with quiet_floating_point(xp):
        return xp.reshape(accurate_sum(xp, a, tuple(range(a.ndim))), ())


def _quiet_sum(block: Any, axis: Any = None, keepdims: bool = False, **kwargs: Any) -> Any:
    """One stage of Dask's tree sum, under NumPy's floating-point guard."""
    import numpy as np

    with np.errstate(all="ignore"):
        return np.sum(block, axis=axis, keepdims=keepdims, **kwargs)


def _denominator(call: _Call) -> Array:
    """``D = sum_n sum_c w_c t_nc`` over the samples that take part (0-d, compute dtype)."""
    return _total(call.slices.xp, _per_sample(call, kernel_of(call.config, "denominator")))


def _safe_divide(xp: ModuleType, total: Array, d: Array) -> Array:
    """``total / d``, with 0 for ``d == 0`` (a NaN total, from invalid labels, stays NaN)."""
    zero = xp.where(xp.isnan(total), total, 0.0)
    return xp.where(d == 0, zero, total / xp.where(d == 0, 1.0, d))


def _finish(call: _Call, out: Array) -> Array:
    """``out`` in the result dtype: a float16 loss beyond 65504 rounds to inf, quietly."""
    xp = call.slices.xp
    if out.dtype == call.result_dtype:
        return out
    if array_api_compat.is_dask_namespace(xp):  # NumPy casts on the workers, guarded there
        return out.map_blocks(_quiet_numpy_cast, call.result_dtype, dtype=call.result_dtype)
    with quiet_floating_point(xp):
        return xp.astype(out, call.result_dtype)


def _quiet_numpy_cast(block: Any, dtype: Any) -> Any:
    import numpy as np  # Dask blocks are NumPy arrays; NumPy itself stays optional

    with np.errstate(over="ignore"):
        return block.astype(dtype)


def cross_entropy(
    logits: Array,
    target: Array,
    /,
    *,
    axis: Axis,
    reduction: str,
    weight: Array | None,
    ignore_index: int | None,
    label_smoothing: float,
    where: Array | None,
    validate: bool | None,
) -> Array:
    """:func:`portable_softmax.cross_entropy` on the portable path."""
    call, options, _ = _setup(
        logits,
        target,
        None,
        axis=axis,
        reduction=reduction,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        where=where,
        validate=validate,
    )
    xp = call.slices.xp
    losses = _per_sample(call, kernel_of(call.config, "loss"))
    if options.reduction == "none":
        return _finish(call, losses)
    total = _total(xp, losses)
    if options.reduction == "sum":
        return _finish(call, total)
    return _finish(call, _safe_divide(xp, total, _denominator(call)))


def cross_entropy_backward(
    logits: Array,
    target: Array,
    /,
    *,
    grad: Array | None,
    axis: Axis,
    reduction: str,
    weight: Array | None,
    ignore_index: int | None,
    label_smoothing: float,
    where: Array | None,
    validate: bool | None,
) -> Array:
    """:func:`portable_softmax.cross_entropy_backward` on the portable path."""
    call, options, grad = _setup(
        logits,
        target,
        grad,
        axis=axis,
        reduction=reduction,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        where=where,
        validate=validate,
    )
    slices = call.slices
    xp = slices.xp
    x = call.operands[0]
    out_slices = replace(slices, result_dtype=call.result_dtype)
    if slices.empty:
        return out_slices.finish(x)
    scale = grad
    if options.reduction == "mean":
        one = xp.ones((), dtype=x.dtype, device=array_api_compat.device(x))
        scale = _safe_divide(xp, one if grad is None else grad, _denominator(call))
    operands = call.operands
    if scale is not None:
        keep_shape = tuple(1 if i in slices.axes else n for i, n in enumerate(x.shape))
        if options.reduction != "none":
            keep_shape = (1,) * x.ndim
        operands = (*operands, xp.reshape(scale, keep_shape))
    config = replace(call.config, scaled=scale is not None)
    return out_slices.finish(run(kernel_of(config, "gradient"), out_slices, *operands))
