"""cross_entropy, its gradient, and both at once on the compiled kernels (``_ce_kernels``).

The registry took the call: C-contiguous float32/float64 logits with the classes on the last
axis, integer labels (not ``uint64``) or probabilities of the logits' shape, any ``weight``,
``ignore_index`` (labels), ``label_smoothing``, reduction and ``grad``, no ``where``. The
labels were checked before dispatch where SPEC's ``validate`` rule says to; invalid samples
left (``validate=False``) give NaN here, as on every path.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ... import _config
from ..._lib._call import CrossEntropyCall
from ._ce_kernels import ce_kernel, denominator, labels_denominator, safe_scale, total
from ._threads import parallel

__all__ = ["cross_entropy", "cross_entropy_backward", "cross_entropy_with_grad"]

_I64 = np.dtype(np.int64)


class _Operands(NamedTuple):
    rows: np.ndarray
    labels: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    keep: Any
    share: Any
    d: Any
    """The mean's denominator D (None unless ``reduction == "mean"``)."""


def _operands(call: CrossEntropyCall) -> _Operands:
    logits: np.ndarray = call.logits
    classes = logits.shape[-1]
    rows = logits.reshape(-1, classes)
    dtype = rows.dtype
    weighted = call.weight is not None
    w = np.ascontiguousarray(call.weight, dtype) if weighted else np.empty(1, dtype)
    ignore = 0 if call.ignore_index is None else call.ignore_index
    zero, one = dtype.type(0.0), dtype.type(1.0)
    d = None
    if call.hard:
        labels = np.ascontiguousarray(call.target.reshape(-1), _I64)
        probabilities = np.empty((1, 1), dtype)
        if call.reduction == "mean":
            _, d = labels_denominator(
                labels, classes, w, weighted, ignore, call.ignore_index is not None, zero, one
            )
    else:
        labels = np.empty(1, _I64)
        probabilities = np.ascontiguousarray(call.target, dtype).reshape(rows.shape)
        if call.reduction == "mean":
            d = denominator(probabilities, w, weighted, zero)
    eps = call.smoothing
    keep, share = dtype.type(1.0 - eps), dtype.type(eps / classes)
    return _Operands(
        rows, labels, probabilities, w, keep, share, None if d is None else dtype.type(d)
    )


def _run(
    call: CrossEntropyCall, ops: _Operands, gradient: bool, scales: np.ndarray, per_sample: bool
) -> tuple[np.ndarray, np.ndarray]:
    rows = ops.rows
    dtype = rows.dtype
    out = np.empty(rows.shape if gradient else (1, 1), dtype)
    losses = np.empty(rows.shape[0], dtype)
    kernel = ce_kernel(parallel(rows.nbytes, rows.shape[0]), _config.edges_enabled())
    kernel(
        rows, ops.labels, ops.target, ops.weight, call.hard, call.weight is not None,
        0 if call.ignore_index is None else call.ignore_index, call.ignore_index is not None,
        ops.keep, ops.share, dtype.type(1.0), scales, per_sample, gradient, out, losses,
    )  # fmt: skip
    return out, losses


def _loss(call: CrossEntropyCall, ops: _Operands, losses: np.ndarray) -> Any:
    dtype = ops.rows.dtype
    if call.reduction == "none":
        return losses.reshape(call.loss_shape)
    zero = dtype.type(0.0)
    mean = ops.d is not None
    return np.asarray(total(losses, zero, ops.d if mean else zero, mean), dtype=dtype)


def _scales(call: CrossEntropyCall, ops: _Operands) -> tuple[np.ndarray, bool]:
    """One factor per sample (``reduction="none"`` with ``grad``) or one for all."""
    dtype = ops.rows.dtype
    if call.grad is None:
        scales = np.ones(1, dtype)
    else:
        scales = np.ascontiguousarray(call.grad.reshape(-1), dtype)
    if ops.d is not None:
        scales = np.asarray([safe_scale(scales[0], ops.d)], dtype)
    return scales, call.reduction == "none" and call.grad is not None


def cross_entropy(call: CrossEntropyCall) -> Any:
    """:func:`portable_softmax.cross_entropy` on the compiled kernels."""
    ops = _operands(call)
    _, losses = _run(call, ops, False, np.empty(1, ops.rows.dtype), False)
    return _loss(call, ops, losses)


def cross_entropy_backward(call: CrossEntropyCall) -> Any:
    """:func:`portable_softmax.cross_entropy_backward` on the compiled kernels."""
    ops = _operands(call)
    out, _ = _run(call, ops, True, *_scales(call, ops))
    return out.reshape(call.logits.shape)


def cross_entropy_with_grad(call: CrossEntropyCall) -> tuple[Any, Any]:
    """:func:`portable_softmax.cross_entropy_with_grad`: one kernel pass writes the gradient
    and the per-sample losses."""
    ops = _operands(call)
    out, losses = _run(call, ops, True, *_scales(call, ops))
    return _loss(call, ops, losses), out.reshape(call.logits.shape)
