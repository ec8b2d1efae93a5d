"""Run-time settings every fast path reads: which path serves a call, threads, edge handling.

The path and the edge switch live in context variables, so a ``with`` block changes them for
its own thread (and asyncio task) only; the thread count is process-wide, as in PyTorch.
The defaults come from environment variables, read once:

``PORTABLE_SOFTMAX_PATH``
    ``auto`` (default): the fastest path that takes the call. ``generic``: the portable
    array-API code only. A backend's name (``numba``, ``numpy``, ``cupy``, ``dask``): that
    fast path where it applies, the generic path otherwise (``numpy`` means NumPy's own
    blocked kernels, without numba; ``torch`` the CPU kernels under one autograd node on
    PyTorch tensors).
``PORTABLE_SOFTMAX_NUM_THREADS``
    Threads of the compiled CPU kernels; default: the CPUs this process may run on, as
    PyTorch's default.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["PATHS", "current_path", "get_num_threads", "set_num_threads", "use_path"]

PATHS = ("auto", "generic", "numba", "numpy", "cupy", "dask", "torch")
"""The values ``PORTABLE_SOFTMAX_PATH`` and :func:`use_path` accept."""

ENV_PATH = "PORTABLE_SOFTMAX_PATH"
ENV_NUM_THREADS = "PORTABLE_SOFTMAX_NUM_THREADS"


def _checked_path(value: str, *, source: str) -> str:
    if value not in PATHS:
        raise ValueError(
            f"{source} must be one of {', '.join(PATHS)}, got {value!r}; "
            "use 'auto' for the fastest path or 'generic' for the portable one"
        )
    return value


def _path_from_environment() -> str:
    value = os.environ.get(ENV_PATH, "auto").strip().lower() or "auto"
    return _checked_path(value, source=f"the environment variable {ENV_PATH}")


_DEFAULT_PATH = _path_from_environment()
_PATH: ContextVar[str] = ContextVar("portable_softmax_path", default=_DEFAULT_PATH)
_open_blocks = 0
"""How many :func:`use_path` blocks are open, in any thread: under ``torch.compile`` while
none is, the setting is the default and no context variable is read (Dynamo cannot trace
``ContextVar.get``; it guards on this global)."""

_COUNT_LOCK = threading.Lock()


def current_path() -> str:
    """The path setting in force here: ``auto``, ``generic`` or a backend's name."""
    if _open_blocks == 0 and _compiling():
        return _DEFAULT_PATH
    return _path_in_block()


def _compiling() -> bool:
    """Whether ``torch.compile`` is tracing this call (PyTorch is looked up, not imported)."""
    torch = sys.modules.get("torch")
    return torch is not None and bool(torch.compiler.is_compiling())


def _path_in_block() -> str:
    return _PATH.get()


# What ``torch._dynamo.assume_constant_result`` sets (without importing PyTorch): Dynamo
# calls the function while tracing and keeps its result as a constant of the graph, so a
# call compiled inside a ``use_path`` block traces with that block's setting (and keeps it:
# Dynamo guards on the number of open blocks, not on their settings).
_path_in_block._dynamo_marked_constant = True  # type: ignore[attr-defined]


@contextlib.contextmanager
def use_path(path: str) -> Iterator[None]:
    """Serve the calls inside the block by ``path`` (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> import portable_softmax as ps
    >>> with ps.use_path("generic"):
    ...     ps.softmax(np.array([0.0, 0.0]))
    array([0.5, 0.5])
    """
    global _open_blocks
    token = _PATH.set(_checked_path(path, source="path"))
    with _COUNT_LOCK:
        _open_blocks += 1
    try:
        yield
    finally:
        with _COUNT_LOCK:
            _open_blocks -= 1
        _PATH.reset(token)


def _threads_from_environment() -> int:
    value = os.environ.get(ENV_NUM_THREADS, "").strip()
    if not value:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(
            f"the environment variable {ENV_NUM_THREADS} must be a positive integer, "
            f"got {value!r}; unset it to use every CPU this process may run on"
        )
    return threads


_num_threads = _threads_from_environment()


def get_num_threads() -> int:
    """The number of threads the compiled CPU kernels may use.

    Examples
    --------
    >>> import portable_softmax as ps
    >>> ps.get_num_threads() >= 1
    True
    """
    return _num_threads


def set_num_threads(threads: int) -> None:
    """Let the compiled CPU kernels use ``threads`` threads, in every thread of the process
    (like ``torch.set_num_threads``).

    Examples
    --------
    >>> import portable_softmax as ps
    >>> before = ps.get_num_threads()
    >>> ps.set_num_threads(1)
    >>> ps.get_num_threads()
    1
    >>> ps.set_num_threads(before)
    """
    global _num_threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(
            f"threads must be a positive int, got {threads!r}; "
            "pass 1 for one thread or os.cpu_count() for all"
        )
    _num_threads = threads


_ONE_THREAD: ContextVar[bool] = ContextVar("portable_softmax_one_thread", default=False)


def kernel_threads() -> int:
    """Private: the threads a kernel called here may use (one inside :func:`one_thread`)."""
    return 1 if _ONE_THREAD.get() else _num_threads


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Private: kernels called in this thread (or task) run on one thread.

    The Dask backend runs each block under it: Dask's workers are the parallelism, and a
    multi-threaded kernel in each of them would only oversubscribe the cores.
    """
    token = _ONE_THREAD.set(True)
    try:
        yield
    finally:
        _ONE_THREAD.reset(token)


_EDGES: ContextVar[bool] = ContextVar("portable_softmax_edges", default=True)


def edges_enabled() -> bool:
    """Private: whether fast paths handle the edges (always, except under the switch below)."""
    return _EDGES.get()


@contextlib.contextmanager
def without_edge_handling() -> Iterator[None]:
    """Private, for the benchmark only: fast paths skip their edge handling inside the block,
    so that what it costs can be measured. Results for non-finite input are then wrong."""
    token = _EDGES.set(False)
    try:
        yield
    finally:
        _EDGES.reset(token)
