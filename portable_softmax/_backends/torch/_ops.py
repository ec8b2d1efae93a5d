"""This package's CPU kernels as PyTorch operators (``torch.library``), on zero-copy views.

Each operator views its CPU tensors as NumPy arrays (no copy), runs the call
on the NumPy paths (numba's kernels where installed, else NumPy's blocked ones: the setting
``auto``, whatever the caller's), and hands the fresh result back to PyTorch without a copy.
A fake (meta) implementation per operator gives ``torch.compile`` the result's shape and
dtype, so it traces the operators as opaque calls instead of the code inside them.

They have no autograd of their own: ``_nodes`` wraps them in one node per public function.
"""

# No ``from __future__ import annotations``: torch.library reads the schema from the hints.
from typing import Any

import numpy as np
import torch

from ..._dispatch import dispatch
from ..._lib._describe import describe, describe_cross_entropy

__all__ = ["cross_entropy", "derivative", "forward", "logsumexp", "plain", "transformed"]


def _axis(axes: list[int]) -> int | tuple[int, ...]:
    """One axis as an int: the NumPy paths' short lane takes no tuple."""
    return axes[0] if len(axes) == 1 else tuple(axes)


def _host(t: torch.Tensor) -> Any:
    """``t`` (a CPU tensor) as a NumPy array sharing its memory: the view DLPack would hand
    over, from ``Tensor.numpy`` (``np.from_dlpack`` goes through ``Tensor.__dlpack__``,
    Python code that cost 2-3 microseconds more a call, three calls a step)."""
    return t.detach().numpy()


def _tensor(a: Any) -> torch.Tensor:
    """A fresh NumPy result (or scalar) as a C-contiguous tensor (no copy when it is one
    already): the layout the fake implementations promise."""
    return torch.from_numpy(np.asarray(a, order="C"))


def _forward(
    x: torch.Tensor, axes: list[int], temperature: float | None, log: bool
) -> torch.Tensor:
    """softmax (or log_softmax, ``log``) of ``x`` over ``axes``."""
    function = "log_softmax" if log else "softmax"
    call = describe(function, _host(x), axis=_axis(axes), where=None, temperature=temperature)
    return _tensor(dispatch(call, "auto"))


_forward_op = torch.library.custom_op("portable_softmax::forward", _forward, mutates_args=())


@_forward_op.register_fake
def _(x: torch.Tensor, axes: list[int], temperature: float | None, log: bool) -> torch.Tensor:
    return x.new_empty(x.shape)


def _logsumexp(x: torch.Tensor, axes: list[int], keepdims: bool) -> torch.Tensor:
    """logsumexp of ``x`` over ``axes``."""
    call = describe(
        "logsumexp", _host(x), axis=_axis(axes), where=None, temperature=None, keepdims=keepdims
    )
    return _tensor(dispatch(call, "auto"))


_logsumexp_op = torch.library.custom_op("portable_softmax::logsumexp", _logsumexp, mutates_args=())


@_logsumexp_op.register_fake
def _(x: torch.Tensor, axes: list[int], keepdims: bool) -> torch.Tensor:
    if keepdims:
        shape = [1 if i in axes else n for i, n in enumerate(x.shape)]
    else:
        shape = [n for i, n in enumerate(x.shape) if i not in axes]
    return x.new_empty(shape)


def _derivative(
    primal: torch.Tensor,
    vector: torch.Tensor,
    axes: list[int],
    temperature: float | None,
    name: str,
) -> torch.Tensor:
    """The derivative ``name`` (``softmax_backward``, ``log_softmax_jvp``...) of the output
    ``primal`` and ``vector``."""
    names = ("logp" if name.startswith("log") else "y", "grad")
    call = describe(
        name, _host(primal), _host(vector), names=names, axis=_axis(axes), where=None,
        temperature=temperature,
    )  # fmt: skip
    return _tensor(dispatch(call, "auto"))


_derivative_op = torch.library.custom_op(
    "portable_softmax::derivative", _derivative, mutates_args=()
)


@_derivative_op.register_fake
def _(
    primal: torch.Tensor,
    vector: torch.Tensor,
    axes: list[int],
    temperature: float | None,
    name: str,
) -> torch.Tensor:
    return primal.new_empty(primal.shape)


def _cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    axis: int,
    reduction: str,
    ignore_index: int | None,
    smoothing: float,
    with_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss and, with ``with_grad``, its gradient for a loss gradient of one (else an
    empty tensor), from one read of the logits. Invalid labels give NaN (the caller checked
    them where the ``validate`` rule says to)."""
    call = describe_cross_entropy(
        "cross_entropy_with_grad" if with_grad else "cross_entropy",
        _host(logits),
        _host(target),
        axis=axis,
        reduction=reduction,
        weight=None if weight is None else _host(weight),
        ignore_index=ignore_index,
        label_smoothing=smoothing,
        where=None,
        validate=False,
    )
    if with_grad:
        loss, dlogits = dispatch(call, "auto")
        return _tensor(loss), _tensor(dlogits)
    return _tensor(dispatch(call, "auto")), logits.new_empty(0)


_cross_entropy_op = torch.library.custom_op(
    "portable_softmax::cross_entropy", _cross_entropy, mutates_args=()
)


@_cross_entropy_op.register_fake
def _(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    axis: int,
    reduction: str,
    ignore_index: int | None,
    smoothing: float,
    with_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    loss = logits.new_empty(target.shape if reduction == "none" else ())
    return loss, logits.new_empty(logits.shape if with_grad else (0,))


# vmap rules: the batch dimension first, the reduced axes shifted past it.


def _batch_first(t: torch.Tensor, dim: int | None, size: int) -> torch.Tensor:
    if dim is None:
        return t.expand(size, *t.shape)
    return t.movedim(dim, 0)


def _shifted(axes: list[int]) -> list[int]:
    return [axis + 1 for axis in axes]


@torch.library.register_vmap("portable_softmax::forward")  # type: ignore[untyped-decorator]
def _(
    info: Any, in_dims: tuple[Any, ...], x: torch.Tensor, axes: list[int],
    temperature: float | None, log: bool,
) -> tuple[torch.Tensor, int]:  # fmt: skip
    x = _batch_first(x, in_dims[0], info.batch_size)
    return _forward_op(x, _shifted(axes), temperature, log), 0


@torch.library.register_vmap("portable_softmax::logsumexp")  # type: ignore[untyped-decorator]
def _(
    info: Any, in_dims: tuple[Any, ...], x: torch.Tensor, axes: list[int], keepdims: bool
) -> tuple[torch.Tensor, int]:
    x = _batch_first(x, in_dims[0], info.batch_size)
    return _logsumexp_op(x, _shifted(axes), keepdims), 0


@torch.library.register_vmap("portable_softmax::derivative")  # type: ignore[untyped-decorator]
def _(
    info: Any, in_dims: tuple[Any, ...], primal: torch.Tensor, vector: torch.Tensor,
    axes: list[int], temperature: float | None, name: str,
) -> tuple[torch.Tensor, int]:  # fmt: skip
    primal = _batch_first(primal, in_dims[0], info.batch_size)
    vector = _batch_first(vector, in_dims[1], info.batch_size)
    return _derivative_op(primal, vector, _shifted(axes), temperature, name), 0


@torch.library.register_vmap("portable_softmax::cross_entropy")  # type: ignore[untyped-decorator]
def _(
    info: Any, in_dims: tuple[Any, ...], logits: torch.Tensor, target: torch.Tensor,
    weight: torch.Tensor | None, axis: int, reduction: str, ignore_index: int | None,
    smoothing: float, with_grad: bool,
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[int, int]]:  # fmt: skip
    # One call per batch element: a reduction over each element's samples is not one over
    # a batched array's (the mean's denominator is per element).
    def item(t: Any, dim: int | None, b: int) -> Any:
        return t if t is None or dim is None else t.select(dim, b)

    options = (axis, reduction, ignore_index, smoothing, with_grad)
    results = [
        _cross_entropy_op(
            item(logits, in_dims[0], b),
            item(target, in_dims[1], b),
            item(weight, in_dims[2], b),
            *options,
        )
        for b in range(info.batch_size)
    ]
    losses = torch.stack([loss for loss, _ in results])
    grads = torch.stack([grad for _, grad in results])
    return (losses, grads), (0, 0)


# The operators are what ``torch.compile`` and ``torch.func``'s transforms see; an eager call
# on plain tensors runs the implementation directly (an operator call costs tens of
# microseconds of Python, a visible part of a (256, 1000) softmax).


def transformed(t: torch.Tensor) -> bool:
    """Whether ``t`` is wrapped by a ``torch.func`` transform or by the legacy vmap
    (``gradcheck``'s batched gradients)."""
    return bool(_functorch.is_functorch_wrapped_tensor(t) or _functorch.is_legacy_batchedtensor(t))


def plain(t: torch.Tensor) -> bool:
    """A plain tensor outside tracing: not under ``torch.compile`` or a dispatch mode
    (``make_fx``, ``FakeTensorMode``), not wrapped by a transform (:func:`transformed`)."""
    if torch.compiler.is_compiling() or torch._C._len_torch_dispatch_stack():
        return False
    return not transformed(t)


_functorch = torch._C._functorch


def forward(x: torch.Tensor, axes: list[int], temperature: float | None, log: bool) -> Any:
    """softmax (or log_softmax, ``log``) of ``x`` over ``axes``."""
    run = _forward if plain(x) else _forward_op
    return run(x, axes, temperature, log)


def logsumexp(x: torch.Tensor, axes: list[int], keepdims: bool) -> Any:
    """logsumexp of ``x`` over ``axes``."""
    run = _logsumexp if plain(x) else _logsumexp_op
    return run(x, axes, keepdims)


def derivative(
    primal: torch.Tensor, vector: torch.Tensor, axes: list[int], temperature: float | None,
    name: str,
) -> Any:  # fmt: skip
    """The derivative ``name`` of the output ``primal`` and ``vector``."""
    run = _derivative if plain(primal) and plain(vector) else _derivative_op
    return run(primal, vector, axes, temperature, name)


def cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, axis: int,
    reduction: str, ignore_index: int | None, smoothing: float, with_grad: bool,
) -> Any:  # fmt: skip
    """The loss and, with ``with_grad``, its gradient for a loss gradient of one."""
    eager = plain(logits) and plain(target) and (weight is None or plain(weight))
    run = _cross_entropy if eager else _cross_entropy_op
    return run(logits, target, weight, axis, reduction, ignore_index, smoothing, with_grad)
