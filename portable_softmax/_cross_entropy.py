"""Softmax cross-entropy and its fused gradient, with every option of SPEC section 2.

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

from ._backends import dask as _dask  # dask-dispatch (temporary)
from ._lib import _numpy_cross_entropy, _targets
from ._lib._arguments import Array, Axis, namespace_of
from ._lib._cross_entropy_kernels import Config, kernel_of
from ._lib._quiet import quiet_floating_point
from ._lib._reductions import accurate_sum
from ._lib._run import run
from ._lib._slices import Slices, prepare

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
    numpy_fast: bool
    """Whether ``_lib._numpy_cross_entropy`` computes this call."""


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
        numpy_fast=not slices.empty and _numpy_cross_entropy.takes(logits, target, axis, where),
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
    if call.numpy_fast:
        labels, weight = _numpy_operands(call)
        c = call.config
        return _numpy_cross_entropy.denominator(
            labels, weight, c.classes, c.ignore_index, call.operands[0].dtype
        )
    return _total(call.slices.xp, _per_sample(call, kernel_of(call.config, "denominator")))


def _numpy_operands(call: _Call) -> tuple[Array, Array | None]:
    """Labels as ``(rows, 1)`` and the weight as ``(C,)``, for the NumPy fast path."""
    weight = call.operands[2].reshape(-1) if call.config.weighted else None
    return call.operands[1].reshape(-1, 1), weight


def _numpy_fallback(call: _Call, config: Config, kind: str) -> Any:
    """The portable kernel on one 2-D block of the fast path (the weight as ``(1, C)``)."""
    kernel = kernel_of(config, kind)
    extra = (call.operands[2].reshape(1, -1),) if config.weighted else ()

    def fallback(slices: Slices, xb: Array, lb: Array, *rest: Array) -> Array:
        return kernel(slices, xb, lb, *extra, *rest)

    return fallback


def _numpy_losses(call: _Call) -> Array:
    x = call.operands[0]
    labels, weight = _numpy_operands(call)
    c = call.config
    fallback = _numpy_fallback(call, c, "loss")
    out = _numpy_cross_entropy.losses(x, labels, weight, c.ignore_index, c.smoothing, fallback)
    return out.reshape(x.shape[:-1])


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
    axis: Axis = -1,
    reduction: str = "mean",
    weight: Array | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    where: Array | None = None,
    validate: bool | None = None,
) -> Array:
    r"""Softmax cross-entropy: per sample ``l_n = -sum_c w_c t'_nc log softmax(logits)_nc``.

    Parameters
    ----------
    logits : array
        Real scores; the classes lie along ``axis``. Integers are promoted to the default
        float; float16/bfloat16 are accumulated in float32.
    target : array
        Integer class indices with one dimension less than ``logits`` (``axis`` an int), or
        probabilities of the logits' shape (any real or integer dtype, an integer one-hot
        included), cast to the logits' floating dtype.
    axis : int, tuple of ints or None, optional
        The class axis (axes, for probabilities).
    reduction : {"mean", "sum", "none"}, optional
        ``"none"``: per-sample losses. ``"sum"``: their sum. ``"mean"``: ``sum_n l_n / D``
        with ``D = sum_n sum_c w_c t_nc`` (the unsmoothed targets), the same weighted mean
        for labels and probabilities; 0 when ``D`` is 0.
    weight : array, optional
        One weight per class, shape ``(C,)``; negative weights are allowed.
    ignore_index : int, optional
        With integer labels: samples with this label give 0 and leave ``D``.
    label_smoothing : float, optional
        ``eps`` in [0, 1]: ``t' = (1 - eps) t + eps / C_n`` over the ``C_n`` unmasked classes.
    where : boolean array, optional
        Class mask broadcastable to ``logits``: masked classes get ``t' = 0`` and leave the
        smoothing count; a sample with every class masked is ignored.
    validate : bool or None, optional
        Labels outside ``[0, C)`` (other than ``ignore_index``) or on a masked class are
        invalid. None: raise ``ValueError`` naming the first one on NumPy, array-api-strict
        and PyTorch CPU arrays; elsewhere (GPU, Dask, JAX) mark those samples NaN without
        synchronising. True: always check (an error on Dask arrays and JAX tracers).
        False: only mark NaN.

    Returns
    -------
    array
        The loss in the logits' floating dtype: per-sample shape for ``"none"``, else 0-d.

    Notes
    -----
    ``0 * log 0 = 0``: a -inf logit whose smoothed target is 0 contributes nothing; with a
    target above 0 the loss is +inf. PyTorch's ``F.cross_entropy`` differs in that it divides
    probability targets by N for ``"mean"`` and gives NaN when every sample is ignored.

    Examples
    --------
    >>> import numpy as np
    >>> import portable_softmax as ps
    >>> logits = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    >>> round(float(ps.cross_entropy(logits, np.array([2, 0]))), 6)
    1.407606
    >>> ps.cross_entropy(logits, np.array([2, 0]), reduction="none").round(6)
    array([0.407606, 2.407606])
    """
    # dask-dispatch (temporary): begin
    if array_api_compat.is_dask_array(logits):
        out = _dask.cross_entropy(
            logits,
            target,
            axis=axis,
            reduction=reduction,
            weight=weight,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            where=where,
            validate=validate,
        )
        if out is not NotImplemented:
            return out
    # dask-dispatch (temporary): end
    plan = _numpy_cross_entropy.plain(
        logits, target, axis, reduction, weight, ignore_index, label_smoothing, where, validate
    )
    if plan is not None:  # the commonest call, checked from metadata (same errors)
        return _numpy_cross_entropy.plain_loss(plan)
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
    if call.numpy_fast:
        losses = _numpy_losses(call)
    else:
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
    grad: Array | None = None,
    axis: Axis = -1,
    reduction: str = "mean",
    weight: Array | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    where: Array | None = None,
    validate: bool | None = None,
) -> Array:
    r"""Gradient of :func:`cross_entropy` with respect to ``logits``, fused.

    Per sample ``p * sum_c(w_c t'_c) - w * t'`` with ``p = softmax(logits)``, divided by
    ``D`` for ``"mean"`` (0 when ``D`` is 0), times ``grad``.

    Parameters
    ----------
    logits, target
        As for :func:`cross_entropy`.
    grad : array, optional
        Gradient with respect to the loss: the loss's shape (per-sample for ``"none"``, 0-d
        otherwise). None means ones.
    axis, reduction, weight, ignore_index, label_smoothing, where, validate
        As for :func:`cross_entropy`.

    Returns
    -------
    array
        The logits' shape and floating dtype. Ignored samples and masked classes get 0,
        invalid samples NaN (when not raised on).

    Examples
    --------
    >>> import numpy as np
    >>> import portable_softmax as ps
    >>> x = np.array([[1, 2, 3], [4, 5, 6]])
    >>> y = np.array([[0, 1, 0], [1, 0, 0]])  # integer one-hot
    >>> ps.cross_entropy_backward(x, y, axis=1, reduction="sum").round(8)
    array([[ 0.09003057, -0.75527153,  0.66524096],
           [-0.90996943,  0.24472847,  0.66524096]])
    """
    # dask-dispatch (temporary): begin
    if array_api_compat.is_dask_array(logits):
        out = _dask.cross_entropy_backward(
            logits,
            target,
            grad=grad,
            axis=axis,
            reduction=reduction,
            weight=weight,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            where=where,
            validate=validate,
        )
        if out is not NotImplemented:
            return out
    # dask-dispatch (temporary): end
    if grad is None:
        plan = _numpy_cross_entropy.plain(
            logits, target, axis, reduction, weight, ignore_index, label_smoothing, where, validate
        )
        if plan is not None:
            return _numpy_cross_entropy.plain_gradient(plan)
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
    if call.numpy_fast:
        labels, weight = _numpy_operands(call)
        return _numpy_cross_entropy.gradient(
            x,
            labels,
            weight,
            config.ignore_index,
            config.smoothing,
            scale,
            _numpy_fallback(call, replace(config, scaled=True), "gradient"),
        )
    return out_slices.finish(run(kernel_of(config, "gradient"), out_slices, *operands))
