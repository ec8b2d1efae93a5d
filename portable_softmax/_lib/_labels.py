"""The one place that reads label values: the cross-entropy labels, checked before dispatch.

SPEC section 2's ``validate`` rule: ``None`` reads the labels on eager CPU arrays (NumPy,
array-api-strict, PyTorch CPU outside ``torch.compile`` and ``torch.func``) and raises a
``ValueError`` naming the first bad one; on GPU, lazy or traced arrays it reads nothing and
the kernels mark invalid samples NaN. ``True`` always reads them (an error on lazy or traced
arrays, whose values cannot be read without computing them); ``False`` never does.

A label is invalid when it is outside ``[0, C)`` (and not ``ignore_index``), or when it
names a class masked by ``where`` in a sample that has some class unmasked.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import array_api_compat

from ._arguments import Array
from ._call import CrossEntropyCall, library_of

__all__ = ["check_labels", "signed_labels"]


def check_labels(call: CrossEntropyCall) -> CrossEntropyCall:
    """Raise on the first invalid label where the ``validate`` rule says to read them;
    return the call, marked ``labels_checked`` when they were read (and all are valid)."""
    if not call.hard or call.validate is False:
        return call
    target = call.target
    if library_of(target) == "numpy":  # eager on the host: read them
        if call.ignore_index is None and call.where is None and _numpy_in_range(call):
            return _checked(call)
    elif call.validate is None and not _is_eager_cpu(target):
        return call
    elif _is_traced(target):
        raise ValueError(
            f"validate=True reads the label values, but target is a {_kind(target)} "
            "(lazy or traced) whose values are not available without computing it; pass "
            "validate=False (invalid samples then give NaN) or check the labels beforehand"
        )
    _check(call)
    return _checked(call)


_CHECKED = CrossEntropyCall._fields.index("labels_checked")


def _checked(call: CrossEntropyCall) -> CrossEntropyCall:
    """The call marked ``labels_checked`` (built directly: ``_replace`` costs a microsecond,
    a visible part of a small call)."""
    return tuple.__new__(CrossEntropyCall, (*call[:_CHECKED], True, *call[_CHECKED + 1 :]))


def _numpy_in_range(call: CrossEntropyCall) -> bool:
    """NumPy integer labels all in ``[0, C)``, by one reduction (the common case, quickly):
    viewed as unsigned, a negative label is huge, so the largest one says it all."""
    target = call.target
    dtype = target.dtype
    if target.size == 0 or dtype.kind not in "iu":
        return False
    unsigned = target
    if dtype.kind == "i":
        if call.classes > (1 << (8 * dtype.itemsize - 1)):
            return False  # a negative label viewed as unsigned could pass for a class
        unsigned = target.view(_unsigned(dtype.itemsize))
    return bool(unsigned.max() < call.classes)


_UNSIGNED: dict[int, Any] = {}


def _unsigned(itemsize: int) -> Any:
    """NumPy's unsigned integer dtype of ``itemsize`` bytes (NumPy is loaded: its arrays
    are here)."""
    dtype = _UNSIGNED.get(itemsize)
    if dtype is None:
        import numpy

        dtype = _UNSIGNED[itemsize] = numpy.dtype(f"u{itemsize}")
    return dtype


def _check(call: CrossEntropyCall) -> None:
    """The general check, in the namespace of the labels (one host read per error)."""
    xp = call.xp
    labels = signed_labels(xp, call.target)
    (axis,) = call.axes
    classes = call.classes
    mask = call.where
    if mask is not None:
        mask = xp.broadcast_to(mask, tuple(call.logits.shape))
    ok = (labels >= 0) & (labels < classes)
    if call.ignore_index is not None:
        ok = ok | (labels == call.ignore_index)
    live = None if mask is None else xp.any(mask, axis=axis)  # all-masked: ignored
    bad = ~ok if live is None else ~ok & live
    _raise_first_bad(xp, call.target, bad, f"outside [0, {classes}) (classes on axis {axis})")
    if mask is None:
        return
    index = xp.arange(classes, dtype=labels.dtype, device=array_api_compat.device(labels))
    shape = tuple(classes if i == axis else 1 for i in range(mask.ndim))
    hit = xp.any(mask & (xp.reshape(index, shape) == xp.expand_dims(labels, axis=axis)), axis=axis)
    if call.ignore_index is not None:
        hit = hit | (labels == call.ignore_index)
    _raise_first_bad(xp, call.target, ~hit & live, "a class masked by where")


def _is_traced(x: Array) -> bool:
    """Arrays whose values cannot be read without computing: Dask arrays, JAX tracers
    (inside jit, grad, vmap), PyTorch tensors under ``torch.compile`` or ``torch.func``.
    (Told by the type's module, not ``array_api_compat``'s cached tests, which Dynamo warns
    about.)"""
    library = library_of(x)
    if library == "dask":
        return True
    if library in ("jax", "jaxlib"):
        import jax

        return isinstance(x, jax.core.Tracer)
    if library == "torch":
        import torch

        if torch.compiler.is_compiling():
            return True
        return bool(torch._C._functorch.is_functorch_wrapped_tensor(x))
    return False


def _is_eager_cpu(x: Array) -> bool:
    """NumPy, array-api-strict and PyTorch CPU arrays outside tracing: a read costs no sync."""
    library = library_of(x)
    if library in ("numpy", "array_api_strict"):
        return True
    return library == "torch" and x.device.type == "cpu" and not _is_traced(x)


def _kind(x: Array) -> str:
    return f"{library_of(x)} {type(x).__name__}"


def _raise_first_bad(xp: ModuleType, labels: Array, bad: Array, what: str) -> None:
    """Raise ValueError naming the first label flagged in ``bad`` (one host read)."""
    flat = xp.reshape(bad, (-1,))
    if not bool(xp.any(flat)):
        return
    first = int(xp.argmax(xp.astype(flat, xp.int8)))
    try:
        value = int(xp.reshape(labels, (-1,))[first])
    except RuntimeError:  # torch cannot read a uint64 above int64's maximum into Python
        value = int(xp.reshape(xp.astype(labels, xp.int64), (-1,))[first]) % 2**64
    index = _unravel(first, tuple(labels.shape))
    raise ValueError(
        f"target holds label {value} at sample {index}, {what}; fix the label, pass "
        f"ignore_index={value} to skip such samples, or validate=False to get NaN for them"
    )


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    index = []
    for n in reversed(shape):
        index.append(flat % n)
        flat //= n
    return tuple(reversed(index))


def signed_labels(xp: ModuleType, labels: Array) -> Any:
    """Labels as the widest signed integer, so comparisons never wrap (uint8 vs -100)."""
    wide = xp.int64
    if array_api_compat.is_jax_namespace(xp):
        import jax

        wide = jax.dtypes.canonicalize_dtype(wide)  # int32 unless x64 is enabled
    signed = labels if labels.dtype == wide else xp.astype(labels, wide)
    if (
        xp.isdtype(labels.dtype, "unsigned integer")
        and xp.iinfo(labels.dtype).max > xp.iinfo(wide).max
    ):
        # Labels above the signed maximum wrapped negative and could pass for ignore_index:
        # no class is that large, so the signed maximum keeps them invalid.
        signed = xp.where(signed < 0, xp.asarray(xp.iinfo(wide).max, dtype=wide), signed)
    return signed
