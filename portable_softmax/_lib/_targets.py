"""Checking the cross-entropy arguments: target, weight, grad, options and label validation.

Everything here looks at metadata (type, shape, dtype), except :func:`check_labels`, the one
documented place that reads label values: on eager CPU arrays by default, everywhere with
``validate=True``, and never on lazy or traced arrays (where it raises instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import array_api_compat

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


def labels_in_range(xp: ModuleType, labels: Array, classes: int, ignore_index: int | None) -> Array:
    """Boolean per sample: the label is a class index (or the ignored label)."""
    ok = (labels >= 0) & (labels < classes)
    return ok if ignore_index is None else ok | (labels == ignore_index)


def _is_traced(x: Array) -> bool:
    """JAX tracers (inside jit/grad/vmap) and Dask arrays cannot be read without computing."""
    if array_api_compat.is_dask_array(x):
        return True
    if array_api_compat.is_jax_array(x):
        import jax

        return isinstance(x, jax.core.Tracer)
    return False


def is_eager_cpu(x: Array) -> bool:
    """NumPy, array-api-strict and PyTorch CPU arrays: reading a label costs no sync."""
    if array_api_compat.is_numpy_array(x) or array_api_compat.is_array_api_strict_namespace(
        array_api_compat.array_namespace(x)
    ):
        return True
    return array_api_compat.is_torch_array(x) and x.device.type == "cpu"


def wants_check(validate: bool | None, target: Array) -> bool:
    """Whether to read the labels now; ``validate=True`` on lazy arrays is an error."""
    if validate is False:
        return False
    if validate is None:
        return is_eager_cpu(target)
    if _is_traced(target):
        raise ValueError(
            f"validate=True reads the label values, but target is a {_kind(target)} "
            "(lazy or traced) whose values are not available without computing it; pass "
            "validate=False (invalid samples then give NaN) or check the labels beforehand"
        )
    return True


def _kind(x: Array) -> str:
    return f"{type(x).__module__.split('.')[0]} {type(x).__name__}"


def raise_first_bad(xp: ModuleType, labels: Array, bad: Array, what: str) -> None:
    """Raise ValueError naming the first label flagged in ``bad`` (one host read)."""
    flat = xp.reshape(bad, (-1,))
    if not bool(xp.any(flat)):
        return
    first = int(xp.argmax(xp.astype(flat, xp.int8)))
    try:
        value = int(xp.reshape(labels, (-1,))[first])
    except RuntimeError:  # torch cannot read a uint64 above int64's maximum into Python
        value = int(xp.reshape(xp.astype(labels, xp.int64), (-1,))[first]) % 2**64
    index = _unravel(first, tuple(labels.shape))
    raise ValueError(
        f"target holds label {value} at sample {index}, {what}; fix the label, pass "
        f"ignore_index={value} to skip such samples, or validate=False to get NaN for them"
    )


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    index = []
    for n in reversed(shape):
        index.append(flat % n)
        flat //= n
    return tuple(reversed(index))


def as_floating(xp: ModuleType, a: Array, dtype: Any) -> Array:
    """``a`` in the compute dtype (no copy when it already is)."""
    return a if a.dtype == dtype else xp.astype(a, dtype)


def signed_labels(xp: ModuleType, labels: Array) -> Array:
    """Labels as the widest signed integer, so comparisons never wrap (uint8 vs -100)."""
    wide = xp.int64
    if array_api_compat.is_jax_namespace(xp):
        import jax

        wide = jax.dtypes.canonicalize_dtype(wide)  # int32 unless x64 is enabled
    signed = labels if labels.dtype == wide else xp.astype(labels, wide)
    if (
        xp.isdtype(labels.dtype, "unsigned integer")
        and xp.iinfo(labels.dtype).max > xp.iinfo(wide).max
    ):
        # Labels above the signed maximum wrapped negative and could pass for ignore_index:
        # no class is that large, so the signed maximum keeps them invalid.
        signed = xp.where(signed < 0, xp.asarray(xp.iinfo(wide).max, dtype=wide), signed)
    return signed
