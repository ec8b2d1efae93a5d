"""A stand-in ``cupy`` on NumPy whose RawModule launches the emulated kernels (emulate.cpp).

Enough of CuPy for the CuPy backend (``portable_softmax._backends.cupy`` and its
``_kernels``) and ``benchmarks.gpu_check`` to run unchanged on the CPU: arrays are NumPy
arrays with CuPy's ``.data.ptr`` and ``.device``; ``RawModule.get_function(name)`` returns a
launcher that maps the name expression and CuPy-style arguments onto the emulator's C entry
points. So the host glue (the call's fields to kernel arguments, argument order and types,
shared-memory opt-in, the cross-entropy reductions) runs as written, against the kernels' own
code; only the GPU itself is missing.

The public functions cannot take these arrays for CuPy's (they are NumPy arrays to
``array_api_compat``, and the validation views them as plain ndarrays): :func:`cupy_calls`
turns the described calls of ``gpu_check.described`` into the calls the registry would
describe for CuPy arrays of the same memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

CODES = {"float": 0, "double": 1, "__half": 2, "__nv_bfloat16": 3}
VARIANTS = {"warp": 0, "block": 1, "online": 2}
ATTRIBUTES = {
    "MultiProcessorCount": 1,
    "MaxThreadsPerBlock": 128,
    "MaxSharedMemoryPerBlock": 48 * 1024,
    "MaxSharedMemoryPerBlockOptin": 227 * 1024,
    "WarpSize": 32,
}


class _Pointer:
    def __init__(self, ptr: int) -> None:
        self.ptr = ptr


class _Device:
    id = 0
    attributes = ATTRIBUTES

    def __init__(self, device_id: int = 0) -> None:
        self.id = device_id

    def __enter__(self) -> _Device:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class ndarray(np.ndarray):  # CuPy's name
    """A NumPy array that answers CuPy's ``.data.ptr`` and ``.device``."""

    @property
    def data(self) -> _Pointer:  # type: ignore[override]
        return _Pointer(self.ctypes.data)

    @property
    def device(self) -> _Device:  # type: ignore[override]
        return _Device()


def _wrap(a: Any) -> Any:
    return np.asarray(a).view(ndarray)


def _arg(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ctypes.c_void_p(value.ctypes.data)
    if isinstance(value, (np.float32, np.float64)):
        return ctypes.c_double(float(value))
    if isinstance(value, np.int64):
        return ctypes.c_longlong(int(value))
    if isinstance(value, np.int32):
        return ctypes.c_int(int(value))
    raise TypeError(f"a kernel argument of type {type(value).__name__}: CuPy would refuse it")


class _Function:
    def __init__(self, lib: Any, name: str, calls: list[str]) -> None:
        self.lib, self.name, self.calls = lib, name, calls
        self.max_dynamic_shared_size_bytes = 48 * 1024

    def __call__(
        self, grid: tuple[int], block: tuple[int], args: tuple[Any, ...], shared_mem: int = 0
    ) -> None:
        if shared_mem > self.max_dynamic_shared_size_bytes:
            raise RuntimeError(f"{self.name}: {shared_mem} bytes of shared memory, not opted in")
        if block[0] > ATTRIBUTES["MaxThreadsPerBlock"]:
            raise RuntimeError(f"{self.name}: a block of {block[0]} threads")
        self.calls.append(self.name)
        launch = (ctypes.c_uint(grid[0]), ctypes.c_uint(block[0]))
        found = re.fullmatch(r"ps_(\w+)_(warp|block|online)<([\w]+), (\d)>", self.name)
        if found is None:
            ctype = re.fullmatch(r"ps_xent_denominator<(\w+)>", self.name).group(1)  # type: ignore[union-attr]
            self.lib.ps_emu_denominator(CODES[ctype], *map(_arg, args), *launch)
            return
        family, variant, ctype, op = found.groups()
        entry = getattr(self.lib, f"ps_emu_{family}")
        entry(CODES[ctype], int(op), VARIANTS[variant], *map(_arg, args), *launch)


class _RawModule:
    def __init__(self, lib: Any, calls: list[str], *, code: str, options: Any,
                 name_expressions: list[str]) -> None:  # fmt: skip
        assert "#include <cuda_bf16.h>" in code
        self.lib, self.calls, self.names = lib, calls, set(name_expressions)

    def get_function(self, name: str) -> _Function:
        if name not in self.names:
            raise KeyError(f"{name} was not among the name expressions")
        return _Function(self.lib, name, self.calls)


def module(lib: Any) -> tuple[types.ModuleType, list[str]]:
    """The stand-in ``cupy`` launching through ``lib``, and the list of launched kernels."""
    calls: list[str] = []
    cp = types.ModuleType("cupy")
    cp.ndarray = ndarray  # type: ignore[attr-defined]
    for name in ("float16", "float32", "float64", "int64", "isnan", "log"):
        setattr(cp, name, getattr(np, name))
    cp.isnan = lambda a: _wrap(np.isnan(a))  # type: ignore[attr-defined]
    cp.log = lambda a: _wrap(np.log(a))  # type: ignore[attr-defined]
    cp.where = lambda c, a, b: _wrap(np.where(c, a, b))  # type: ignore[attr-defined]
    cp.asarray = _wrap  # type: ignore[attr-defined]
    cp.asnumpy = lambda a: np.array(a)  # type: ignore[attr-defined]
    cp.empty = lambda shape, dtype=np.float64: _wrap(np.empty(shape, dtype))  # type: ignore[attr-defined]
    cp.zeros = lambda shape, dtype=np.float64: _wrap(np.zeros(shape, dtype))  # type: ignore[attr-defined]
    cp.ones = lambda shape, dtype=np.float64: _wrap(np.ones(shape, dtype))  # type: ignore[attr-defined]
    cp.empty_like = lambda a: _wrap(np.empty_like(a))  # type: ignore[attr-defined]
    cp.ascontiguousarray = lambda a, dtype=None: _wrap(np.ascontiguousarray(a, dtype))  # type: ignore[attr-defined]
    cp.RawModule = lambda **kw: _RawModule(lib, calls, **kw)  # type: ignore[attr-defined]
    cp.cuda = types.SimpleNamespace(Device=_Device)  # type: ignore[attr-defined]
    return cp, calls


_ARRAY_FIELDS = ("x", "vector", "where", "logits", "target", "weight", "grad")


def cupy_call(call: Any) -> Any:
    """``call`` (described from NumPy views) as it would be described for CuPy arrays: the
    library ``cupy``, each array the stand-in's view of the same memory."""
    arrays = {
        name: _wrap(getattr(call, name))
        for name in _ARRAY_FIELDS
        if name in call._fields and isinstance(getattr(call, name), np.ndarray)
    }
    return call._replace(library="cupy", **arrays)


def cupy_calls(described: Callable[..., Any]) -> Callable[..., Any]:
    """``gpu_check.described`` whose calls are :func:`cupy_call`'s."""

    def describe(*args: Any, **kwargs: Any) -> Any:
        return cupy_call(described(*args, **kwargs))

    return describe


@contextlib.contextmanager
def installed(lib: Any, monkeypatch: Any) -> Iterator[list[str]]:
    """``cupy`` replaced by the stand-in (and the kernels' caches emptied) inside the block."""
    cp, calls = module(lib)
    monkeypatch.setitem(sys.modules, "cupy", cp)
    from portable_softmax._backends.cupy import _kernels  # imports cupy: the stand-in

    monkeypatch.setattr(_kernels, "cupy", cp)
    for cached in (_kernels._module, _kernels._function, _kernels.properties):
        cached.cache_clear()
    _kernels._opted_in.clear()
    try:
        yield calls
    finally:
        for cached in (_kernels._module, _kernels._function, _kernels.properties):
            cached.cache_clear()
        _kernels._opted_in.clear()
