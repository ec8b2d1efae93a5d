"""Checking and normalising the arguments every public function shares.

Everything here looks at metadata only (type, dtype, shape): never at array values, so that
validation costs no host-device synchronisation and traces under JAX ``jit`` and Dask.
"""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, Protocol, TypeVar

import array_api_compat

from ._call import library_of

Array = Any
"""Inside the package: any array that ``array_api_compat.array_namespace`` recognises."""

Axis = int | tuple[int, ...] | None


class ArrayLike(Protocol):
    """What the public functions need of an array, for type checkers: the array API's
    metadata. NumPy, CuPy, PyTorch, JAX, Dask and array-api-strict arrays all have it."""

    @property
    def dtype(self) -> Any: ...

    @property
    def shape(self) -> Any: ...

    @property
    def ndim(self) -> int: ...


ArrayT = TypeVar("ArrayT", bound=ArrayLike)
"""The public functions return arrays of the library (the type) they were given."""

_PRIMARY = ("x", "y", "logp", "grad", "tangent", "logits")
"""Arrays whose masked entries ``where`` can leave out."""


def _plain(function: str, name: str, value: object) -> object:
    """``value``, or its plain ndarray view for an ndarray subclass; a masked array raises.

    A mask must never be silently ignored, and this package reads masks from ``where`` only.
    NumPy is looked up, never imported: a NumPy subclass exists only if NumPy was imported.
    """
    numpy = sys.modules.get("numpy")
    if numpy is None or type(value) is numpy.ndarray or not isinstance(value, numpy.ndarray):
        return value
    if isinstance(value, numpy.ma.MaskedArray):
        if name in _PRIMARY:
            fix = (
                f"pass its data, and its mask as where: np.ma.getdata({name}) with "
                f"where=~np.ma.getmaskarray({name})"
            )
        elif name == "target":
            fix = (
                "give masked labels a value to skip instead, e.g. target.filled(-100) with "
                "ignore_index=-100"
            )
        else:
            fix = f"pass np.ma.getdata({name}) (or {name}.filled(value))"
        raise TypeError(
            f"{name} is a numpy.ma.MaskedArray, whose mask {function} would not see; {fix}"
        )
    return numpy.asarray(value)


def _torch_namespace() -> ModuleType:
    # an import statement, which Dynamo traces (importlib.import_module breaks the graph)
    import array_api_compat.torch as xp

    return xp


_TRACED_LIBRARIES: dict[str, Callable[[], ModuleType]] = {"torch": _torch_namespace}
"""The namespaces of the libraries whose calls ``torch.compile`` traces (PyTorch):
``array_api_compat``'s type tests are ``functools.lru_cache`` functions, which Dynamo warns
about, so calls whose arrays are all of such a library take their namespace from here."""


def _traced_library(named: dict[str, object]) -> ModuleType | None:
    namespace = None
    for value in named.values():
        if value is None:
            continue
        load = _TRACED_LIBRARIES.get(library_of(value))
        found = None if load is None else load()
        if found is None or (namespace is not None and found is not namespace):
            return None
        namespace = found
    return namespace


def namespace_of(function: str, **named: object) -> tuple[ModuleType, dict[str, Any]]:
    """The array namespace shared by the named arrays (``None`` values skipped), and the
    arrays themselves with ndarray subclasses as plain ndarrays.

    Raises
    ------
    TypeError
        If a value is not an array, is a masked array, or the arrays come from different
        libraries.
    """
    known = _traced_library(named)
    if known is not None:
        return known, dict(named)
    arrays = []
    plain: dict[str, Any] = {}
    for name, value in named.items():
        if value is None:
            plain[name] = None
            continue
        value = plain[name] = _plain(function, name, value)
        if not array_api_compat.is_array_api_obj(value):
            raise TypeError(
                f"{name} must be an array (NumPy, CuPy, PyTorch, JAX, Dask, array-api-strict), "
                f"got {type(value).__name__}; convert it first, e.g. numpy.asarray({name})"
            )
        arrays.append(value)
    try:
        xp = array_api_compat.array_namespace(*arrays)
    except TypeError as error:
        kinds = ", ".join(
            f"{name}: {type(value).__module__}.{type(value).__name__}"
            for name, value in named.items()
            if value is not None
        )
        raise TypeError(
            f"all arrays must come from one array library, got {kinds}; "
            "convert them to the library of the first argument"
        ) from error
    return xp, plain


def default_float(xp: ModuleType, x: Array) -> Any:
    """The namespace's default real floating dtype on ``x``'s device."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is not None:
        try:
            return info().default_dtypes(device=array_api_compat.device(x))["real floating"]
        except (TypeError, ValueError, KeyError):  # older namespaces without device support
            pass
    return xp.float64


def floating_dtypes(xp: ModuleType, x: Array, *, name: str) -> tuple[Any, Any]:
    """Return ``(compute_dtype, result_dtype)`` for an input array.

    Real floating dtypes are kept, except that 16-bit floats (float16, bfloat16) are computed
    in float32; integers and bools are promoted to the default floating dtype *before* any
    arithmetic, so that unsigned values cannot wrap around and int64 cannot overflow.
    """
    dtype = x.dtype
    if xp.isdtype(dtype, "complex floating"):
        raise TypeError(
            f"{name} has complex dtype {dtype}; softmax is defined for real input: "
            f"pass the real part ({name}.real) or the magnitude"
        )
    if xp.isdtype(dtype, "real floating"):
        if xp.finfo(dtype).bits < 32:
            return xp.float32, dtype
        return dtype, dtype
    if xp.isdtype(dtype, ("integral", "bool")):
        promoted = default_float(xp, x)
        return promoted, promoted
    raise TypeError(f"{name} has unsupported dtype {dtype}; pass a real floating or integer array")


def normalize_axis(axis: object, ndim: int, *, name: str = "axis") -> tuple[int, ...]:
    """Return the reduced axes as a tuple of distinct non-negative ints.

    ``None`` means every axis; ``()`` means none (each element is its own slice).
    """
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, tuple):
        axes = tuple(_one_axis(a, ndim, name=name, whole=axis) for a in axis)
        if len(set(axes)) != len(axes):
            raise ValueError(f"{name}={axis!r} names an axis twice; pass each axis at most once")
        return axes
    if isinstance(axis, Sequence) and not isinstance(axis, str):
        raise TypeError(
            f"{name} must be an int, a tuple of ints or None, got a "
            f"{type(axis).__name__}; pass tuple({name}) instead"
        )
    if ndim == 0:
        raise ValueError(
            f"{name}={axis!r} is out of range for a 0-d array; pass {name}=None to treat "
            "the single element as the whole slice"
        )
    return (_one_axis(axis, ndim, name=name, whole=axis),)


def _one_axis(axis: object, ndim: int, *, name: str, whole: object) -> int:
    if isinstance(axis, bool):
        raise TypeError(f"{name}={whole!r} holds a bool; pass an int axis")
    try:
        index = operator.index(axis)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"{name}={whole!r} holds a {type(axis).__name__}; axes must be ints "
            "(negative counts from the end), a tuple of ints, or None"
        ) from None
    if not -ndim <= index < ndim:
        raise ValueError(
            f"{name}={whole!r} is out of range for an array of {ndim} dimensions; "
            f"pick axes in [{-ndim}, {ndim - 1}]"
        )
    return index % ndim


def broadcasts_to(shape: tuple[Any, ...], target: tuple[Any, ...]) -> bool:
    """Whether an array of ``shape`` broadcasts to ``target`` without changing ``target``."""
    if len(shape) > len(target):
        return False
    for have, want in zip(reversed(shape), reversed(target), strict=False):
        if have != 1 and have != want:
            return False
    return True


def check_where(xp: ModuleType, where: Array | None, shape: tuple[Any, ...]) -> None:
    """Validate a boolean mask that must broadcast to ``shape``."""
    if where is None:
        return
    if not xp.isdtype(where.dtype, "bool"):
        raise TypeError(
            f"where must be a boolean array, got dtype {where.dtype}; "
            "build it with a comparison, e.g. where=(x > 0), or cast with astype(bool)"
        )
    if not broadcasts_to(tuple(where.shape), shape):
        raise ValueError(
            f"where has shape {tuple(where.shape)}, which does not broadcast to the input's "
            f"shape {shape}; give it the input's shape or size-1 axes"
        )


def check_temperature(
    xp: ModuleType, temperature: object, keep_shape: tuple[Any, ...]
) -> Array | float | None:
    """Validate the temperature; return None (for T = 1), a Python float, or the array.

    A Python number must be positive and finite. An array must broadcast to ``keep_shape``
    (the input's shape with size 1 on every reduced axis); its values are not inspected
    (that would need a synchronisation), so a non-positive or NaN entry yields a NaN slice.
    """
    if temperature is None:
        return None
    if isinstance(temperature, bool):
        raise TypeError("temperature must be a positive finite float, got a bool")
    if isinstance(temperature, (int, float)):
        value = float(temperature)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(
                f"temperature={temperature!r} must be a positive finite float; "
                "use temperature=None (or 1.0) for the plain softmax"
            )
        return None if value == 1.0 else value
    if not array_api_compat.is_array_api_obj(temperature):
        raise TypeError(
            f"temperature must be a positive finite float or an array, got "
            f"{type(temperature).__name__}"
        )
    temperature_array: Array = temperature
    if xp.isdtype(temperature_array.dtype, ("bool", "complex floating")):
        raise TypeError(
            f"temperature has dtype {temperature_array.dtype}; pass a real floating array"
        )
    if not broadcasts_to(tuple(temperature_array.shape), keep_shape):
        raise ValueError(
            f"temperature has shape {tuple(temperature_array.shape)}, which does not broadcast to "
            f"{keep_shape} (the input's shape with size 1 on the reduced axes); "
            "give it size 1 on every reduced axis"
        )
    return temperature_array


def check_same_shape(first: Array, second: Array, *, first_name: str, second_name: str) -> None:
    """Require two arrays to have exactly the same shape."""
    if tuple(first.shape) != tuple(second.shape):
        raise ValueError(
            f"{first_name} has shape {tuple(first.shape)} but {second_name} has shape "
            f"{tuple(second.shape)}; they must have the same shape"
        )
