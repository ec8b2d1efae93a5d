"""Choose, per call, the implementation that serves it: a backend's fast path or the generic one.

Each backend's fast paths live in one package, ``portable_softmax._backends.<name>``, that
exposes the public functions with the public signatures and returns ``NotImplemented`` for
any call it does not take (every invalid call included, so that the generic path raises the
documented error). Which backends may serve an array depends only on the array's library
(the top-level module of its type) and on the path setting (``PORTABLE_SOFTMAX_PATH``,
:func:`portable_softmax.use_path`); that choice is cached per (type, setting), and a backend
package, with the library it needs (NumPy, numba, CuPy, Dask), is imported only when an array
of that library first arrives. The generic path serves whatever no fast path takes.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable
from types import ModuleType
from typing import Any

from . import _config

__all__ = ["dispatch", "fast_path_names", "fast_paths"]

FAST_PATHS: dict[str, tuple[str, ...]] = {
    "numpy": ("numba", "numpy"),
}
"""Per array library, its backends' fast paths, tried in this order (fastest first)."""

OPTIONAL: dict[str, str] = {"numba": "numba"}
"""Fast paths that need a library the array's own does not bring: used only if importable."""


@functools.cache
def _backend(name: str) -> ModuleType | None:
    """The backend package ``name``, or None when the library it needs is not installed.

    Only a missing optional library makes a backend unavailable; any other import error is a
    bug and propagates.
    """
    needed = OPTIONAL.get(name)
    if needed is not None and importlib.util.find_spec(needed) is None:
        return None
    return importlib.import_module(f"portable_softmax._backends.{name}")


_CHOSEN: dict[tuple[type, str], tuple[ModuleType, ...]] = {}
"""The fast paths per (array type, path setting), filled on first use."""


def _paths_for(array_type: type, setting: str) -> tuple[ModuleType, ...]:
    try:
        return _CHOSEN[array_type, setting]
    except KeyError:
        pass
    names: tuple[str, ...] = ()
    if setting != "generic":
        library = array_type.__module__.partition(".")[0]
        names = FAST_PATHS.get(library, ())
    if setting not in ("auto", "generic"):
        names = tuple(name for name in names if name == setting)
    chosen = tuple(module for module in map(_backend, names) if module is not None)
    _CHOSEN[array_type, setting] = chosen
    return chosen


def fast_paths(x: Any) -> tuple[ModuleType, ...]:
    """The fast paths that may serve a call whose first array is ``x``, in the order tried."""
    return _paths_for(type(x), _config.current_path())


def fast_path_names(x: Any) -> tuple[str, ...]:
    """Names of the fast paths available for ``x``'s library here, whatever the setting."""
    return tuple(module.__name__.rpartition(".")[2] for module in _paths_for(type(x), "auto"))


def dispatch(name: str, generic: Callable[..., Any], *arrays: Any, **options: Any) -> Any:
    """``name(*arrays, **options)`` on the first fast path that takes it, else ``generic``."""
    for backend in _paths_for(type(arrays[0]), _config.current_path()):
        out = getattr(backend, name)(*arrays, **options)
        if out is not NotImplemented:
            return out
    return generic(*arrays, **options)
