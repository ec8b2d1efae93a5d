"""Which calls the compiled kernels take: cheap tests on metadata only.

The fast case is a NumPy ``ndarray`` (exactly, no subclass) of float32 or float64 in C order,
reduced over its last axis (or, with ``axis=None``, over all of it, which in C order is one
row), without ``where`` and with no temperature or a positive finite Python float. Every
other call, every invalid one included, is left to the generic path, which raises the
documented errors.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["PARALLEL_BYTES", "float_rows", "same_rows", "scalar_temperature"]

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)

PARALLEL_BYTES = 256 * 1024
"""Inputs smaller than this run on one thread: waking the pool costs more than they do."""


def _is_float(dtype: np.dtype[Any]) -> bool:
    return dtype is _F32 or dtype is _F64 or dtype in (_F32, _F64)


def last_axis(axis: object, ndim: int) -> bool | None:
    """True for the last axis, None for all axes, False for anything else."""
    if axis is None:
        return None
    if type(axis) is tuple:
        if len(axis) != 1:
            return False
        axis = axis[0]
    if type(axis) is not int:
        if not isinstance(axis, np.integer):
            return False
        axis = int(axis)
    return axis == -1 or axis == ndim - 1


def float_rows(x: object, axis: object) -> np.ndarray | None:
    """``x`` as a ``(rows, n)`` view when the call is the fast case, else None."""
    if type(x) is not np.ndarray or not _is_float(x.dtype):
        return None
    ndim = x.ndim
    if ndim == 0 or x.size == 0 or not x.flags.c_contiguous:
        return None
    along = last_axis(axis, ndim)
    if along is False:
        return None
    if along is None:
        return x.reshape(1, -1)
    return x.reshape(-1, x.shape[-1])


def same_rows(vector: object, primary: np.ndarray, rows: np.ndarray) -> np.ndarray | None:
    """``vector`` (grad or tangent) as ``rows``' view when it matches ``primary`` exactly."""
    if type(vector) is not np.ndarray or vector.dtype != primary.dtype:
        return None
    if vector.shape != primary.shape or not vector.flags.c_contiguous:
        return None
    return vector.reshape(rows.shape)


def scalar_temperature(temperature: object, dtype: np.dtype[Any]) -> Any:
    """The temperature as a scalar of ``dtype`` (1 for None), or None when not fast."""
    if temperature is None:
        return dtype.type(1.0)
    if type(temperature) is not float or not (math.isfinite(temperature) and temperature > 0):
        return None
    return dtype.type(temperature)
