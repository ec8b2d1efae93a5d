"""Straight-line kernels for inputs of a few KiB, where NumPy's per-call cost is the work.

An (8, 10) softmax is ~80 numbers: the blocked machinery (buffers, block loop, scratch) would
cost more than the arithmetic, so small inputs take the shortest chain of ufunc calls into
one fresh output. The edges are settled by one check on the row sums: with a finite row
maximum ``m`` the sum of ``exp(x - m)`` is at least 1 (the maximum contributes ``exp(0)``),
while a NaN, a +inf or a row with nothing finite makes it NaN. Such inputs return None, and
the caller takes the blocked path, which hands those rows to the portable kernel.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SMALL_BYTES", "log_softmax", "logsumexp", "softmax", "softmax_backward"]

SMALL_BYTES = 4096
"""Inputs up to this size take these kernels."""


def _shifted_and_sums(
    x: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """``(m, x - m, exp(x - m), sum(exp(x - m)))`` per row, or None at an edge. With a
    finite maximum the shifted row is finite or -inf and its sum at least 1, so what the
    caller computes from them raises no floating-point warning."""
    with np.errstate(all="ignore"):
        m = np.maximum.reduce(x, axis=-1, keepdims=True)
        shifted = np.subtract(x, m)
        e = np.exp(shifted)
        s = np.add.reduce(e, axis=-1, keepdims=True)
        if not np.minimum.reduce(s, axis=None) >= 1:  # NaN fails too
            return None
    return m, shifted, e, s


def softmax(x: np.ndarray) -> np.ndarray | None:
    """``exp(x - m) / sum(exp(x - m))`` over the last axis, or None at an edge."""
    with np.errstate(all="ignore"):
        m = np.maximum.reduce(x, axis=-1, keepdims=True)
        e = np.subtract(x, m)
        np.exp(e, out=e)
        s = np.add.reduce(e, axis=-1, keepdims=True)
        if not np.minimum.reduce(s, axis=None) >= 1:
            return None
        return np.divide(e, s, out=e)  # type: ignore[no-any-return]


def log_softmax(x: np.ndarray) -> np.ndarray | None:
    """``(x - m) - log(sum(exp(x - m)))`` over the last axis, or None at an edge."""
    parts = _shifted_and_sums(x)
    if parts is None:
        return None
    return np.subtract(parts[1], np.log(parts[3]), out=parts[1])  # type: ignore[no-any-return]


def logsumexp(x: np.ndarray) -> np.ndarray | None:
    """``m + log(sum(exp(x - m)))`` over the last axis (kept with length 1), or None."""
    parts = _shifted_and_sums(x)
    if parts is None:
        return None
    return np.add(parts[0], np.log(parts[3]), out=parts[3])  # type: ignore[no-any-return]


def softmax_backward(y: np.ndarray, g: np.ndarray, temperature: float | None) -> np.ndarray:
    """``y * (g - sum(g*y)) / T`` over the last axis."""
    with np.errstate(all="ignore"):
        out: np.ndarray = np.multiply(g, y)
        dot = np.add.reduce(out, axis=-1, keepdims=True)
        np.subtract(g, dot, out=out)
        np.multiply(out, y, out=out)
        if temperature is not None:
            np.divide(out, temperature, out=out)
        return out


def cross_entropy(
    x: np.ndarray, labels: np.ndarray, reduction: str, gradient: bool
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Loss (and gradient) of valid integer labels over the last axis of 2-D rows, without
    weights, smoothing or ``ignore_index``, or None at an edge: ``l = log(s) - (x_y - m)``
    and ``(p - onehot) * scale`` with ``scale = 1/N`` for the mean (``D = N`` here)."""
    parts = _shifted_and_sums(x)
    if parts is None:
        return None
    _, shifted, e, s = parts
    index = np.arange(x.shape[0])
    with np.errstate(all="ignore"):  # a -inf logit at a label: an infinite loss
        losses = np.log(s[:, 0]) - shifted[index, labels]
        if reduction == "none":
            loss = losses
        else:
            total = np.add.reduce(losses)
            loss = np.asarray(total / x.shape[0] if reduction == "mean" else total, x.dtype)
    grad = None
    if gradient:
        scale = 1.0 / x.shape[0] if reduction == "mean" else 1.0
        grad = np.multiply(e, np.divide(scale, s), out=e)
        grad[index, labels] -= scale
    return loss, grad
