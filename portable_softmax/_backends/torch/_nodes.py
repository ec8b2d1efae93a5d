"""One autograd node per public function, around the operators of ``_ops``.

Each function's node has rules written once (its forward, what it saves, its backward, which
is this package's VJP, and its forward-mode rule, this package's JVP), built into three
``autograd.Function`` classes, picked per call by :func:`apply`:

- ``eager``: plain tensors. The forward takes ``ctx``: a ``setup_context`` Function's
  ``apply`` binds its arguments to a signature on every call (30-40 microseconds, a visible
  part of a (256, 1000) softmax).
- ``traced``: under ``torch.compile``, which traces no Function with a forward-mode rule, so
  it has none (forward mode through a compiled call is PyTorch's error).
- ``transformed``: tensors wrapped by ``torch.func`` (``grad``, ``vmap``, ``jvp``, ``jacrev``...),
  which needs ``setup_context``; its vmap rule is generated over the operators' own rules.

Where a derivative is itself being differentiated (``create_graph=True``, ``grad`` of
``grad``: grad mode is on and an input records), the derivative runs on the portable path
instead, whose PyTorch operations autograd differentiates again: double backward gives what
differentiating the generic chain gives.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from ... import _cross_entropy, _derivatives
from . import _ops

__all__ = ["CROSS_ENTROPY", "FORWARD", "LOGSUMEXP", "Nodes", "Static", "apply"]


class Nodes(NamedTuple):
    eager: Any
    traced: Any
    transformed: Any


class Static:
    """A non-tensor argument (axes, options) as one opaque leaf: the vmap rule PyTorch
    generates flattens tuple arguments as pytrees and then misaligns the tangents' batch
    dimensions (``jvp`` of ``vmap``, ``hessian``)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _value(a: Any) -> Any:
    return a.value if isinstance(a, Static) else a


def apply(nodes: Nodes, tensors: tuple[Any, ...], *inputs: Any) -> Any:
    """Apply the node class for a call on ``tensors`` (its tensor inputs; see the module
    docstring) to ``inputs``."""
    if torch.compiler.is_compiling():
        return nodes.traced.apply(*inputs)
    if any(t is not None and _ops.transformed(t) for t in tensors):
        static = (Static(a) if isinstance(a, tuple) else a for a in inputs)
        return nodes.transformed.apply(*static)
    return nodes.eager.apply(*inputs)


def _build(name: str, rules: Any) -> Nodes:
    """The three Function classes of one node from its rules: ``run(*inputs)`` (with
    its parameters named: Dynamo binds them when a backward applies another node),
    ``save(ctx, inputs, output)``, ``backward(ctx, *grads)``, ``jvp(ctx, *tangents)``."""

    def forward_with_ctx(ctx: Any, *inputs: Any) -> Any:
        output = rules.run(*inputs)
        ctx.eager = True  # plain tensors: the rules may keep what they save on ctx
        rules.save(ctx, inputs, output)
        return output

    common = {"backward": staticmethod(rules.backward), "__module__": __name__}
    eager = type(f"{name}Eager", (torch.autograd.Function,), {
        **common, "forward": staticmethod(forward_with_ctx), "jvp": staticmethod(rules.jvp),
    })  # fmt: skip
    traced = type(f"{name}Traced", (torch.autograd.Function,), {
        **common, "forward": staticmethod(rules.run), "setup_context": staticmethod(rules.save),
    })  # fmt: skip
    transformed = type(f"{name}Transformed", (torch.autograd.Function,), {
        **common, "forward": staticmethod(rules.run), "setup_context": staticmethod(rules.save),
        "jvp": staticmethod(rules.jvp), "generate_vmap_rule": True,
    })  # fmt: skip
    return Nodes(eager, traced, transformed)


def _records(*tensors: torch.Tensor | None) -> bool:
    """Whether autograd records operations on these tensors here (a derivative of a
    derivative is wanted)."""
    if not torch.is_grad_enabled():
        return False
    return any(t is not None and t.requires_grad for t in tensors)


def _derivative(
    name: str, primal: torch.Tensor, vector: torch.Tensor, axes: tuple[int, ...], t: Any
) -> torch.Tensor:
    """The derivative ``name`` (``softmax_backward``, ``log_softmax_jvp``...) of the output
    ``primal`` and a gradient or tangent ``vector``."""
    if _records(primal, vector):
        function = getattr(_derivatives, name)
        return function(vector, primal, axis=axes, temperature=t)  # type: ignore[no-any-return]
    return _ops.derivative(primal, vector, list(axes), t, name)  # type: ignore[no-any-return]


class _Forward:
    """softmax (``log`` False) or log_softmax (``log`` True) over ``axes``; inputs
    ``(x, axes, temperature, log)``."""

    @staticmethod
    def run(x: torch.Tensor, axes: Any, t: Any, log: bool) -> Any:
        return _ops.forward(x, list(_value(axes)), t, log)

    @staticmethod
    def save(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        _, axes, ctx.t, ctx.log = inputs
        ctx.axes = _value(axes)
        ctx.save_for_backward(output)
        ctx.save_for_forward(output)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        (y,) = ctx.saved_tensors
        name = "log_softmax_backward" if ctx.log else "softmax_backward"
        return _derivative(name, y, grad, ctx.axes, ctx.t), None, None, None

    @staticmethod
    def jvp(ctx: Any, tangent: torch.Tensor, *_: Any) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        name = "log_softmax_jvp" if ctx.log else "softmax_jvp"
        return _derivative(name, y, tangent, ctx.axes, ctx.t)


FORWARD = _build("Softmax", _Forward)


def _softmax(x: torch.Tensor, axes: tuple[int, ...]) -> Any:
    return apply(FORWARD, (x,), x, axes, None, False)


def _keep_axes(a: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    """A reduction ``a`` with the reduced ``axes`` put back, with length 1."""
    for axis in sorted(axes):
        a = a.unsqueeze(axis)
    return a


class _LogSumExp:
    """logsumexp over ``axes``, inputs ``(x, axes, keepdims)``; its derivative is the
    softmax (a node of its own)."""

    @staticmethod
    def run(x: torch.Tensor, axes: Any, keepdims: bool) -> Any:
        return _ops.logsumexp(x, list(_value(axes)), keepdims)

    @staticmethod
    def save(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        x, axes, ctx.keepdims = inputs
        ctx.axes = _value(axes)
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        (x,) = ctx.saved_tensors
        if not ctx.keepdims:
            grad = _keep_axes(grad, ctx.axes)
        return _softmax(x, ctx.axes) * grad, None, None

    @staticmethod
    def jvp(ctx: Any, tangent: torch.Tensor, *_: Any) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        products: torch.Tensor = _softmax(x, ctx.axes) * tangent
        return products.sum(dim=ctx.axes, keepdim=ctx.keepdims)


LOGSUMEXP = _build("LogSumExp", _LogSumExp)


class _CrossEntropy:
    """Cross-entropy with integer labels, inputs ``(logits, target, weight, options,
    with_grad)``, ``options`` ``(axis, reduction, ignore_index, label_smoothing)``. Returns
    the loss and, when ``with_grad``, its gradient for a loss gradient of one (written in
    the same pass; not differentiable), which the backward scales."""

    @staticmethod
    def run(
        logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None,
        options: Any, with_grad: bool,
    ) -> Any:  # fmt: skip
        axis, reduction, ignore_index, smoothing = _value(options)
        return _ops.cross_entropy(
            logits, target, weight, axis, reduction, ignore_index, smoothing, with_grad
        )

    @staticmethod
    def save(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        logits, target, weight, options, with_grad = inputs
        ctx.options = _value(options)
        dlogits = output[1] if with_grad else None
        ctx.mark_non_differentiable(output[1])
        # The eager node keeps the fused gradient on ctx, not saved: its first backward
        # scales it in place and hands it over (a second array of the logits' size costs
        # its page faults: 30 ms at (4096, 4096) float32); a later backward (retain_graph)
        # computes it again. Under torch.func and torch.compile it is saved, never modified.
        eager = getattr(ctx, "eager", False)
        ctx.dlogits = dlogits if eager else None
        saved = (logits, target, weight, None if eager else dlogits)
        ctx.save_for_backward(*saved)
        ctx.save_for_forward(*saved)

    @staticmethod
    def _gradient(ctx: Any, grad: torch.Tensor | None) -> Any:
        """The gradient for a loss gradient ``grad`` (None: ones) by the portable path,
        which autograd can differentiate again."""
        logits, target, weight = ctx.saved_tensors[:3]
        axis, reduction, ignore_index, smoothing = ctx.options
        return _cross_entropy.cross_entropy_backward(
            logits, target, grad=grad, axis=axis, reduction=reduction, weight=weight,
            ignore_index=ignore_index, label_smoothing=smoothing, validate=False,
        )  # fmt: skip

    @staticmethod
    def _kept(ctx: Any) -> Any:
        """The gradient for a loss gradient of one that the forward wrote, or None (it
        wrote none, or a backward has taken it)."""
        return ctx.dlogits if ctx.dlogits is not None else ctx.saved_tensors[3]

    @staticmethod
    def _fused(ctx: Any) -> tuple[Any, bool]:
        """The gradient for a loss gradient of one from the forward's pass (or computed
        now), and whether it may be modified in place (it is no saved tensor's)."""
        if ctx.dlogits is not None:
            dlogits, ctx.dlogits = ctx.dlogits, None
            return dlogits, True
        kept = ctx.saved_tensors[3]
        if kept is not None:
            return kept, False
        logits, target, weight = ctx.saved_tensors[:3]
        axis, reduction, ignore_index, smoothing = ctx.options
        fused = _ops.cross_entropy(
            logits, target, weight, axis, reduction, ignore_index, smoothing, True
        )
        return fused[1], True

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, _: Any) -> tuple[Any, ...]:
        axis, reduction = ctx.options[:2]
        if _records(ctx.saved_tensors[0], grad):
            result = _CrossEntropy._gradient(ctx, grad)
        else:
            dlogits, own = _CrossEntropy._fused(ctx)
            scale = grad.unsqueeze(axis) if reduction == "none" else grad
            # in place only with a plain gradient (not one batched by a transform)
            own = own and _ops.plain(scale)
            result = dlogits.mul_(scale) if own else dlogits * scale
        return result, None, None, None, None

    @staticmethod
    def jvp(ctx: Any, tangent: torch.Tensor, *_: Any) -> tuple[torch.Tensor, None]:
        axis, reduction = ctx.options[:2]
        dlogits = None if _records(ctx.saved_tensors[0], tangent) else _CrossEntropy._kept(ctx)
        if dlogits is None:
            dlogits = _CrossEntropy._gradient(ctx, None)
        products = dlogits * tangent
        return (products.sum(dim=axis) if reduction == "none" else products.sum()), None


CROSS_ENTROPY = _build("CrossEntropy", _CrossEntropy)
