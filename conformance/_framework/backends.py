"""Array backends the suite can run on, one small class each.

Each class imports its library only when asked (einops style), so a missing or broken
library never breaks collection: it makes that backend unavailable, with the reason.
Tests see a backend through a few methods: make arrays from NumPy data, bring results
back to NumPy, name dtypes, and forbid computation or host synchronisation during a call.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

DTYPE_NAMES = (
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "complex64",
    "complex128",
)


class BackendUnavailable(RuntimeError):
    """Raised by :meth:`Backend.load` when the backend's library cannot run here."""


class SyncDuringCall(AssertionError):
    """Raised when a lazy graph is computed inside :meth:`Backend.forbid_sync`."""


def _refuse_compute(*args: Any, **kwargs: Any) -> Any:
    """A Dask scheduler that refuses to run: any compute inside the context fails."""
    __tracebackhide__ = True
    raise SyncDuringCall(
        "a Dask graph was computed during the call under test; the function must stay lazy "
        "(no .compute(), no bool()/float()/int() on array values, no Python branching on values)"
    )


class Backend:
    """One array library as the tests see it.

    Attributes
    ----------
    name : str
        Short name used in test ids and in the report (``numpy``, ``torch``, ...).
    is_lazy : bool
        True when arrays are graphs that only compute when asked (Dask).
    is_gpu : bool
        True when arrays live on a GPU.
    compiles_per_shape : bool
        True when the library compiles every new shape and dtype (JAX).
    """

    name: str = "?"
    module_name: str = "?"
    is_lazy: bool = False
    is_gpu: bool = False
    compiles_per_shape: bool = False
    """True when the library compiles each new shape and dtype (JAX): under pytest-xdist
    each test module's tests of it then share one worker, whose compilation caches serve
    them (conftest's ``_compile_group``)."""

    def __init__(self) -> None:
        self._xp: Any = None
        self._loaded = False

    # -- loading -------------------------------------------------------------------
    def load(self) -> None:
        """Import the library and run a tiny computation; raise BackendUnavailable if not."""
        if self._loaded:
            return
        try:
            self._xp = self._import()
            self._smoke_test()
        except BackendUnavailable:
            raise
        except Exception as exc:  # any import or runtime failure means "cannot run here"
            raise BackendUnavailable(f"{type(exc).__name__}: {exc}") from exc
        self._loaded = True

    def _import(self) -> Any:
        raise NotImplementedError

    def context(self) -> contextlib.AbstractContextManager[None]:
        """The mode every test of this backend runs in (entered around each test)."""
        return contextlib.nullcontext()

    def _smoke_test(self) -> None:
        out = self.to_numpy(self.asarray(np.arange(3.0), "float32") + 1)
        if out.tolist() != [1.0, 2.0, 3.0]:
            raise BackendUnavailable(f"arange(3) + 1 gave {out!r}")

    # -- description -----------------------------------------------------------------
    @property
    def xp(self) -> Any:
        """The array-API namespace of the arrays this backend makes."""
        return self._xp

    @property
    def version(self) -> str:
        """Version string of the underlying library."""
        mod = importlib.import_module(self.module_name)
        return str(getattr(mod, "__version__", "?"))

    @property
    def device(self) -> Any:
        """Device of the arrays that :meth:`asarray` makes."""
        import array_api_compat

        return array_api_compat.device(self.asarray(np.zeros(1), "float32"))

    @property
    def default_float(self) -> str:
        """Name of the namespace's default real floating dtype."""
        return "float64"

    def dtype(self, name: str) -> Any:
        """Backend dtype object for a dtype name, or None if the backend lacks it."""
        return getattr(self.xp, name, None)

    def supports(self, name: str) -> bool:
        """Whether the backend has the dtype called ``name``."""
        return self.dtype(name) is not None

    def int_dtype(self) -> str:
        """The widest integer dtype the backend has (JAX without x64 has no int64)."""
        return "int64" if self.supports("int64") else "int32"

    def require_dtype(self, name: str) -> Any:
        """Return the dtype object, or skip the test when the backend lacks it."""
        import pytest

        dt = self.dtype(name)
        if dt is None:
            pytest.skip(f"{self.name} has no {name}{self._missing_dtype_hint(name)}")
        return dt

    def _missing_dtype_hint(self, name: str) -> str:
        return ""

    # -- conversion ------------------------------------------------------------------
    def asarray(self, obj: Any, dtype: str | None = None) -> Any:
        """Make a backend array from NumPy data or nested lists.

        With ``dtype=None`` NumPy's dtype of ``obj`` is kept where the backend has it, else
        narrowed (float64 -> the default float, int64 -> int32, complex128 -> complex64,
        as JAX without x64 does). An explicit dtype the backend lacks is a ValueError.
        """
        arr = np.asarray(obj)
        if dtype is None:
            dtype = arr.dtype.name
            if not self.supports(dtype):
                dtype = _NARROWER.get(dtype, dtype)
        if dtype not in DTYPE_NAMES:
            raise ValueError(f"dtype={dtype!r} is not one of {DTYPE_NAMES}")
        if not self.supports(dtype):
            raise ValueError(f"{self.name} has no {dtype}{self._missing_dtype_hint(dtype)}")
        return self._from_numpy(arr, dtype)

    def _from_numpy(self, arr: np.ndarray, dtype: str) -> Any:
        return self.xp.asarray(_np_cast(arr, dtype), dtype=self.dtype(dtype))

    def to_numpy(self, arr: Any) -> np.ndarray:
        """Copy an array to a NumPy array on the host (bfloat16 becomes float32)."""
        out = np.asarray(arr)
        return _widen_bfloat16(out)

    # -- laziness and synchronisation --------------------------------------------------
    @contextlib.contextmanager
    def forbid_sync(self) -> Iterator[None]:
        """Context in which computing (Dask) or host synchronisation (CuPy) fails."""
        yield

    def describe(self) -> str:
        """One line for the report header."""
        return (
            f"{self.name} {self.version} (device {self.device}, default float {self.default_float})"
        )


_NARROWER = {"float64": "float32", "int64": "int32", "uint64": "uint32", "complex128": "complex64"}


def _np_cast(arr: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "bfloat16":
        import ml_dtypes

        return arr.astype(ml_dtypes.bfloat16)
    return arr.astype(dtype)


def _widen_bfloat16(out: np.ndarray) -> np.ndarray:
    if out.dtype.name == "bfloat16":
        return out.astype(np.float32)
    return out


class NumPyBackend(Backend):
    """NumPy through ``array_api_compat.numpy``."""

    name = "numpy"
    module_name = "numpy"

    def _import(self) -> Any:
        import array_api_compat.numpy as xp

        return xp

    def to_numpy(self, arr: Any) -> np.ndarray:
        return np.array(arr, copy=True)


class ArrayApiStrictBackend(Backend):
    """array-api-strict: the minimal standard namespace, no extras."""

    name = "array_api_strict"
    module_name = "array_api_strict"

    def _import(self) -> Any:
        import array_api_strict as xp

        return xp

    def to_numpy(self, arr: Any) -> np.ndarray:
        return np.from_dlpack(arr).copy()


class TorchBackend(Backend):
    """PyTorch on the CPU through ``array_api_compat.torch``."""

    name = "torch"
    module_name = "torch"

    def _import(self) -> Any:
        import array_api_compat.torch as xp

        return xp

    @property
    def default_float(self) -> str:
        import torch

        return str(torch.get_default_dtype()).removeprefix("torch.")

    def dtype(self, name: str) -> Any:
        import torch

        return getattr(torch, name, None) if name in DTYPE_NAMES else None

    def _from_numpy(self, arr: np.ndarray, dtype: str) -> Any:
        import torch

        if dtype == "bfloat16":
            return torch.from_numpy(arr.astype(np.float32)).to(torch.bfloat16)
        return torch.from_numpy(np.array(arr, dtype=dtype, order="C", copy=True))

    def to_numpy(self, arr: Any) -> np.ndarray:
        import torch

        t = arr.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.numpy().copy()


class JaxBackend(Backend):
    """JAX on its default device; float64 only when x64 was enabled by the user."""

    name = "jax"
    module_name = "jax"
    compiles_per_shape = True

    def _import(self) -> Any:
        import jax.numpy as xp

        return xp

    def _x64(self) -> bool:
        import jax

        return bool(jax.config.jax_enable_x64)

    @property
    def default_float(self) -> str:
        return "float64" if self._x64() else "float32"

    def dtype(self, name: str) -> Any:
        if name in ("float64", "int64", "uint64", "complex128") and not self._x64():
            return None
        return getattr(self.xp, name, None) if name in DTYPE_NAMES else None

    def _missing_dtype_hint(self, name: str) -> str:
        return " without x64 (set JAX_ENABLE_X64=1)" if name.endswith("64") else ""

    def to_numpy(self, arr: Any) -> np.ndarray:
        return _widen_bfloat16(np.array(arr, copy=True))

    @property
    def is_gpu(self) -> bool:  # type: ignore[override]
        import jax

        return jax.default_backend() != "cpu"


class JaxX64Backend(JaxBackend):
    """JAX with 64-bit types enabled (``jax.enable_x64``) around each of its tests.

    What a user gets with ``JAX_ENABLE_X64=1``: float64 and int64 arrays, and 64-bit weak
    types for Python scalars, so float32 inputs must still give float32 results. Run in the
    same process as the other backends (JAX's own tests switch x64 the same way), so that
    one pytest-xdist run keeps both cores busy.
    """

    name = "jax_x64"

    def _x64(self) -> bool:
        return True

    def context(self) -> contextlib.AbstractContextManager[None]:
        import jax

        return jax.enable_x64(True)  # type: ignore[no-any-return]

    def _smoke_test(self) -> None:
        with self.context():
            super()._smoke_test()

    def _missing_dtype_hint(self, name: str) -> str:
        return ""


class DaskBackend(Backend):
    """Dask arrays (over NumPy) through ``array_api_compat.dask.array``."""

    name = "dask"
    module_name = "dask"
    is_lazy = True

    def _import(self) -> Any:
        import array_api_compat.dask.array as xp

        return xp

    def dtype(self, name: str) -> Any:
        # Dask arrays hold NumPy dtypes; the compat namespace lists only the standard ones.
        if name == "bfloat16" or name not in DTYPE_NAMES:
            return None
        return np.dtype(name)

    def _from_numpy(self, arr: np.ndarray, dtype: str) -> Any:
        import dask.array as da

        # Two chunks along the last axis where possible, so reductions really cross chunks.
        data = _np_cast(arr, dtype)
        chunks: Any = "auto"
        if data.ndim >= 1 and data.shape[-1] >= 2:
            chunks = (*data.shape[:-1], (data.shape[-1] + 1) // 2)
        return da.from_array(data, chunks=chunks)

    def to_numpy(self, arr: Any) -> np.ndarray:
        # An explicit scheduler, so that results can be fetched even inside forbid_sync.
        return np.array(arr.compute(scheduler="synchronous"), copy=True)

    @contextlib.contextmanager
    def forbid_sync(self) -> Iterator[None]:
        import dask

        with dask.config.set(scheduler=_refuse_compute):
            yield


class CuPyBackend(Backend):
    """CuPy on the current GPU; available only when a tiny kernel actually runs."""

    name = "cupy"
    module_name = "cupy"
    is_gpu = True

    def _import(self) -> Any:
        import array_api_compat.cupy as xp
        import cupy

        # Import succeeds without a GPU; a kernel launch does not.
        value = cupy.arange(3).sum().item()
        if value != 3:
            raise BackendUnavailable(f"cupy.arange(3).sum() gave {value!r}")
        return xp

    def dtype(self, name: str) -> Any:
        return None if name == "bfloat16" else getattr(self.xp, name, None)

    def to_numpy(self, arr: Any) -> np.ndarray:
        import cupy

        return np.asarray(cupy.asnumpy(arr))

    @contextlib.contextmanager
    def forbid_sync(self) -> Iterator[None]:
        import cupyx

        with cupyx.allow_synchronize(False):
            yield

    def describe(self) -> str:
        import cupy

        dev = cupy.cuda.Device()
        props = cupy.cuda.runtime.getDeviceProperties(dev.id)
        gpu = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        return (
            f"{super().describe()}, GPU {gpu}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}"
        )


class GenericBackend(Backend):
    """Any namespace given with ``--xp``: an import path or ``exec('...; xp = ...')``."""

    is_lazy = False

    def __init__(self, spec: str) -> None:
        super().__init__()
        self.spec = spec
        self.name = "xp"

    def _import(self) -> Any:
        xp = load_namespace(self.spec)
        import array_api_compat

        if array_api_compat.is_dask_namespace(xp):
            self.is_lazy = True
        return xp

    @property
    def version(self) -> str:
        return str(getattr(self.xp, "__version__", getattr(self.xp, "__array_api_version__", "?")))

    @property
    def default_float(self) -> str:
        info = getattr(self.xp, "__array_namespace_info__", None)
        if info is None:
            return "float64"
        return dtype_name(info().default_dtypes()["real floating"])

    def _from_numpy(self, arr: np.ndarray, dtype: str) -> Any:
        data = _np_cast(arr, dtype)
        try:
            return self.xp.asarray(data, dtype=self.dtype(dtype))
        except Exception:  # libraries that do not take NumPy arrays take lists
            return self.xp.asarray(data.tolist(), dtype=self.dtype(dtype))

    def to_numpy(self, arr: Any) -> np.ndarray:
        if hasattr(arr, "compute"):
            arr = arr.compute()
        try:
            return _widen_bfloat16(np.array(arr, copy=True))
        except Exception:
            return _widen_bfloat16(np.from_dlpack(arr).copy())

    def describe(self) -> str:
        return f"--xp {self.spec}: {getattr(self.xp, '__name__', self.xp)} {super().describe()}"


def load_namespace(spec: str) -> Any:
    """Load a namespace from an import path or from ``exec('...; xp = ...')``."""
    spec = spec.strip()
    if spec.startswith("exec(") and spec.endswith(")"):
        import ast

        code = ast.literal_eval(spec[len("exec(") : -1])
        scope: dict[str, Any] = {}
        exec(code, scope)  # the user asked for this code to define the namespace
        if "xp" not in scope:
            raise BackendUnavailable(f"--xp {spec!r}: the code did not assign a variable 'xp'")
        return scope["xp"]
    return importlib.import_module(spec)


def dtype_name(dt: Any) -> str:
    """Short name of a dtype object of any library (``torch.float32`` -> ``float32``)."""
    name = getattr(dt, "name", None)
    if isinstance(name, str) and name:
        return name
    text = str(dt)
    if text.startswith("dtype("):
        text = text[len("dtype(") : -1].strip("'\"")
    return text.rsplit(".", 1)[-1]


REGISTRY: dict[str, Callable[[], Backend]] = {
    "numpy": NumPyBackend,
    "array_api_strict": ArrayApiStrictBackend,
    "torch": TorchBackend,
    "jax": JaxBackend,
    "jax_x64": JaxX64Backend,
    "dask": DaskBackend,
    "cupy": CuPyBackend,
}
