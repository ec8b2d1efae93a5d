"""Which calls the CuPy kernels take, decided from metadata only (pure Python, no CuPy import).

The kernels take exactly one layout: a C-contiguous CuPy array of float16, bfloat16, float32
or float64 with the slice on its last axis, no ``where``, and a plain float temperature.
Everything else (other axes, masks, strided or empty arrays, integer input, array
temperatures, every invalid argument) is left to the generic path, which also raises the
documented errors; so the checks here only say yes or no, they never raise.
"""

from __future__ import annotations

import math
import operator
import os
import sys
from dataclasses import dataclass
from typing import Any, SupportsIndex

from ._launch import DTYPES

__all__ = [
    "ENV_KERNELS",
    "XentCall",
    "enabled",
    "kernel_dtype",
    "plain_temperature",
    "rows_of",
    "same_layout",
    "xent_call",
]

ENV_KERNELS = "PORTABLE_SOFTMAX_CUPY_KERNELS"
REDUCTIONS = ("mean", "sum", "none")


def enabled() -> bool:
    """Whether the opt-in is set (``PORTABLE_SOFTMAX_CUPY_KERNELS=1``), read at every call so
    that a test or a session can switch it; unset or anything else means off."""
    return os.environ.get(ENV_KERNELS, "").strip() == "1"


def _is_cupy_array(x: object) -> bool:
    # CuPy is only looked up, never imported: a CuPy array exists only if CuPy was imported.
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(x, cupy.ndarray)


def kernel_dtype(x: Any) -> str | None:
    """The name of ``x``'s dtype when the kernels take it, else None."""
    name = getattr(getattr(x, "dtype", None), "name", None)
    return name if name in DTYPES else None


def _last_axis(axis: object, ndim: int, *, tuples: bool) -> bool:
    """Whether ``axis`` names the last axis only (an int, or a 1-tuple where allowed)."""
    if tuples and isinstance(axis, tuple) and len(axis) == 1:
        axis = axis[0]
    if isinstance(axis, bool) or not isinstance(axis, SupportsIndex):
        return False
    return ndim >= 1 and operator.index(axis) in (-1, ndim - 1)


def rows_of(x: Any, axis: object, *, tuples: bool = True) -> tuple[int, int] | None:
    """``(rows, n)`` when ``x`` is a non-empty C-contiguous CuPy array of a kernel dtype and
    ``axis`` is its last axis; None otherwise."""
    if not _is_cupy_array(x) or kernel_dtype(x) is None:
        return None
    if not _last_axis(axis, x.ndim, tuples=tuples) or not x.flags.c_contiguous:
        return None
    n = int(x.shape[-1])
    rows = math.prod(int(s) for s in x.shape[:-1])
    return (rows, n) if rows > 0 and n > 0 else None


def plain_temperature(temperature: object) -> float | None:
    """The temperature as a float (1.0 for None) when it is a positive finite Python float;
    None for anything else (arrays and invalid values go to the generic path)."""
    if temperature is None:
        return 1.0
    if type(temperature) is not float or not math.isfinite(temperature) or temperature <= 0:
        return None
    return temperature


def same_layout(a: Any, b: Any) -> bool:
    """Two arrays the derivative kernels read side by side: same shape, dtype, contiguity."""
    return (
        _is_cupy_array(b)
        and a.shape == b.shape
        and a.dtype == b.dtype
        and bool(b.flags.c_contiguous)
    )


@dataclass(frozen=True)
class XentCall:
    """A cross-entropy call the kernels take (integer labels along the last axis)."""

    rows: int
    classes: int
    reduction: str
    ignore_index: int | None
    label_smoothing: float


def xent_call(
    logits: Any,
    target: Any,
    *,
    axis: object,
    reduction: object,
    weight: Any,
    ignore_index: object,
    label_smoothing: object,
    where: object,
    validate: object,
    grad: Any = None,
) -> XentCall | None:
    """The call when the kernels take it exactly, else None.

    ``validate`` must be None or False: on CuPy both mark invalid labels NaN without a
    synchronisation, which the kernels do; ``True`` reads the labels (the generic path).
    """
    if where is not None or not (validate is None or validate is False):
        return None
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        return None
    if ignore_index is not None and type(ignore_index) is not int:
        return None
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (float, int)):
        return None
    if not 0 <= label_smoothing <= 1:  # NaN fails too
        return None
    shape = rows_of(logits, axis, tuples=False)
    if shape is None or not _is_cupy_array(target):
        return None
    if target.shape != logits.shape[:-1] or target.dtype.kind not in "iu":
        return None
    if target.dtype.name == "uint64":  # above int64's maximum they would wrap to valid labels
        return None
    rows, classes = shape
    if weight is not None and not (
        _is_cupy_array(weight) and weight.shape == (classes,) and weight.dtype.kind == "f"
    ):
        return None
    if grad is not None:
        loss_shape = tuple(logits.shape[:-1]) if reduction == "none" else ()
        if not (_is_cupy_array(grad) and grad.shape == loss_shape and grad.dtype.kind == "f"):
            return None
    index = ignore_index if isinstance(ignore_index, int) else None
    return XentCall(rows, classes, reduction, index, float(label_smoothing))
