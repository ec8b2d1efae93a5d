"""The description of a validated call: what every path receives instead of the user's arguments.

A public function checks its arguments once (``_lib._describe``) and hands one of these
immutable records to the dispatcher; the backends read what they need from it (and decide
whether they take the call through ``_lib._capabilities``), so none of them re-validates.
The arrays are the user's own (an ``ndarray`` subclass already viewed as a plain ndarray),
not yet cast; the options are normalised: reduced axes as a tuple of distinct non-negative
ints, a temperature of 1 as None, the class count, the loss's shape.

They are named tuples, not dataclasses: a small call builds one per call, and a named tuple
costs a fraction of a frozen dataclass's ``__init__``.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, NamedTuple

__all__ = [
    "CROSS_ENTROPY",
    "DERIVATIVES",
    "FORWARD",
    "FUNCTIONS",
    "Call",
    "CrossEntropyCall",
    "library_of",
]

FORWARD = ("softmax", "log_softmax", "logsumexp")
DERIVATIVES = ("softmax_backward", "softmax_jvp", "log_softmax_backward", "log_softmax_jvp")
CROSS_ENTROPY = ("cross_entropy", "cross_entropy_backward", "cross_entropy_with_grad")
FUNCTIONS = (*FORWARD, *DERIVATIVES, *CROSS_ENTROPY)
"""Every public function a path may serve: a backend package exposes a kernel under each name
it takes, and the portable path (``_generic``) one under every name."""


def library_of(x: object) -> str:
    """The array library of ``x``: the top-level module of its type (``numpy``, ``torch``,
    ``dask``...), the key the registry serves by (no ``array_api_compat`` test: those are
    lru-cached functions, which ``torch.compile`` warns about)."""
    return type(x).__module__.partition(".")[0]


class Call(NamedTuple):
    """A call of softmax, log_softmax, logsumexp or one of their derivatives."""

    function: str
    """The public function's name (one of :data:`FORWARD` or :data:`DERIVATIVES`)."""
    xp: ModuleType
    """The arrays' namespace (``array_api_compat``'s wrapper where it has one)."""
    library: str
    """The top-level module of the array type: ``numpy``, ``cupy``, ``dask``, ``torch``..."""
    x: Any
    """The primary array: ``x``, or ``y`` / ``logp`` for the derivatives."""
    vector: Any
    """``grad`` or ``tangent`` for the derivatives (the primary's shape), else None."""
    axes: tuple[int, ...]
    """Reduced axes, distinct and non-negative; ``()`` makes every element its own slice."""
    where: Any
    """A boolean mask that broadcasts to ``x``, or None."""
    temperature: Any
    """None for T = 1, a positive finite Python float, or a real array (not yet cast)."""
    keepdims: bool
    """logsumexp only: keep the reduced axes with length 1."""
    compute_dtype: Any
    """The dtype the work is done in (float32 for 16-bit floats)."""
    result_dtype: Any
    """The dtype of the result."""
    out: Any = None
    """The caller's output array (checked: the result's shape, dtype and device), or None."""
    out_alias: str | None = None
    """The name of the input ``out`` is (``"x"`` or ``"vector"``; in place), or None when
    it shares no memory with any input."""

    def rows(self, a: Any) -> Any:
        """``a`` (``x`` or ``vector``) as ``(rows, n)``, the reduced axes flattened into ``n``:
        for calls reduced over trailing axes, of arrays that reshape so without a copy."""
        k = len(self.axes)
        if a.ndim == 2 and k == 1:
            return a
        return a.reshape(-1, math.prod(a.shape[a.ndim - k :]))

    def reduced_shape(self) -> tuple[int, ...]:
        """The shape of a reduction of ``x`` (logsumexp): the reduced axes with length 1
        under ``keepdims``, else left out."""
        shape = self.x.shape
        if self.keepdims:
            return tuple(1 if i in self.axes else n for i, n in enumerate(shape))
        return tuple(n for i, n in enumerate(shape) if i not in self.axes)


class CrossEntropyCall(NamedTuple):
    """A call of cross_entropy, cross_entropy_backward or cross_entropy_with_grad."""

    function: str
    """The public function's name (one of :data:`CROSS_ENTROPY`)."""
    xp: ModuleType
    library: str
    logits: Any
    target: Any
    """Integer labels (``hard``) or probabilities of the logits' shape, as given."""
    weight: Any
    """One weight per class, shape ``(classes,)``, or None."""
    grad: Any
    """The loss's shape (None: ones); None for ``cross_entropy``."""
    where: Any
    axes: tuple[int, ...]
    """The class axis (axes, for probabilities), distinct and non-negative, never empty
    unless the logits are 0-d."""
    hard: bool
    classes: int
    """The number of classes: the length of the class axis (the product, for several)."""
    reduction: str
    ignore_index: int | None
    smoothing: float
    validate: bool | None
    labels_checked: bool
    """The labels were read before dispatch and each is a class index or ``ignore_index``
    (set by ``_lib._targets.check_labels``); otherwise invalid samples are marked NaN."""
    loss_shape: tuple[int, ...]
    """Per-sample for ``"none"``, ``()`` otherwise."""
    compute_dtype: Any
    result_dtype: Any
    out: Any = None
    """The gradient's output array (cross_entropy_backward, cross_entropy_with_grad)."""
    out_alias: str | None = None
    """``"logits"`` or ``"target"`` when ``out`` is that input (in place), else None."""

    @property
    def x(self) -> Any:
        """The logits, under the name the shared capability tests use."""
        return self.logits
