"""Fused CUDA kernels behind the public functions, for CuPy arrays. UNVERIFIED.

**Unverified, hence not automatic.** The kernels (``kernels.cu``) compile for sm_75 and
sm_90 without warnings (``nox -s cuda-compile``) and run on the CPU by emulation against the
generic path (``conformance/test_cupy_emulated.py``), but they have never run on a GPU: no
result of theirs from a card has been checked. So the registry
(``portable_softmax._dispatch.CUPY``) keeps them out of ``auto``; CuPy arrays take them only
under the path setting ``cupy`` (``use_path("cupy")``, ``PORTABLE_SOFTMAX_PATH=cupy``).

Each function takes a described call that the registry found within the kernels' reach:
C-contiguous, non-empty float16, bfloat16, float32 or float64 CuPy arrays reduced over the
last axis only, no ``where``, the temperature None or a positive float; for cross-entropy,
integer labels (and ``ignore_index``) that fit int64 with the classes on the last axis, any
``weight``, ``label_smoothing``, reduction and ``grad``. The labels were checked before
dispatch where the ``validate`` rule says to read them (``validate=True`` on CuPy); the
kernels mark invalid samples NaN in any case, as the generic path does. A function never
validates and never raises a user-facing error: where no launch fits the device (a warp size
other than 32, blocks under 128 threads, rows of 2**31 entries or more) it runs the call on
the generic path. Nothing synchronises host and device. CuPy is imported only when a kernel
runs (``_kernels``), never by importing this package.
"""

from __future__ import annotations

import math
from typing import Any

from ... import _generic
from ..._lib._call import FUNCTIONS, Call, CrossEntropyCall

__all__ = [*FUNCTIONS]  # a kernel for every public function


def _rows(x: Any) -> tuple[int, int]:
    """``(rows, n)``: the slices along the last axis (the only one the registry takes)."""
    shape = x.shape
    return math.prod(int(s) for s in shape[:-1]), int(shape[-1])


def _temperature(call: Call) -> float:
    t = call.temperature
    return 1.0 if t is None else float(t)


def _served(call: Call | CrossEntropyCall, result: Any) -> Any:
    """The kernels' result, or the generic path's where no launch fit the device."""
    if result is NotImplemented:
        return getattr(_generic, call.function)(call)
    return result


def _forward(call: Call, op: int) -> Any:
    from . import _kernels

    x = call.x
    out = _kernels.forward(x, op, _temperature(call), *_rows(x), keepdims=call.keepdims)
    return _served(call, out)


def softmax(call: Call) -> Any:
    """:func:`portable_softmax.softmax` on the kernels."""
    return _forward(call, 0)


def log_softmax(call: Call) -> Any:
    """:func:`portable_softmax.log_softmax` on the kernels."""
    return _forward(call, 1)


def logsumexp(call: Call) -> Any:
    """:func:`portable_softmax.logsumexp` on the kernels (``keepdims`` from the call)."""
    return _forward(call, 2)


def _derivative(call: Call, op: int) -> Any:
    from . import _kernels

    primal = call.x
    out = _kernels.derivative(primal, call.vector, op, _temperature(call), *_rows(primal))
    return _served(call, out)


def softmax_backward(call: Call) -> Any:
    """:func:`portable_softmax.softmax_backward` on the kernels."""
    return _derivative(call, 0)


def softmax_jvp(call: Call) -> Any:
    """:func:`portable_softmax.softmax_jvp` on the kernels (the softmax Jacobian is
    symmetric: the backward pass's formula)."""
    return _derivative(call, 0)


def log_softmax_backward(call: Call) -> Any:
    """:func:`portable_softmax.log_softmax_backward` on the kernels."""
    return _derivative(call, 1)


def log_softmax_jvp(call: Call) -> Any:
    """:func:`portable_softmax.log_softmax_jvp` on the kernels."""
    return _derivative(call, 2)


def cross_entropy(call: CrossEntropyCall) -> Any:
    """:func:`portable_softmax.cross_entropy` on the kernels (integer labels)."""
    from . import _kernels

    return _served(call, _kernels.cross_entropy(call))


def cross_entropy_backward(call: CrossEntropyCall) -> Any:
    """:func:`portable_softmax.cross_entropy_backward` on the kernels (integer labels)."""
    from . import _kernels

    return _served(call, _kernels.cross_entropy_backward(call))


def cross_entropy_with_grad(call: CrossEntropyCall) -> Any:
    """:func:`portable_softmax.cross_entropy_with_grad` on the kernels (integer labels).

    For now two launches, the loss kernel's and the gradient kernel's (kernels.cu has no
    kernel that writes both), which share the int64 labels, the weight and the mean's
    denominator: the logits are read twice where one fused pass would read them once.
    """
    from . import _kernels

    return _served(call, _kernels.cross_entropy_with_grad(call))
