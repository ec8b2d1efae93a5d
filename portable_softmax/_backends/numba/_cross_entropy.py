"""cross_entropy, its gradient, and both at once on the compiled kernels (``_ce_kernels``).

The registry took the call: C-contiguous float32/float64 logits with the classes on the last
axis, integer labels (not ``uint64``) or probabilities of the logits' shape, any ``weight``,
``ignore_index`` (labels), ``label_smoothing``, reduction and ``grad``, no ``where``. The
labels were checked before dispatch where SPEC's ``validate`` rule says to; invalid samples
left (``validate=False``) give NaN here, as on every path. Each call is one kernel call:
the mean's denominator, every row (loss, and gradient where asked), and the reduced loss.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ... import _config
from ..._lib._call import CrossEntropyCall
from ..._lib._out import numpy_destination
from ._ce_kernels import MEAN, NONE, SUM, ce_kernel
from ._narrow import NARROW_ENTRIES
from ._threads import parallel

__all__ = ["cross_entropy", "cross_entropy_backward", "cross_entropy_with_grad"]

_I64 = np.dtype(np.int64)
_REDUCTIONS = {"none": NONE, "sum": SUM, "mean": MEAN}


@functools.cache
def _constants(char: str) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per dtype: the scalar 1 and the placeholders of absent operands (never written):
    weights, probabilities, labels, and the gradient of a loss-only call."""
    dtype = np.dtype(char)
    return (
        dtype.type(1.0),
        np.ones(1, dtype),
        np.empty((1, 1), dtype),
        np.empty(1, _I64),
        np.empty((1, 1), dtype),
    )


def _run(call: CrossEntropyCall, gradient: bool) -> tuple[Any, np.ndarray, np.ndarray]:
    """``(reduced loss, per-sample losses, gradient rows)`` from one kernel call."""
    logits: np.ndarray = call.logits
    classes = logits.shape[-1]
    rows = logits if logits.ndim == 2 else logits.reshape(-1, classes)
    dtype = rows.dtype
    one, ones, no_target, no_labels, no_gradient = _constants(dtype.char)
    weighted = call.weight is not None
    w = np.ascontiguousarray(call.weight, dtype) if weighted else ones
    if call.hard:
        labels = np.ascontiguousarray(call.target.reshape(-1), _I64)
        target = no_target
    else:
        labels = no_labels
        target = np.ascontiguousarray(call.target, dtype).reshape(rows.shape)
    grads = ones if call.grad is None else np.ascontiguousarray(call.grad.reshape(-1), dtype)
    eps = call.smoothing
    keep = one if eps == 0 else dtype.type(1.0 - eps)
    share = one - one if eps == 0 else dtype.type(eps / classes)
    ignore = call.ignore_index
    out = no_gradient
    written = False
    if gradient:  # a row's logits are all read before its gradient is written: not so
        out, written = numpy_destination(call, rows.shape, ("logits",))  # the target's
    losses = np.empty(rows.shape[0], dtype)
    narrow = classes <= NARROW_ENTRIES
    # the narrow blocks read a block's logits into a scratch before writing any of its
    # gradient, from the scratch: no in-place variant needed (one compile fewer)
    in_place = written and call.out_alias == "logits" and not narrow
    threads = parallel(rows.nbytes, rows.shape[0])
    kernel = ce_kernel(threads, _config.edges_enabled(), in_place, narrow)
    total = kernel(
        rows, labels, target, w, call.hard, weighted, 0 if ignore is None else ignore,
        ignore is not None, keep, share, one, grads,
        call.reduction == "none" and call.grad is not None, gradient,
        _REDUCTIONS[call.reduction], out, losses,
    )  # fmt: skip
    return total, losses, call.out if written else out


def _loss(call: CrossEntropyCall, total: Any, losses: np.ndarray) -> Any:
    if call.reduction == "none":
        return losses.reshape(call.loss_shape)
    return np.asarray(total, dtype=losses.dtype)


def cross_entropy(call: CrossEntropyCall) -> Any:
    """:func:`portable_softmax.cross_entropy` on the compiled kernels."""
    total, losses, _ = _run(call, False)
    return _loss(call, total, losses)


def cross_entropy_backward(call: CrossEntropyCall) -> Any:
    """:func:`portable_softmax.cross_entropy_backward` on the compiled kernels."""
    _, _, out = _run(call, True)
    return _shaped(out, call.logits.shape)


def cross_entropy_with_grad(call: CrossEntropyCall) -> tuple[Any, Any]:
    """:func:`portable_softmax.cross_entropy_with_grad`: one pass writes the gradient and the
    per-sample losses."""
    total, losses, out = _run(call, True)
    return _loss(call, total, losses), _shaped(out, call.logits.shape)


def _shaped(out: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``out`` in ``shape`` (the caller's ``out`` itself when it is one already)."""
    return out if out.shape == shape else out.reshape(shape)
