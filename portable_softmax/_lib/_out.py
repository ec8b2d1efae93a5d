"""``out=``: the checks of a caller's output array, and the delivery of a result into it.

SPEC sections 1-2: ``out`` has the result's shape, dtype, library and device; it is exactly
one of the inputs (the same memory, laid out the same) or shares no memory with any of
them; libraries without writable arrays (JAX, Dask) refuse it, and on PyTorch a call that
autograd would record refuses it, as PyTorch's own ``out=`` functions do.

A kernel that can write straight into ``out`` does so and returns ``out``; every other path
(the portable one, or a kernel that cannot write in place for this alias) returns a fresh
result, and the dispatcher copies it in (:func:`deliver`), which is safe whatever ``out``
aliases: the result is complete before ``out`` is touched.
"""

from __future__ import annotations

import sys
from typing import Any

import array_api_compat

from ._call import library_of

__all__ = ["READ_ONLY_LIBRARIES", "check_out", "deliver", "layout", "numpy_destination"]

READ_ONLY_LIBRARIES = {"jax": "JAX", "jaxlib": "JAX", "dask": "Dask"}
"""Libraries whose arrays cannot be written in place (``library_of`` names), as users know
them."""


def check_out(
    function: str,
    out: Any,
    library: str,
    shape: tuple[int, ...],
    dtype: Any,
    device: Any,
    inputs: dict[str, Any],
) -> str | None:
    """Check ``out`` for a call whose result has ``shape`` and ``dtype`` on ``device``;
    return the name of the input it is (in place), or None when it shares no memory with
    any. ``inputs`` maps the names users know the array arguments by to the arrays."""
    if library in READ_ONLY_LIBRARIES:
        raise TypeError(
            f"{function}() got out=, but {READ_ONLY_LIBRARIES[library]} arrays cannot be "
            "written in place; "
            "leave out unset and use the returned array"
        )
    if library_of(out) != library or not hasattr(out, "shape"):
        raise TypeError(
            f"out must be a {library} array like the input, got {type(out).__module__}."
            f"{type(out).__qualname__}; pass an array of the result's library"
        )
    if tuple(out.shape) != tuple(shape):
        raise ValueError(
            f"out has shape {tuple(out.shape)}, but the result of {function}() has shape "
            f"{tuple(shape)}; pass an array of that shape"
        )
    if out.dtype != dtype:
        raise TypeError(
            f"out has dtype {out.dtype}, but the result of {function}() has dtype {dtype}; "
            f"pass an array of dtype {dtype}"
        )
    if device is not None and array_api_compat.device(out) != device:
        raise ValueError(
            f"out is on device {array_api_compat.device(out)}, but the result of "
            f"{function}() is on {device}; pass an array on that device"
        )
    flags = getattr(out, "flags", None)
    if flags is not None and getattr(flags, "writeable", True) is False:
        raise ValueError("out is read-only; pass a writeable array (or leave out unset)")
    if library == "torch":
        _check_autograd(function, out, inputs)
    return _alias(out, inputs)


def _check_autograd(function: str, out: Any, inputs: dict[str, Any]) -> None:
    """PyTorch's rule: ``out=`` is refused where autograd would record the call."""
    torch = sys.modules["torch"]
    if not torch.is_grad_enabled():
        return
    tensors = (out, *(a for a in inputs.values() if a is not None))
    if any(getattr(a, "requires_grad", False) for a in tensors):
        raise RuntimeError(
            f"{function}(): functions with out=... arguments don't support automatic "
            "differentiation, but one of the arguments requires grad; call it without out= "
            "(or under torch.no_grad())"
        )


def layout(a: Any) -> tuple[int, tuple[int, ...], tuple[int, ...], int] | None:
    """``(address, shape, byte strides, itemsize)`` of a NumPy, CuPy, PyTorch or
    array-api-strict array; None for a library whose memory this package cannot see."""
    module = type(a).__module__.partition(".")[0]
    if module == "array_api_strict":
        a = a._array
        module = "numpy"
    if module == "numpy":
        address = a.__array_interface__["data"][0]
        return address, a.shape, a.strides, a.itemsize
    if module == "cupy":
        return a.data.ptr, a.shape, a.strides, a.itemsize
    if module == "torch":
        size = a.element_size()
        strides = tuple(s * size for s in a.stride())
        return a.data_ptr(), tuple(a.shape), strides, size
    return None


def _extent(found: tuple[int, tuple[int, ...], tuple[int, ...], int]) -> tuple[int, int]:
    """The bytes ``[start, stop)`` an array's elements span (empty for no elements)."""
    address, shape, strides, itemsize = found
    if 0 in shape:
        return address, address
    low = high = address
    for n, stride in zip(shape, strides, strict=True):
        reach = (n - 1) * stride
        low, high = (low + reach, high) if reach < 0 else (low, high + reach)
    return low, high + itemsize


def _alias(out: Any, inputs: dict[str, Any]) -> str | None:
    """The input ``out`` is (same address, shape and strides), None for none; ValueError
    when it shares memory with an input otherwise."""
    numpy: Any = sys.modules.get("numpy")
    plain = numpy is not None and type(out) is numpy.ndarray
    found = None
    mine = None
    for name, array in inputs.items():
        if array is None or not hasattr(array, "shape"):
            continue
        if array is out:
            found = found or name  # (softmax_backward(y, y, out=y): y and grad both)
            continue
        if plain and type(array) is numpy.ndarray and not numpy.may_share_memory(out, array):
            continue  # NumPy's bounds test, a fraction of a microsecond: the common case
        mine = mine or layout(out)
        theirs = layout(array)
        if mine is None or theirs is None:
            continue
        if theirs == mine and array.dtype == out.dtype:
            found = found or name
            continue
        (start, stop), (low, high) = _extent(mine), _extent(theirs)
        if low >= stop or start >= high or _interleaved(numpy, out, array):
            continue
        raise ValueError(
            f"out shares memory with {name} without being that array; pass {name} itself "
            "as out (to write in place) or an array that shares no memory with the inputs"
        )
    return found


def _interleaved(numpy: Any, out: Any, array: Any) -> bool:
    """Two NumPy arrays whose extents overlap but that share no element (``x[:, ::2]`` and
    ``x[:, 1::2]``): NumPy's exact test."""
    if numpy is None or type(out) is not numpy.ndarray or type(array) is not numpy.ndarray:
        return False
    return not numpy.shares_memory(out, array)


def deliver(call: Any, result: Any) -> Any:
    """``result`` of ``call``, written into ``call.out`` unless the path wrote it there
    already (cross_entropy_with_grad's result is ``(loss, gradient)``)."""
    out = call.out
    if call.function == "cross_entropy_with_grad":
        loss, gradient = result
        if gradient is not out:
            out[...] = gradient
        return loss, out
    if result is not out:
        out[...] = result
    return out


def numpy_destination(
    call: Any, shape: tuple[int, ...], in_place: tuple[str, ...]
) -> tuple[Any, bool]:
    """Where a NumPy kernel writes a result of ``shape`` (rows): ``(call.out as shape,
    True)`` when the kernel can write there directly (``out`` is C-contiguous and is no
    input, or one of ``in_place``, the inputs the kernel reads each element of before
    writing it), else ``(a fresh array, False)``, which the dispatcher copies into ``out``."""
    import numpy as np

    out = call.out
    alias = call.out_alias
    if out is not None and out.flags.c_contiguous and (alias is None or alias in in_place):
        return out.reshape(shape), True
    return np.empty(shape, call.x.dtype), False
