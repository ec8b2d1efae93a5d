"""PyTorch's softmax family as an implementation (torch tensors only).

Forward: ``torch.softmax``, ``torch.log_softmax`` (one int ``dim``: tuple and None axes are
"not provided"), ``torch.logsumexp``. Backward: ``torch._softmax_backward_data`` and
``torch._log_softmax_backward_data`` (the kernels autograd uses, which take the forward
output as we do). JVP: ``torch.func.jvp`` at a preimage of the output (``log(y)`` for
softmax, ``logp`` itself for log_softmax). Cross-entropy: ``F.cross_entropy`` with the class
axis moved to dimension 1, integer labels cast to int64 and probability targets to the
logits' dtype, our ``ignore_index=None`` mapped to PyTorch's ``-100``; its gradient by
autograd. No ``where``, temperature, ``validate`` or layers.
"""

from __future__ import annotations

import contextlib
import operator
import warnings
from collections.abc import Iterator
from typing import Any

import array_api_compat

from conformance._framework.provided import not_provided

__conformance_name__ = "torch"
__conformance_conventions__ = {
    "nan_for_inf_rows": "NaN in slices holding +inf or no finite entry",
    "soft_target_mean_over_n": "reduction='mean' divides probability-target losses by N",
    "nan_for_zero_denominator": "NaN for a mean over no (unignored) samples",
    "no_integer_promotion": "an error for integer and bool tensors (no promotion)",
    "own_validation_errors": "its own exceptions (IndexError, RuntimeError) for bad input",
}


def __conformance_accepts__(backend: Any) -> str | None:
    if array_api_compat.is_torch_namespace(backend.xp):
        return None
    return "torch.nn.functional takes torch tensors only"


def _dim(axis: Any, fn: str) -> Any:
    if axis is None or isinstance(axis, tuple):
        not_provided(f"torch.{fn} takes one int dim, not axis={axis!r}")
    try:
        return operator.index(axis)
    except TypeError:
        return axis  # let torch raise its own error for a bad axis


def softmax(x: Any, /, *, axis: Any = -1) -> Any:
    """``torch.softmax(x, dim=axis)``."""
    import torch

    return torch.softmax(x, _dim(axis, "softmax"))


def log_softmax(x: Any, /, *, axis: Any = -1) -> Any:
    """``torch.log_softmax(x, dim=axis)``."""
    import torch

    return torch.log_softmax(x, _dim(axis, "log_softmax"))


def logsumexp(x: Any, /, *, axis: Any = -1, keepdims: bool = False) -> Any:
    """``torch.logsumexp(x, dim=axis, keepdim=keepdims)``; axis None means every dim."""
    import torch

    dim = tuple(range(x.ndim)) if axis is None else axis
    return torch.logsumexp(x, dim, keepdim=keepdims)


def softmax_backward(grad: Any, y: Any, /, *, axis: Any = -1) -> Any:
    """``torch._softmax_backward_data(grad, y, dim, y.dtype)``."""
    import torch

    return torch._softmax_backward_data(grad, y, _dim(axis, "softmax"), y.dtype)


def log_softmax_backward(grad: Any, logp: Any, /, *, axis: Any = -1) -> Any:
    """``torch._log_softmax_backward_data(grad, logp, dim, logp.dtype)``."""
    import torch

    return torch._log_softmax_backward_data(grad, logp, _dim(axis, "log_softmax"), logp.dtype)


@contextlib.contextmanager
def _quiet_jvp() -> Iterator[None]:
    """torch.func.jvp warns about torch.jit.script internally (torch 2.13): not a finding."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*torch.jit.script", DeprecationWarning)
        yield


def softmax_jvp(tangent: Any, y: Any, /, *, axis: Any = -1) -> Any:
    """``torch.func.jvp`` of ``torch.softmax`` at ``log(y)``."""
    import torch

    dim = _dim(axis, "softmax")
    with _quiet_jvp():
        return torch.func.jvp(lambda z: torch.softmax(z, dim), (torch.log(y),), (tangent,))[1]


def log_softmax_jvp(tangent: Any, logp: Any, /, *, axis: Any = -1) -> Any:
    """``torch.func.jvp`` of ``torch.log_softmax`` at ``logp``."""
    import torch

    dim = _dim(axis, "log_softmax")
    with _quiet_jvp():
        return torch.func.jvp(lambda z: torch.log_softmax(z, dim), (logp,), (tangent,))[1]


def _ce_args(logits: Any, target: Any, axis: Any) -> tuple[Any, Any]:
    import torch

    dim = _dim(axis, "nn.functional.cross_entropy")
    dim = dim % logits.ndim if logits.ndim else 0
    moved = torch.movedim(logits, dim, 1) if logits.ndim > 1 else logits
    if target.ndim == logits.ndim:  # probabilities: same layout as the logits
        target = torch.movedim(target, dim, 1) if logits.ndim > 1 else target
        target = target.to(logits.dtype)
    elif not target.dtype.is_floating_point:
        target = target.long()
    return moved, target


def cross_entropy(
    logits: Any,
    target: Any,
    /,
    *,
    axis: Any = -1,
    reduction: str = "mean",
    weight: Any = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
) -> Any:
    """``F.cross_entropy`` with the class axis moved to dimension 1."""
    import torch.nn.functional as F

    moved, target = _ce_args(logits, target, axis)
    return F.cross_entropy(
        moved,
        target,
        weight=weight,
        ignore_index=-100 if ignore_index is None else ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )


def cross_entropy_backward(
    logits: Any,
    target: Any,
    /,
    *,
    grad: Any = None,
    axis: Any = -1,
    reduction: str = "mean",
    weight: Any = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
) -> Any:
    """Autograd gradient of :func:`cross_entropy` with respect to the logits."""
    import torch

    leaf = logits.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = cross_entropy(
            leaf,
            target,
            axis=axis,
            reduction=reduction,
            weight=weight,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
        )
        # grad None means ones of the loss's shape (autograd accepts None for 0-d only).
        ones = torch.ones_like(loss) if grad is None else grad
        (dlogits,) = torch.autograd.grad(loss, leaf, grad_outputs=ones)
    return dlogits.detach()
