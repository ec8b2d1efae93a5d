"""Validate a public call's arguments once and describe it: every documented error is raised here.

:func:`describe` and :func:`describe_cross_entropy` read metadata only (types, dtypes, shapes,
option values), never array values, so they cost no host-device synchronisation and trace
under JAX and ``torch.compile``; the one check that reads values, the cross-entropy labels,
is ``_lib._labels.check_labels``, which the public functions call after this. The result is
a :class:`~portable_softmax._lib._call.Call` (or ``CrossEntropyCall``) that every path
receives instead of the arguments.

Calls on plain NumPy arrays with no mask and no temperature array (the common case, and the
one where this work is a visible part of a small call), and forward calls on float32/float64
PyTorch tensors with an int axis, take a short lane with the same checks and the same
errors; everything else takes the general one.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import array_api_compat

from . import _targets
from ._arguments import (
    check_same_shape,
    check_temperature,
    check_where,
    floating_dtypes,
    namespace_of,
    normalize_axis,
)
from ._call import Call, CrossEntropyCall, library_of
from ._out import check_out

__all__ = ["describe", "describe_cross_entropy"]

_numpy_lane: tuple[Any, ModuleType] | None = None
"""``(numpy.ndarray, array_api_compat.numpy)`` once a NumPy array has been described
(NumPy is never imported here: the lane opens when NumPy arrays arrive)."""


def describe(
    function: str,
    x: Any,
    vector: Any = None,
    *,
    names: tuple[str, str | None] = ("x", None),
    axis: object,
    where: Any,
    temperature: object,
    keepdims: bool = False,
    out: Any = None,
) -> Call:
    """The call of ``function`` (softmax family) on ``x`` (and ``vector``), validated.

    ``names`` are the user-facing names of ``x`` and ``vector`` (``("y", "grad")`` for
    softmax_backward), for the error messages; ``out`` the caller's output array.
    """
    if keepdims is not False and keepdims is not True:
        raise TypeError(f"keepdims must be a bool, got {keepdims!r}")
    torch_lane = _torch_lane
    if (
        torch_lane is not None
        and type(x) is torch_lane[0]
        and vector is None
        and where is None
        and out is None
        and (temperature is None or type(temperature) is float)
        and type(axis) is int
    ):
        call = _torch_forward(torch_lane, function, x, axis, temperature, keepdims)
        if call is not None:
            return call
    lane = _numpy_lane
    if (
        lane is not None
        and type(x) is lane[0]
        and where is None
        and (vector is None or type(vector) is lane[0])
        and (temperature is None or type(temperature) is float)
        and (out is None or type(out) is lane[0])
    ):
        dtype = x.dtype
        ndim = x.ndim
        if (
            dtype.kind == "f"
            and dtype.itemsize >= 4
            and type(axis) is int
            and -ndim <= axis < ndim
            and (vector is None or (vector.shape == x.shape and vector.dtype.kind in "fiub"))
        ):
            t = None if temperature is None else check_temperature(lane[1], temperature, ())
            alias = None
            if out is not None:
                alias = _out_alias(function, out, "numpy", x, vector, names, x.shape, dtype, None)
            # tuple.__new__ skips the named tuple's Python-level __new__ (a third of a
            # microsecond, in a call of a few)
            fields = (function, lane[1], "numpy", x, vector, (axis % ndim,), None, t, keepdims,
                      dtype, dtype, out, alias)  # fmt: skip
            return tuple.__new__(Call, fields)
    return _describe(function, x, vector, names, axis, where, temperature, keepdims, out)


def _out_alias(
    function: str,
    out: Any,
    library: str,
    x: Any,
    vector: Any,
    names: tuple[str, str | None],
    shape: tuple[int, ...],
    dtype: Any,
    device: Any,
    **others: Any,
) -> str | None:
    """Check ``out`` (``_out.check_out``); the input it is, as the call's field names it
    (``"x"``, ``"vector"``; others by their own name), or None."""
    x_name, vector_name = names
    inputs = {x_name: x, **({vector_name: vector} if vector_name else {}), **others}
    alias = check_out(function, out, library, shape, dtype, device, inputs)
    if alias is None or alias not in (x_name, vector_name):
        return alias
    return "x" if alias == x_name else "vector"


def _describe(
    function: str,
    x: Any,
    vector: Any,
    names: tuple[str, str | None],
    axis: object,
    where: Any,
    temperature: object,
    keepdims: bool,
    out: Any,
) -> Call:
    """The general lane of :func:`describe` (any library, any option)."""
    x_name, vector_name = names
    t_array = None if isinstance(temperature, (int, float)) else temperature
    named = {x_name: x, **({vector_name: vector} if vector_name else {})}
    xp, plain = namespace_of(function, **named, where=where, temperature=t_array, out=out)
    x = plain[x_name]
    where = plain["where"]
    compute_dtype, result_dtype = floating_dtypes(xp, x, name=x_name)
    if vector_name is not None:
        vector = plain[vector_name]
        check_same_shape(vector, x, first_name=vector_name, second_name=x_name)
        if xp.isdtype(vector.dtype, "complex floating"):
            raise TypeError(f"{vector_name} has complex dtype {vector.dtype}; pass a real array")
    shape = tuple(x.shape)
    axes = normalize_axis(axis, x.ndim)
    keep_shape = tuple(1 if i in axes else n for i, n in enumerate(shape))
    check_where(xp, where, shape)
    t = check_temperature(xp, temperature if t_array is None else plain["temperature"], keep_shape)
    _open_numpy_lane(xp, x)
    library = library_of(x)
    alias = None
    out = plain["out"]
    if out is not None:
        device = None if library == "numpy" else array_api_compat.device(x)
        extra = {"where": where, "temperature": None if t_array is None else t}
        alias = _out_alias(
            function, out, library, x, vector, names, shape, result_dtype, device, **extra
        )
    return Call(
        function, xp, library, x, vector, axes, where, t, keepdims, compute_dtype, result_dtype,
        out, alias,
    )  # fmt: skip


def _open_numpy_lane(xp: ModuleType, x: Any) -> None:
    global _numpy_lane, _torch_lane
    kind = type(x)
    if _numpy_lane is None and kind.__module__ == "numpy" and kind.__name__ == "ndarray":
        _numpy_lane = (kind, xp)
    if _torch_lane is None and kind.__module__ == "torch" and kind.__name__ == "Tensor":
        torch = sys.modules["torch"]
        _torch_lane = (kind, xp, (torch.float32, torch.float64))


_torch_lane: tuple[Any, ModuleType, tuple[Any, ...]] | None = None
"""``(torch.Tensor, array_api_compat.torch, (torch.float32, torch.float64))`` once a
tensor has been described: the forward calls on float32/float64 tensors with an int axis
(what a training loop makes, where this work is a visible part of a (256, 1000) call) take
a short lane with the same checks."""


def _torch_forward(
    lane: tuple[Any, ModuleType, tuple[Any, ...]],
    function: str,
    x: Any,
    axis: int,
    temperature: float | None,
    keepdims: bool,
) -> Call | None:
    """The short lane of :func:`describe` for a forward call on a float32/float64 tensor
    (None for anything else: the general lane describes it, or raises)."""
    dtype = x.dtype
    ndim = x.ndim
    if dtype not in lane[2] or not -ndim <= axis < ndim:
        return None
    t = None if temperature is None else check_temperature(lane[1], temperature, ())
    fields = (function, lane[1], "torch", x, None, (axis % ndim,), None, t, keepdims, dtype,
              dtype, None, None)  # fmt: skip
    return tuple.__new__(Call, fields)


def describe_cross_entropy(
    function: str,
    logits: Any,
    target: Any,
    *,
    grad: Any = None,
    axis: object,
    reduction: object,
    weight: Any,
    ignore_index: object,
    label_smoothing: object,
    where: Any,
    validate: object,
    out: Any = None,
) -> CrossEntropyCall:
    """The call of ``function`` (cross-entropy family), validated from metadata.

    The checks come in the order the errors are documented in: options, namespaces, the
    target's kind and shape, the axes, the mask, the weight, then ``grad``.
    """
    lane = _numpy_lane
    if (
        lane is not None
        and type(logits) is lane[0]
        and type(target) is lane[0]
        and where is None
        and (weight is None or type(weight) is lane[0])
        and (grad is None or type(grad) is lane[0])
        and (out is None or type(out) is lane[0])
        and type(axis) is int
        and type(reduction) is str
        and reduction in _targets.REDUCTIONS
        and (ignore_index is None or type(ignore_index) is int)
        and (type(label_smoothing) is float or type(label_smoothing) is int)
        and 0 <= label_smoothing <= 1
        and (validate is None or validate is True or validate is False)
    ):
        call = _numpy_labels(function, lane[1], logits, target, grad, axis, reduction, weight,
                             ignore_index, float(label_smoothing), validate)  # fmt: skip
        if call is not None:
            return call if out is None else _with_out(call, out, None)
    options = _targets.check_options(reduction, ignore_index, label_smoothing, validate)
    xp, plain = namespace_of(
        function, logits=logits, target=target, weight=weight, grad=grad, where=where, out=out
    )
    logits, target, weight, grad, where = (
        plain["logits"], plain["target"], plain["weight"], plain["grad"], plain["where"]
    )  # fmt: skip
    hard = _targets.is_hard(logits, target, axis)
    if not hard:
        _targets.check_soft_target(xp, logits, target, options)
    compute_dtype, result_dtype = floating_dtypes(xp, logits, name="logits")
    shape = tuple(logits.shape)
    axes = normalize_axis(axis, logits.ndim)
    check_where(xp, where, shape)
    if hard:
        _targets.check_hard_target(xp, logits, target, axes, options)
    _targets.check_weight(xp, weight, logits, axes)
    reduced = tuple(n for i, n in enumerate(shape) if i not in axes)
    loss_shape = reduced if options.reduction == "none" else ()
    _targets.check_grad(grad, loss_shape, options.reduction)
    if grad is not None and xp.isdtype(grad.dtype, ("bool", "complex floating")):
        raise TypeError(f"grad has dtype {grad.dtype}; pass a real floating array")
    classes = 1
    for i in axes:
        classes *= int(shape[i])
    _open_numpy_lane(xp, logits)
    library = library_of(logits)
    call = CrossEntropyCall(
        function, xp, library, logits, target, weight, grad, where, axes, hard,
        classes, options.reduction, options.ignore_index, options.label_smoothing,
        options.validate, False, loss_shape, compute_dtype, result_dtype,
    )  # fmt: skip
    out = plain["out"]
    if out is None:
        return call
    return _with_out(call, out, None if library == "numpy" else array_api_compat.device(logits))


def _with_out(call: CrossEntropyCall, out: Any, device: Any) -> CrossEntropyCall:
    """``call`` with its gradient's output array ``out``, checked."""
    inputs = {
        "logits": call.logits, "target": call.target, "weight": call.weight,
        "grad": call.grad, "where": call.where,
    }  # fmt: skip
    alias = check_out(
        call.function, out, call.library, tuple(call.logits.shape), call.result_dtype, device,
        inputs,
    )  # fmt: skip
    return call._replace(out=out, out_alias=alias)


def _numpy_labels(
    function: str,
    xp: ModuleType,
    logits: Any,
    target: Any,
    grad: Any,
    axis: int,
    reduction: str,
    weight: Any,
    ignore_index: int | None,
    smoothing: float,
    validate: bool | None,
) -> CrossEntropyCall | None:
    """The short lane of :func:`describe_cross_entropy`: float32/float64 NumPy logits with
    integer labels along an int axis, every shape as the general lane requires it; None for
    anything else (the general lane then describes it, or raises the documented error)."""
    dtype = logits.dtype
    ndim = logits.ndim
    if dtype.char not in ("f", "d") or not -ndim <= axis < ndim or target.ndim != ndim - 1:
        return None
    if target.dtype.kind not in "iu":
        return None
    axis %= ndim
    shape = logits.shape
    samples = shape[:axis] + shape[axis + 1 :]
    if target.shape != samples:
        return None
    classes = shape[axis]
    if weight is not None and (weight.shape != (classes,) or weight.dtype.kind not in "fiu"):
        return None
    loss_shape = samples if reduction == "none" else ()
    if grad is not None and (grad.shape != loss_shape or grad.dtype.kind not in "fiu"):
        return None
    return CrossEntropyCall(
        function, xp, "numpy", logits, target, weight, grad, None, (axis,), True, classes,
        reduction, ignore_index, smoothing, validate, False, loss_shape, dtype, dtype,
    )  # fmt: skip
