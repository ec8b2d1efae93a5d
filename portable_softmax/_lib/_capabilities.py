"""What a fast path can take, as named tests on a described call (metadata only, no values).

The registry (``portable_softmax._dispatch``) declares each backend's capabilities as tuples
of these tests, one tuple per function; a backend takes a call when every test of its tuple
holds. Each test's docstring (its first line) is how the README's path table names it, so the
table and the code cannot disagree. A test never raises: the call was validated before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "Capability",
    "c_contiguous",
    "classes_on_last_axis",
    "cuda_floats",
    "float32_or_float64",
    "integer_labels",
    "labels_fit_int64",
    "last_axis",
    "no_mask",
    "no_temperature_array",
    "not_empty",
    "rows_without_copy",
    "temperature_at_most_one",
    "torch_cpu_floats",
    "torch_labels",
    "torch_not_empty",
    "trailing_axes",
    "vector_same_dtype",
    "weight_without_grad",
]

Capability = Callable[[Any], bool]
"""A test on a ``Call`` or ``CrossEntropyCall``."""

# These tests serve NumPy, CuPy and Dask arrays, whose dtypes are NumPy dtypes: their ``char``
# and ``kind`` are C attributes (``name`` is computed in Python, a few microseconds a call).


def float32_or_float64(call: Any) -> bool:
    """float32 or float64"""
    return call.x.dtype.char in ("f", "d")


def cuda_floats(call: Any) -> bool:
    """float16, bfloat16, float32 or float64"""
    dtype = call.x.dtype
    return dtype.char in ("e", "f", "d") or dtype.name == "bfloat16"


def not_empty(call: Any) -> bool:
    """not empty"""
    size: int = call.x.size
    return size != 0


def no_mask(call: Any) -> bool:
    """no `where`"""
    return call.where is None


def no_temperature_array(call: Any) -> bool:
    """no temperature array"""
    t = call.temperature
    return t is None or type(t) is float


def temperature_at_most_one(call: Any) -> bool:
    """temperature at most 1"""
    t = call.temperature
    return t is None or (type(t) is float and t <= 1.0)


def trailing_axes(call: Any) -> bool:
    """reduced over trailing axes (the last, or all)"""
    axes: tuple[int, ...] = call.axes
    ndim: int = call.x.ndim
    if len(axes) == 1:
        return axes[0] == ndim - 1
    return bool(axes) and axes == tuple(range(ndim - len(axes), ndim))


def last_axis(call: Any) -> bool:
    """reduced over the last axis only"""
    axes: tuple[int, ...] = call.axes
    return axes == (call.x.ndim - 1,)


def c_contiguous(call: Any) -> bool:
    """C-contiguous"""
    vector = getattr(call, "vector", None)
    return bool(call.x.flags.c_contiguous) and (vector is None or bool(vector.flags.c_contiguous))


def rows_without_copy(call: Any) -> bool:
    """C-contiguous, or 2-D reduced along its last axis"""
    if call.x.ndim <= 2 and call.axes == (call.x.ndim - 1,):
        return True
    return c_contiguous(call)


def vector_same_dtype(call: Any) -> bool:
    """grad or tangent of the same dtype"""
    return bool(call.vector.dtype == call.x.dtype)


def classes_on_last_axis(call: Any) -> bool:
    """classes on the last axis"""
    axes: tuple[int, ...] = call.axes
    return axes == (call.logits.ndim - 1,)


def integer_labels(call: Any) -> bool:
    """integer labels"""
    return bool(call.hard)


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _ignore_index_fits_int64(call: Any) -> bool:
    return call.ignore_index is None or _INT64_MIN <= call.ignore_index <= _INT64_MAX


def labels_fit_int64(call: Any) -> bool:
    """labels and `ignore_index` that fit int64"""
    if call.hard and call.target.dtype.kind == "u" and call.target.dtype.itemsize == 8:
        return False
    return _ignore_index_fits_int64(call)


# PyTorch's tensors and dtypes (these read only attributes that ``torch.compile`` and
# ``torch.func``'s wrapped tensors answer from metadata).


def torch_cpu_floats(call: Any) -> bool:
    """float32 or float64 on the CPU"""
    x = call.x
    dtype = x.dtype
    return bool(dtype.is_floating_point and dtype.itemsize >= 4 and x.is_cpu)


def torch_not_empty(call: Any) -> bool:
    """not empty"""
    return bool(call.x.numel() != 0)


def torch_labels(call: Any) -> bool:
    """integer labels and `ignore_index` that fit int64"""
    if not call.hard:
        return False
    dtype = call.target.dtype  # integral: validated
    fits = dtype.is_signed or dtype.itemsize < 8
    return fits and _ignore_index_fits_int64(call)


def weight_without_grad(call: Any) -> bool:
    """no `weight` that needs a gradient"""
    weight = call.weight
    return weight is None or not bool(weight.requires_grad)
