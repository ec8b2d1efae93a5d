"""Fused CUDA kernels for CuPy arrays: the public functions, or ``NotImplemented``.

**Opt-in and unverified.** Every function here returns ``NotImplemented`` at once unless the
environment variable ``PORTABLE_SOFTMAX_CUPY_KERNELS=1`` is set (read at every call), so by
default CuPy arrays take the generic array-API path. The kernels (``kernels.cu``) compile
for sm_75 and sm_90 without warnings (``nox -s cuda-compile``) but have not yet run on a
GPU: no result of theirs has been checked against the conformance suite.

The dispatcher calls ``portable_softmax._backends.cupy.<name>`` for CuPy arrays with the
public signature; a result is the answer, ``NotImplemented`` sends the call to the generic
path. The kernels take a C-contiguous float16, bfloat16, float32 or float64 array with the
slice on its last axis, no ``where``, a plain float temperature (or None) and, for
cross-entropy, integer labels with ``validate`` None or False (invalid labels give NaN, as
the generic path does on CuPy); anything else, every invalid argument included, is
``NotImplemented``, so the generic path raises the documented errors. Nothing synchronises
host and device. CuPy is imported only when a kernel runs.
"""

from __future__ import annotations

from typing import Any

from . import _accept

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


def _forward(op: int, x: Any, axis: object, where: object, temperature: object) -> Any:
    if not _accept.enabled() or where is not None:
        return NotImplemented
    t = _accept.plain_temperature(temperature)
    shape = _accept.rows_of(x, axis)
    if t is None or shape is None:
        return NotImplemented
    from . import _kernels

    return _kernels.forward(x, op, t, *shape, keepdims=False)


def softmax(x: Any, /, *, axis: object = -1, where: Any = None, temperature: Any = None) -> Any:
    """:func:`portable_softmax.softmax` on the kernels, or ``NotImplemented``."""
    return _forward(0, x, axis, where, temperature)


def log_softmax(x: Any, /, *, axis: object = -1, where: Any = None, temperature: Any = None) -> Any:
    """:func:`portable_softmax.log_softmax` on the kernels, or ``NotImplemented``."""
    return _forward(1, x, axis, where, temperature)


def logsumexp(x: Any, /, *, axis: object = -1, where: Any = None, keepdims: bool = False) -> Any:
    """:func:`portable_softmax.logsumexp` on the kernels, or ``NotImplemented``."""
    if not _accept.enabled() or where is not None or not isinstance(keepdims, bool):
        return NotImplemented
    shape = _accept.rows_of(x, axis)
    if shape is None:
        return NotImplemented
    from . import _kernels

    return _kernels.forward(x, 2, 1.0, *shape, keepdims=keepdims)


def _derivative(
    op: int, vector: Any, primal: Any, axis: object, where: object, temperature: object
) -> Any:
    if not _accept.enabled() or where is not None:
        return NotImplemented
    t = _accept.plain_temperature(temperature)
    shape = _accept.rows_of(primal, axis)
    if t is None or shape is None or not _accept.same_layout(primal, vector):
        return NotImplemented
    from . import _kernels

    return _kernels.derivative(primal, vector, op, t, *shape)


def softmax_backward(
    grad: Any, y: Any, /, *, axis: object = -1, where: Any = None, temperature: Any = None
) -> Any:
    """:func:`portable_softmax.softmax_backward` on the kernels, or ``NotImplemented``."""
    return _derivative(0, grad, y, axis, where, temperature)


def softmax_jvp(
    tangent: Any, y: Any, /, *, axis: object = -1, where: Any = None, temperature: Any = None
) -> Any:
    """:func:`portable_softmax.softmax_jvp` on the kernels, or ``NotImplemented``."""
    return _derivative(0, tangent, y, axis, where, temperature)


def log_softmax_backward(
    grad: Any, logp: Any, /, *, axis: object = -1, where: Any = None, temperature: Any = None
) -> Any:
    """:func:`portable_softmax.log_softmax_backward` on the kernels, or ``NotImplemented``."""
    return _derivative(1, grad, logp, axis, where, temperature)


def log_softmax_jvp(
    tangent: Any, logp: Any, /, *, axis: object = -1, where: Any = None, temperature: Any = None
) -> Any:
    """:func:`portable_softmax.log_softmax_jvp` on the kernels, or ``NotImplemented``."""
    return _derivative(2, tangent, logp, axis, where, temperature)


def cross_entropy(
    logits: Any,
    target: Any,
    /,
    *,
    axis: object = -1,
    reduction: str = "mean",
    weight: Any = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    where: Any = None,
    validate: bool | None = None,
) -> Any:
    """:func:`portable_softmax.cross_entropy` on the kernels (integer labels), or
    ``NotImplemented``."""
    if not _accept.enabled():
        return NotImplemented
    call = _accept.xent_call(
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
    if call is None:
        return NotImplemented
    from . import _kernels

    return _kernels.cross_entropy(logits, target, weight, call)


def cross_entropy_backward(
    logits: Any,
    target: Any,
    /,
    *,
    grad: Any = None,
    axis: object = -1,
    reduction: str = "mean",
    weight: Any = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    where: Any = None,
    validate: bool | None = None,
) -> Any:
    """:func:`portable_softmax.cross_entropy_backward` on the kernels (integer labels), or
    ``NotImplemented``."""
    if not _accept.enabled():
        return NotImplemented
    call = _accept.xent_call(
        logits,
        target,
        axis=axis,
        reduction=reduction,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        where=where,
        validate=validate,
        grad=grad,
    )
    if call is None:
        return NotImplemented
    from . import _kernels

    return _kernels.cross_entropy_backward(logits, target, weight, grad, call)
