"""The PyTorch backend: this package's CPU kernels under one autograd node per call.

float32/float64 CPU tensors reach the NumPy paths' kernels zero-copy (``_ops``), inside an
autograd node whose derivatives are this package's (``_nodes``). The registry
(``portable_softmax._dispatch``) declares what it takes; everything else (other dtypes,
CUDA tensors, masks, temperature arrays, probability targets, a weight that needs a
gradient) takes the portable path, whose PyTorch operations autograd differentiates.
"""

from __future__ import annotations

from typing import Any

import torch

from ._nodes import CROSS_ENTROPY, FORWARD, LOGSUMEXP, apply

__all__ = ["cross_entropy", "log_softmax", "logsumexp", "softmax"]


def softmax(call: Any) -> Any:
    return apply(FORWARD, (call.x,), call.x, call.axes, call.temperature, False)


def log_softmax(call: Any) -> Any:
    return apply(FORWARD, (call.x,), call.x, call.axes, call.temperature, True)


def logsumexp(call: Any) -> Any:
    return apply(LOGSUMEXP, (call.x,), call.x, call.axes, call.keepdims)


def cross_entropy(call: Any) -> Any:
    logits = call.logits
    # the gradient is written in the forward's pass only where a backward will want it
    with_grad = torch.is_grad_enabled() and bool(logits.requires_grad)
    options = (call.axes[0], call.reduction, call.ignore_index, call.smoothing)
    tensors = (logits, call.target, call.weight)
    loss, _ = apply(CROSS_ENTROPY, tensors, *tensors, options, with_grad)
    return loss
