"""The benchmark grid, its inputs, the float64 references and the correctness check.

Three operations are timed, each on the inputs a user would pass:

* ``forward``: ``softmax(x)`` over the last axis;
* ``backward``: ``softmax_backward(g, y)`` with ``y = softmax(x)``;
* ``xent``: ``cross_entropy(logits, labels)`` plus ``cross_entropy_backward(logits, labels)``
  with integer labels and ``reduction="mean"``, i.e. the loss and its gradient.

Every result is compared with a float64 NumPy reference computed from the same (already
rounded) inputs before any timing: a wrong result is reported as a failure, not timed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

OPS = ("forward", "backward", "xent")

CPU_SHAPES: tuple[tuple[int, ...], ...] = (
    (8, 10),
    (256, 1000),
    (100_000, 10),
    (4096, 4096),
    (64, 32768),
    (1_000_000,),
)
"""Small calls, the classifier's logits, narrow rows (10 classes), the big square, long
rows and one long vector."""
GPU_ONLY_SHAPES: tuple[tuple[int, ...], ...] = ((16384, 4096),)
QUICK_SHAPES: tuple[tuple[int, ...], ...] = ((8, 10), (256, 1000), (100_000, 10), (64, 32768))
DTYPES = ("float32", "float64")

_MOVED_ARRAYS = {"forward": 2, "backward": 3, "xent": 2}
"""Full arrays that must cross memory: forward reads x and writes y; backward reads y and g
and writes dx; cross-entropy reads the logits and writes the gradient (labels and the loss
are negligible)."""


@dataclass(frozen=True)
class Case:
    """One timed configuration: an operation on one shape and dtype."""

    op: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of one full array of this shape and dtype."""
        return self.size * np.dtype(self.dtype).itemsize

    @property
    def moved_bytes(self) -> int:
        """Bytes that must move through memory at the least (the copy floor's numerator)."""
        return _MOVED_ARRAYS[self.op] * self.nbytes

    @property
    def label(self) -> str:
        return f"{self.op} {format_shape(self.shape)} {self.dtype}"


def format_shape(shape: tuple[int, ...]) -> str:
    """``(4096, 4096)`` as ``4096x4096``; ``(1000000,)`` as ``1000000``."""
    return "x".join(str(n) for n in shape)


def parse_shape(text: str) -> tuple[int, ...]:
    """``"4096x4096"`` -> ``(4096, 4096)``; ``"1000000"`` or ``"1_000_000"`` -> ``(1000000,)``."""
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(
            f"--sizes entry {text!r} is not a shape; write dimensions joined by 'x', "
            "e.g. 8x10, 4096x4096 or 1000000"
        ) from None
    if not shape or any(n <= 0 for n in shape):
        raise ValueError(f"--sizes entry {text!r} needs positive dimensions, e.g. 256x1000")
    return shape


def make_inputs(case: Case, copy: int) -> tuple[np.ndarray, ...]:
    """The host inputs of ``case`` (copy number ``copy`` gets its own random values)."""
    rng = np.random.default_rng([hash(case.shape) & 0xFFFF, copy])
    x = rng.standard_normal(case.shape, dtype=np.float64) * 3.0
    if case.op == "forward":
        return (x.astype(case.dtype),)
    if case.op == "backward":
        y = _softmax64(x).astype(case.dtype)
        g = rng.standard_normal(case.shape).astype(case.dtype)
        return (g, y)
    classes = case.shape[-1]
    labels = rng.integers(0, classes, size=case.shape[:-1], dtype=np.int64)
    return (x.astype(case.dtype), labels)


def _softmax64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out


def reference(case: Case, inputs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """The float64 NumPy result of ``case`` on ``inputs`` (written out, not our code)."""
    if case.op == "forward":
        return (_softmax64(inputs[0]),)
    if case.op == "backward":
        g, y = (a.astype(np.float64) for a in inputs)
        return (y * (g - (g * y).sum(axis=-1, keepdims=True)),)
    logits, labels = inputs
    p = _softmax64(logits)
    picked = np.take_along_axis(np.log(p), labels[..., None], axis=-1)
    samples = max(1, labels.size)
    loss = np.asarray(-picked.sum() / samples)
    onehot = np.arange(case.shape[-1]) == labels[..., None]
    return (loss, (p - onehot) / samples)


def _scales(
    case: Case, inputs: tuple[np.ndarray, ...], want: tuple[np.ndarray, ...]
) -> list[np.ndarray]:
    """Per output, the magnitude that rounding errors scale with (SPEC section 3's shapes)."""
    if case.op == "backward":
        g, y = (np.abs(a.astype(np.float64)) for a in inputs)
        return [np.abs(want[0]) + y * (g + (g * y).sum(axis=-1, keepdims=True))]
    scales = []
    for w in want:
        peak = float(np.max(np.abs(w))) if w.size else 0.0
        scales.append(np.abs(w) + (peak if w.ndim == 0 else peak / case.shape[-1]))
    return scales


def check(
    case: Case,
    got: tuple[np.ndarray, ...],
    want: tuple[np.ndarray, ...],
    inputs: tuple[np.ndarray, ...],
) -> str | None:
    """None when ``got`` matches the reference loosely, else what is wrong.

    Loose on purpose (1e-4 relative in float32, 1e-9 in float64, of a per-entry scale): this
    catches wrong results, not ulps; the conformance suite checks accuracy.
    """
    tol = 1e-4 if case.dtype == "float32" else 1e-9
    if len(got) != len(want):
        return f"returned {len(got)} arrays, expected {len(want)}"
    for index, (g, w, scale) in enumerate(zip(got, want, _scales(case, inputs, want), strict=True)):
        g = np.asarray(g)
        if g.shape != w.shape:
            return f"output {index} has shape {g.shape}, expected {w.shape}"
        err = np.abs(g.astype(np.float64) - w)
        limit = tol * scale + np.finfo(np.float64).tiny
        if not np.all(err <= limit):
            where = int(np.argmax(err - limit))
            return (
                f"output {index} differs from the float64 reference: "
                f"max |err| = {float(np.max(err)):.3g} at flat index {where} "
                f"(tolerance {tol:g} relative)"
            )
    return None
