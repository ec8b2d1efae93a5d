"""The Dask backend: every public function on ``dask.array`` arrays, lazily, and scaling.

Chunks that hold whole slices along the reduced axes run one ``map_blocks`` task each, which
calls the public function on the block (its chunk type's fastest path); chunks that split the
reduced axes, and ``axis=None``, go through a tree reduction of per-slice statistics and one
elementwise pass. Each function has the public signature and returns a lazy Dask array, or
``NotImplemented`` for a call it does not take (non-Dask operands, 0-d or empty arrays), which
the caller then runs on the generic path. Nothing is computed while the graph is built.

Examples
--------
>>> import dask.array as da
>>> from portable_softmax._backends import dask as backend
>>> x = da.from_array([[1.0, 2.0, 3.0, 4.0]], chunks=(1, 2))  # the axis is split
>>> backend.softmax(x, axis=-1).compute().round(6)
array([[0.032059, 0.087144, 0.236883, 0.643914]])
"""

from __future__ import annotations

from typing import Any

from . import _cross_entropy
from ._derivatives import derivative
from ._forward import forward
from ._forward import logsumexp as _logsumexp
from ._graph import Array

__all__ = [
    "cross_entropy",
    "cross_entropy_backward",
    "log_softmax",
    "log_softmax_backward",
    "log_softmax_jvp",
    "logsumexp",
    "softmax",
    "softmax_backward",
    "softmax_jvp",
]


def softmax(
    x: Array, /, *, axis: Any = -1, where: Array | None = None, temperature: Any = None
) -> Array:
    """:func:`portable_softmax.softmax` of a Dask array (lazy), or NotImplemented."""
    return forward("softmax", x, axis, where, temperature)


def log_softmax(
    x: Array, /, *, axis: Any = -1, where: Array | None = None, temperature: Any = None
) -> Array:
    """:func:`portable_softmax.log_softmax` of a Dask array (lazy), or NotImplemented."""
    return forward("log_softmax", x, axis, where, temperature)


def logsumexp(
    x: Array, /, *, axis: Any = -1, where: Array | None = None, keepdims: bool = False
) -> Array:
    """:func:`portable_softmax.logsumexp` of a Dask array (lazy), or NotImplemented."""
    return _logsumexp(x, axis, where, keepdims)


def softmax_backward(
    grad: Array,
    y: Array,
    /,
    *,
    axis: Any = -1,
    where: Array | None = None,
    temperature: Any = None,
) -> Array:
    """:func:`portable_softmax.softmax_backward` of Dask arrays (lazy), or NotImplemented."""
    return derivative("softmax_backward", grad, y, axis, where, temperature)


def log_softmax_backward(
    grad: Array,
    logp: Array,
    /,
    *,
    axis: Any = -1,
    where: Array | None = None,
    temperature: Any = None,
) -> Array:
    """:func:`portable_softmax.log_softmax_backward` of Dask arrays (lazy), or
    NotImplemented."""
    return derivative("log_softmax_backward", grad, logp, axis, where, temperature)


def softmax_jvp(
    tangent: Array,
    y: Array,
    /,
    *,
    axis: Any = -1,
    where: Array | None = None,
    temperature: Any = None,
) -> Array:
    """:func:`portable_softmax.softmax_jvp` of Dask arrays (lazy), or NotImplemented."""
    return derivative("softmax_jvp", tangent, y, axis, where, temperature)


def log_softmax_jvp(
    tangent: Array,
    logp: Array,
    /,
    *,
    axis: Any = -1,
    where: Array | None = None,
    temperature: Any = None,
) -> Array:
    """:func:`portable_softmax.log_softmax_jvp` of Dask arrays (lazy), or NotImplemented."""
    return derivative("log_softmax_jvp", tangent, logp, axis, where, temperature)


def cross_entropy(
    logits: Array,
    target: Array,
    /,
    *,
    axis: Any = -1,
    reduction: str = "mean",
    weight: Array | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    where: Array | None = None,
    validate: bool | None = None,
) -> Array:
    """:func:`portable_softmax.cross_entropy` of Dask arrays (lazy), or NotImplemented."""
    return _cross_entropy.cross_entropy(
        logits,
        target,
        axis=axis,
        reduction=reduction,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        where=where,
        validate=validate,
    )


def cross_entropy_backward(
    logits: Array,
    target: Array,
    /,
    *,
    grad: Array | None = None,
    axis: Any = -1,
    reduction: str = "mean",
    weight: Array | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    where: Array | None = None,
    validate: bool | None = None,
) -> Array:
    """:func:`portable_softmax.cross_entropy_backward` of Dask arrays (lazy), or
    NotImplemented."""
    return _cross_entropy.cross_entropy_backward(
        logits,
        target,
        grad=grad,
        axis=axis,
        reduction=reduction,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        where=where,
        validate=validate,
    )
