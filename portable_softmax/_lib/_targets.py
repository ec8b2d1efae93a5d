"""Checking the cross-entropy arguments from metadata: options, target, weight and grad.

Everything here looks at types, shapes, dtypes and option values; the labels' values are
read in one place only, ``_lib._labels``.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from ._arguments import Array

REDUCTIONS = ("none", "sum", "mean")


@dataclass(frozen=True)
class Options:
    """The validated scalar options of a cross-entropy call."""

    reduction: str
    ignore_index: int | None
    label_smoothing: float
    validate: bool | None


def check_options(
    reduction: object, ignore_index: object, label_smoothing: object, validate: object
) -> Options:
    """Validate the options that do not depend on the arrays (also used by the layer)."""
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"reduction={reduction!r} is not one of {REDUCTIONS}; pass 'none' for per-sample "
            "losses, 'sum' for their sum or 'mean' for the weighted mean"
        )
    if ignore_index is not None and (
        isinstance(ignore_index, bool) or not _is_integer(ignore_index)
    ):
        raise TypeError(
            f"ignore_index={ignore_index!r} must be an int or None; pass the label value "
            "whose samples should be skipped, e.g. ignore_index=-100"
        )
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)):
        raise TypeError(
            f"label_smoothing={label_smoothing!r} must be a float in [0, 1]; pass e.g. 0.1"
        )
    if not 0.0 <= float(label_smoothing) <= 1.0:  # NaN fails too
        raise ValueError(
            f"label_smoothing={label_smoothing!r} is outside [0, 1]; pass a float in [0, 1] "
            "(0 for no smoothing)"
        )
    if validate is not None and not isinstance(validate, bool):
        raise TypeError(
            f"validate={validate!r} must be None, True or False; None checks labels on eager "
            "CPU arrays, True always, False never (invalid samples become NaN)"
        )
    index = None if ignore_index is None else int(ignore_index)  # type: ignore[call-overload]
    return Options(str(reduction), index, float(label_smoothing), validate)


def _is_integer(value: object) -> bool:
    try:
        int(value.__index__())  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        return False
    return True


def is_hard(logits: Array, target: Array, axis: object) -> bool:
    """Whether ``target`` holds class indices (one dimension less than the logits).

    Raises ValueError naming both shapes for any other number of dimensions.
    """
    if target.ndim == logits.ndim - 1:
        return True
    if target.ndim == logits.ndim:
        return False
    raise ValueError(
        f"target has shape {tuple(target.shape)} and logits {tuple(logits.shape)} (axis="
        f"{axis!r}): target must hold integer class indices (one dimension less than logits, "
        "with an int axis) or probabilities (the logits' shape)"
    )


def check_hard_target(
    xp: ModuleType, logits: Array, target: Array, axes: tuple[int, ...], options: Options
) -> None:
    """Integer labels need an integer dtype, one class axis and the logits' other axes."""
    if len(axes) != 1:
        raise ValueError(
            f"axis names {len(axes)} class axes, but integer labels pick one class: pass an int "
            "axis, or give target as probabilities of the logits' shape"
        )
    if not xp.isdtype(target.dtype, "integral"):
        raise TypeError(
            f"target has dtype {target.dtype} and shape {tuple(target.shape)}, one dimension "
            f"less than logits {tuple(logits.shape)}, so it must hold integer class indices; "
            "cast it with astype(int64), or pass probabilities of the logits' shape"
        )
    (axis,) = axes
    samples = tuple(n for i, n in enumerate(logits.shape) if i != axis)
    if tuple(target.shape) != samples:
        raise ValueError(
            f"target has shape {tuple(target.shape)} but logits {tuple(logits.shape)} with "
            f"classes along axis {axis} need labels of shape {samples}"
        )


def check_soft_target(xp: ModuleType, logits: Array, target: Array, options: Options) -> None:
    """Probabilities: the logits' shape, a real or integer dtype, and no ignore_index."""
    if tuple(target.shape) != tuple(logits.shape):
        raise ValueError(
            f"target has shape {tuple(target.shape)} but logits {tuple(logits.shape)}; "
            "probability targets need the logits' shape"
        )
    if xp.isdtype(target.dtype, "complex floating"):
        raise TypeError(f"target has complex dtype {target.dtype}; pass real probabilities")
    if options.ignore_index is not None:
        raise ValueError(
            f"ignore_index={options.ignore_index} applies to integer labels only, but target "
            "holds probabilities (the logits' shape); drop ignore_index and give those samples "
            "all-zero targets, or mask them with where"
        )


def check_weight(
    xp: ModuleType, weight: Array | None, logits: Array, axes: tuple[int, ...]
) -> None:
    """A class weight has shape (C,) for one class axis of length C."""
    if weight is None:
        return
    if len(axes) != 1:
        raise ValueError(
            f"weight is given but axis names {len(axes)} class axes; a weight of shape (C,) "
            "needs one int class axis"
        )
    classes = logits.shape[axes[0]]
    if tuple(weight.shape) != (classes,):
        raise ValueError(
            f"weight has shape {tuple(weight.shape)} but the logits have {classes} classes along "
            f"axis {axes[0]}; pass one weight per class, shape ({classes},)"
        )
    if xp.isdtype(weight.dtype, ("bool", "complex floating")):
        raise TypeError(f"weight has dtype {weight.dtype}; pass a real floating array")


def check_grad(grad: Array | None, loss_shape: tuple[int, ...], reduction: str) -> None:
    """``grad`` must have the loss's shape (per-sample for 'none', 0-d otherwise)."""
    if grad is not None and tuple(grad.shape) != loss_shape:
        raise ValueError(
            f"grad has shape {tuple(grad.shape)} but the loss of reduction={reduction!r} has "
            f"shape {loss_shape}; pass the gradient of the loss (or None for ones)"
        )
