"""The registry of backends, and the dispatch of a described call to the first that takes it.

Each backend is declared once, here: the array library it serves, the order it is tried in,
the optional library it needs, and what it takes, as one tuple of named capability tests per
function (``_lib._capabilities``). A backend package (``_backends.<name>``) exposes one
kernel per public name, taking the described call; it is imported only when a call it takes
first arrives, so importing this package imports no array library. Whatever no backend takes
runs on the portable path, ``portable_softmax._generic``, which takes every call. A call
with ``out=`` gets its result there: written by the kernel where it can, else copied in
(``_lib._out.deliver``).

The path setting (``PORTABLE_SOFTMAX_PATH``, :func:`portable_softmax.use_path`) selects among
them: ``auto`` tries every automatic backend of the array's library in order, a backend's
name tries that one only, ``generic`` none. CuPy's kernels are not automatic until a GPU run
has verified them: ``use_path("cupy")`` asks for them. Dask is a container, not a kernel: it
serves every Dask array whatever the setting, and the setting picks the kernels its blocks
run on (``generic`` included). The setting is read only for libraries that have backends
(a call on JAX arrays never reads it), in a way ``torch.compile`` traces.

The README's path table is generated from this registry (:func:`path_table`).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from . import _config, _generic
from ._lib import _capabilities as can
from ._lib._call import CROSS_ENTROPY, DERIVATIVES, FORWARD, FUNCTIONS, library_of
from ._lib._out import deliver

__all__ = ["BACKENDS", "Backend", "dispatch", "path_names", "path_table", "serving"]

Tests = tuple[can.Capability, ...]


@dataclass(frozen=True)
class Backend:
    """One backend: where it lives, which arrays it serves and what it takes."""

    name: str
    library: str
    """The array library it serves: the top-level module of the array type."""
    takes: Mapping[str, Tests]
    """Per public function it has a kernel for (and, for the NumPy-array backends, the Dask
    tree's block operations ``row_statistics`` and ``rescale_rows``), the tests a call must
    pass."""
    needs: str | None = None
    """A library the array's own does not bring (numba): used only where importable."""
    automatic: bool = True
    """Tried under the ``auto`` setting."""
    container: bool = False
    """Serves every call of its library whatever the setting (the setting picks its blocks'
    kernels)."""
    summary: str = ""
    """One line for the path table, where the tests alone do not say it."""

    def serves(self, setting: str) -> bool:
        """Whether the path setting lets this backend serve."""
        if self.container:
            return True
        return setting == self.name or (setting == "auto" and self.automatic)

    def accepts(self, call: Any) -> bool:
        """Whether every test of the call's function holds."""
        tests = self.takes.get(call.function)
        if tests is None:
            return False
        for test in tests:  # noqa: SIM110 (a loop: all() over a generator costs more)
            if not test(call):
                return False
        return True

    def load(self) -> ModuleType | None:
        """The kernels' package, or None when the library it needs is not installed (any
        other import error is a bug and propagates)."""
        try:
            return _LOADED[self.name]
        except KeyError:
            pass
        module = None
        # (an imported library is looked up, not searched for: torch.compile traces this
        # on a first call, and it traces neither importlib's search nor import_module)
        needs = self.needs
        if needs is None or needs in sys.modules or importlib.util.find_spec(needs) is not None:
            module = _IMPORTS[self.name]()
        _LOADED[self.name] = module
        return module


_LOADED: dict[str, ModuleType | None] = {}
"""Each backend's package once imported (None: its optional library is missing)."""


# One import statement per backend package: torch.compile traces an import statement on a
# first call (``importlib.import_module`` would break its graph).


def _import_numba() -> ModuleType:
    from ._backends import numba

    return numba


def _import_numpy() -> ModuleType:
    from ._backends import numpy

    return numpy


def _import_cupy() -> ModuleType:
    from ._backends import cupy

    return cupy


def _import_dask() -> ModuleType:
    from ._backends import dask

    return dask


def _import_torch() -> ModuleType:
    from ._backends import torch

    return torch


_IMPORTS: dict[str, Callable[[], ModuleType]] = {
    "numba": _import_numba, "numpy": _import_numpy, "cupy": _import_cupy,
    "dask": _import_dask, "torch": _import_torch,
}  # fmt: skip


def _each(functions: tuple[str, ...], tests: Tests) -> dict[str, Tests]:
    return dict.fromkeys(functions, tests)


_ROWS: Tests = (can.float32_or_float64, can.not_empty, can.no_mask, can.no_temperature_array)
_LABELS: Tests = (
    can.float32_or_float64, can.not_empty, can.no_mask, can.classes_on_last_axis,
    can.labels_fit_int64,
)  # fmt: skip

_CUDA_ROWS: Tests = (
    can.cuda_floats, can.not_empty, can.no_mask, can.no_temperature_array, can.last_axis,
    can.c_contiguous,
)  # fmt: skip

NUMBA = Backend(
    "numba",
    "numpy",
    needs="numba",
    takes={
        **_each(FORWARD, (*_ROWS, can.trailing_axes, can.c_contiguous)),
        **_each(DERIVATIVES, (*_ROWS, can.trailing_axes, can.c_contiguous, can.vector_same_dtype)),
        **_each(CROSS_ENTROPY, (*_LABELS, can.c_contiguous)),
        # the Dask tree's block operations on NumPy rows (not public functions)
        "row_statistics": _ROWS,
        "rescale_rows": (can.float32_or_float64, can.c_contiguous),
    },
    summary="compiled kernels, the `numba` extra",
)
NUMPY = Backend(
    "numpy",
    "numpy",
    takes={
        **_each(FORWARD, (*_ROWS, can.trailing_axes, can.rows_without_copy)),
        **_each(
            ("softmax_backward", "softmax_jvp"),
            (*_ROWS, can.trailing_axes, can.rows_without_copy, can.vector_same_dtype),
        ),
        **_each(CROSS_ENTROPY, (*_LABELS, can.rows_without_copy, can.integer_labels)),
        "row_statistics": (*_ROWS, can.temperature_at_most_one),
        "rescale_rows": (can.float32_or_float64,),
    },
    summary="cache-blocked NumPy kernels",
)
CUPY = Backend(
    "cupy",
    "cupy",
    takes={
        **_each(FORWARD, _CUDA_ROWS),
        # the kernels read grad/tangent as the primal's type
        **_each(DERIVATIVES, (*_CUDA_ROWS, can.vector_same_dtype)),
        **_each(
            CROSS_ENTROPY,
            (
                can.cuda_floats,
                can.not_empty,
                can.no_mask,
                can.classes_on_last_axis,
                can.c_contiguous,
                can.integer_labels,
                can.labels_fit_int64,
            ),
        ),
    },
    automatic=False,
    summary='fused CUDA kernels, only with `use_path("cupy")` until a GPU run verifies them',
)
DASK = Backend(
    "dask",
    "dask",
    takes=_each(FUNCTIONS, ()),
    container=True,
    summary=(
        "a lazy graph: chunks that hold whole slices run each block on its chunk type's "
        "path, chunks that split the reduced axes a tree reduction"
    ),
)

_TORCH: Tests = (can.torch_cpu_floats, can.torch_not_empty, can.no_mask)
TORCH = Backend(
    "torch",
    "torch",
    takes={
        **_each(FORWARD, (*_TORCH, can.no_temperature_array)),
        "cross_entropy": (*_TORCH, can.torch_labels, can.weight_without_grad),
    },
    needs="numpy",  # the kernels work on NumPy views (PyTorch does not require NumPy)
    summary="the CPU kernels above, zero-copy, under one autograd node",
)

BACKENDS: tuple[Backend, ...] = (NUMBA, NUMPY, CUPY, DASK, TORCH)
"""Every backend, per library in the order tried."""

_BY_LIBRARY: dict[str, tuple[Backend, ...]] = {}
for _backend in BACKENDS:
    _BY_LIBRARY[_backend.library] = (*_BY_LIBRARY.get(_backend.library, ()), _backend)


_SERVING: dict[str, dict[str, tuple[tuple[Backend, ModuleType], ...]]] = {}
"""Per library and setting: the backends that may serve, in order, with their packages
(those whose optional library is missing left out), found once."""


def _candidates(library: str, setting: str) -> tuple[tuple[Backend, ModuleType], ...]:
    by_setting = _SERVING.setdefault(library, {})
    found = by_setting.get(setting)
    if found is None:
        pairs = []
        for backend in _BY_LIBRARY.get(library, ()):
            module = backend.load() if backend.serves(setting) else None
            if module is not None:
                pairs.append((backend, module))
        found = by_setting[setting] = tuple(pairs)
    return found


def serving(call: Any, path: str | None = None) -> Backend | None:
    """The backend that serves ``call`` under ``path`` (default: the setting in force), or
    None for the portable path."""
    if call.library not in _BY_LIBRARY:
        return None
    setting = _config.current_path() if path is None else path
    for backend, _ in _candidates(call.library, setting):
        if backend.accepts(call):
            return backend
    return None


def dispatch(
    call: Any, path: str | None = None, fallback: Callable[[Any], Any] | None = None
) -> Any:
    """Run ``call`` on the first backend that takes it (see the module docstring), else on
    the portable path (or ``fallback``, for the Dask tree's internal block operations).
    ``path`` overrides the setting (Dask's blocks pass the caller's)."""
    by_setting = _SERVING.get(call.library)
    if by_setting is not None or call.library in _BY_LIBRARY:
        # the setting is read only where there is a choice
        setting = _config.current_path() if path is None else path
        candidates = None if by_setting is None else by_setting.get(setting)
        if candidates is None:
            candidates = _candidates(call.library, setting)
        for backend, module in candidates:
            if backend.accepts(call):
                result = getattr(module, call.function)(call)
                return result if call.out is None else deliver(call, result)
    if fallback is not None:
        return fallback(call)
    result = getattr(_generic, call.function)(call)
    return result if call.out is None else deliver(call, result)


def path_names(x: Any) -> tuple[str, ...]:
    """The paths an array like ``x`` can take here, in order, ``generic`` last (backends whose
    optional library is missing left out; CuPy's included though not automatic)."""
    names = [b.name for b in _BY_LIBRARY.get(library_of(x), ()) if b.load() is not None]
    return (*names, "generic")


def path_table() -> str:
    """The README's table of paths, from this registry (the README holds it verbatim, and a
    test compares them)."""
    names = {"numpy": "NumPy", "cupy": "CuPy", "dask": "Dask", "torch": "PyTorch"}
    lines = [
        "| arrays | paths, in the order tried | what each takes |",
        "|---|---|---|",
    ]
    for library, backends in _BY_LIBRARY.items():
        order = ", ".join(f"`{b.name}`" for b in backends)
        parts = [f"**{b.name}** ({b.summary}): {_takes(b)}" for b in backends]
        lines.append(f"| {names[library]} | {order}, `generic` | {'<br>'.join(parts)} |")
    lines.append("| JAX, array-api-strict, others | `generic` | every call |")
    return "\n".join(lines)


_GROUPS = {FORWARD: "forward", DERIVATIVES: "derivatives", CROSS_ENTROPY: "cross-entropy"}


def _takes(backend: Backend) -> str:
    """What a backend takes, in words: its functions, the tests they share, then the tests
    of each group of functions (forward, derivatives, cross-entropy) beyond those."""
    groups: dict[Tests, list[str]] = {}
    for function, tests in backend.takes.items():
        if function in FUNCTIONS:
            groups.setdefault(tests, []).append(function)
    every = sum(len(functions) for functions in groups.values()) == len(FUNCTIONS)
    common = [t for t in next(iter(groups)) if all(t in tests for tests in groups)]
    words = ["every function" if every else ", ".join(f for fs in groups.values() for f in fs)]
    words += [_words(test) for test in common]
    for tests, functions in groups.items():
        extra = [_words(test) for test in tests if test not in common]
        if extra:
            label = _GROUPS.get(tuple(functions), ", ".join(functions))
            words.append(f"{label}: {', '.join(extra)}")
    return "; ".join(words)


def _words(test: can.Capability) -> str:
    return (test.__doc__ or test.__name__).strip().splitlines()[0]
