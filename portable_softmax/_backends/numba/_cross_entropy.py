"""cross_entropy and cross_entropy_backward on the compiled kernels (``_ce_kernels``).

Taken: NumPy float32/float64 logits in C order with the classes on the last axis; integer
labels of the other axes (``uint64`` excepted) or probabilities of the logits' shape; any
``weight`` of shape ``(C,)``, ``ignore_index`` (labels), ``label_smoothing``, reduction and
``grad`` of the loss's shape. Not taken: ``where``, and every invalid argument, including
an invalid label when ``validate`` is None or True (the generic path then raises the
documented error naming it). With ``validate=False`` invalid samples give NaN here too.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ... import _config
from ._ce_kernels import ce_kernel, denominator, labels_denominator, safe_scale, total
from ._eligibility import float_rows, last_axis
from ._threads import parallel

__all__ = ["cross_entropy", "cross_entropy_backward"]

_REDUCTIONS = ("none", "sum", "mean")
_I64 = np.dtype(np.int64)
_I64_INFO = np.iinfo(np.int64)


class _Call(NamedTuple):
    rows: np.ndarray
    labels: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    hard: bool
    weighted: bool
    ignore: int
    has_ignore: bool
    keep: Any
    share: Any
    loss_shape: tuple[int, ...]
    reduction: str
    d: Any
    """The mean's denominator D (None unless ``reduction == "mean"``)."""


def _as_dtype(a: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=dtype)


def _setup(
    logits: Any,
    target: Any,
    axis: Any,
    reduction: Any,
    weight: Any,
    ignore_index: Any,
    label_smoothing: Any,
    where: Any,
    validate: Any,
) -> _Call | None:
    """The call's operands when the kernels take it (see the module docstring), else None."""
    if where is not None or type(reduction) is not str or reduction not in _REDUCTIONS:
        return None
    if validate is not None and validate is not True and validate is not False:
        return None
    if type(label_smoothing) is not float and type(label_smoothing) is not int:
        return None
    if not 0.0 <= label_smoothing <= 1.0:
        return None
    if type(target) is not np.ndarray or type(logits) is not np.ndarray:
        return None
    hard = target.ndim == logits.ndim - 1
    if hard and type(axis) is not int and not isinstance(axis, np.integer):
        return None
    if axis is None and logits.ndim != 1:
        return None
    rows = float_rows(logits, axis)
    if rows is None or last_axis(axis, logits.ndim) is False:
        return None
    dtype = rows.dtype
    classes = rows.shape[1]
    if ignore_index is not None:
        if type(ignore_index) is not int and not isinstance(ignore_index, np.integer):
            return None
        if not hard or not _I64_INFO.min <= ignore_index <= _I64_INFO.max:
            return None
    if hard:
        if target.dtype.kind not in "iu" or target.dtype == np.uint64:
            return None
        if target.shape != logits.shape[:-1]:
            return None
        labels = _as_dtype(target.reshape(-1), _I64)
        probabilities = np.empty((1, 1), dtype)
        loss_shape = target.shape
    else:
        if target.shape != logits.shape or target.dtype.kind not in "fiu":
            return None
        labels = np.empty(1, _I64)
        probabilities = _as_dtype(target, dtype).reshape(rows.shape)
        loss_shape = logits.shape[:-1]
    if weight is None:
        w = np.empty(1, dtype)
    elif (
        type(weight) is not np.ndarray
        or weight.shape != (classes,)
        or weight.dtype.kind not in "fiu"
    ):
        return None
    else:
        w = _as_dtype(weight, dtype)
    eps = float(label_smoothing)
    zero, one = dtype.type(0.0), dtype.type(1.0)
    ignore = 0 if ignore_index is None else int(ignore_index)
    d = None
    if hard:
        invalid, d = labels_denominator(
            labels, classes, w, weight is not None, ignore, ignore_index is not None, zero, one
        )
        if invalid and validate is not False:
            return None  # the generic path raises, naming the first bad label
    elif reduction == "mean":
        d = denominator(probabilities, w, weight is not None, zero)
    return _Call(
        rows, labels, probabilities, w, hard, weight is not None, ignore,
        ignore_index is not None, dtype.type(1.0 - eps), dtype.type(eps / classes),
        loss_shape, reduction, None if reduction != "mean" else dtype.type(d),
    )  # fmt: skip


def _run(call: _Call, gradient: bool, scales: np.ndarray, per_sample: bool) -> Any:
    rows = call.rows
    dtype = rows.dtype
    out = np.empty(rows.shape if gradient else (1, 1), dtype)
    losses = np.empty(rows.shape[0], dtype)
    kernel = ce_kernel(parallel(rows.nbytes, rows.shape[0]), _config.edges_enabled())
    kernel(
        rows, call.labels, call.target, call.weight, call.hard, call.weighted, call.ignore,
        call.has_ignore, call.keep, call.share, dtype.type(1.0), scales, per_sample, gradient,
        out, losses,
    )  # fmt: skip
    return out, losses


def cross_entropy(
    logits: Any,
    target: Any,
    /,
    *,
    axis: Any = -1,
    reduction: Any = "mean",
    weight: Any = None,
    ignore_index: Any = None,
    label_smoothing: Any = 0.0,
    where: Any = None,
    validate: Any = None,
) -> Any:
    """:func:`portable_softmax.cross_entropy` on the fast case, else ``NotImplemented``."""
    call = _setup(
        logits, target, axis, reduction, weight, ignore_index, label_smoothing, where, validate
    )
    if call is None:
        return NotImplemented
    dtype = call.rows.dtype
    _, losses = _run(call, False, np.empty(1, dtype), False)
    if call.reduction == "none":
        return losses.reshape(call.loss_shape)
    zero = dtype.type(0.0)
    mean = call.d is not None
    result = total(losses, zero, call.d if mean else zero, mean)
    return np.asarray(result, dtype=dtype)


def cross_entropy_backward(
    logits: Any,
    target: Any,
    /,
    *,
    grad: Any = None,
    axis: Any = -1,
    reduction: Any = "mean",
    weight: Any = None,
    ignore_index: Any = None,
    label_smoothing: Any = 0.0,
    where: Any = None,
    validate: Any = None,
) -> Any:
    """:func:`portable_softmax.cross_entropy_backward` on the fast case, else
    ``NotImplemented``."""
    call = _setup(
        logits, target, axis, reduction, weight, ignore_index, label_smoothing, where, validate
    )
    if call is None:
        return NotImplemented
    dtype = call.rows.dtype
    per_sample = False
    if grad is None:
        scales = np.ones(1, dtype)
    else:
        shape = call.loss_shape if call.reduction == "none" else ()
        if type(grad) is not np.ndarray or grad.shape != shape or grad.dtype.kind not in "fiu":
            return NotImplemented
        scales = _as_dtype(grad.reshape(-1), dtype)
        per_sample = call.reduction == "none"
    if call.d is not None:
        scales = np.asarray([safe_scale(scales[0], call.d)], dtype)
    out, _ = _run(call, True, scales, per_sample)
    return out.reshape(logits.shape)
