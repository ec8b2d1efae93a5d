"""What every timed implementation provides (see ``Impl``), and the CuPy helpers.

An implementation turns host (NumPy) inputs into its own arrays (``convert``), returns the
callable a user would call for one operation (``function``), and turns its outputs back into
NumPy for the correctness check (``to_numpy``). ``enter``/``leave`` run around each timing
sample, outside the timed region (PyTorch's thread count is set there and restored after).
Every implementation allocates a fresh output per call, as users call them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Call = Callable[..., Any]


class Impl:
    """Base class: ``name`` is the row label, ``backend`` the array library it runs on."""

    name = "?"
    backend = "numpy"
    device = "cpu"
    threads: int | None = 1
    prime = False
    """Whether samples need untimed calls first (see ``Entry.prime``)."""
    into_out = False
    """Whether the calls write into a preallocated output (held to the ``np.copyto``
    floor, not the fresh-output one)."""

    def function(self, op: str) -> Call | None:
        """The callable for ``op`` taking the converted inputs, or None when not provided."""
        return None

    def unavailable(self, op: str) -> str | None:
        """Why ``op`` cannot be timed here ("not available: ..."), or None."""
        return None if self.function(op) is not None else "not provided by this peer"

    def convert(self, array: np.ndarray) -> Any:
        return array

    def to_numpy(self, out: Any) -> tuple[np.ndarray, ...]:
        outs = out if isinstance(out, tuple) else (out,)
        return tuple(np.asarray(o) for o in outs)

    def served_by(self, op: str, arrays: tuple[Any, ...]) -> str | None:
        """The kernel that serves ``op`` on ``arrays`` (ours only), for the report."""
        return None

    def enter(self) -> None:
        """Called before each timing sample, outside the timer."""

    def leave(self) -> None:
        """Called after each timing sample, outside the timer."""

    def sync(self) -> None:
        """Wait for queued work (asynchronous backends)."""

    @property
    def key(self) -> str:
        return f"{self.name} [{self.backend}]"


class _HostOrCupy(Impl):
    """Arrays are NumPy on the CPU, CuPy on the GPU (``backend`` says which)."""

    def convert(self, array: np.ndarray) -> Any:
        return _cupy().asarray(array) if self.backend == "cupy" else array

    def to_numpy(self, out: Any) -> tuple[np.ndarray, ...]:
        return _cupy_to_numpy(out) if self.backend == "cupy" else super().to_numpy(out)

    def sync(self) -> None:
        if self.backend == "cupy":
            _cupy().cuda.get_current_stream().synchronize()


def _cupy() -> Any:
    import cupy

    return cupy


def _cupy_to_numpy(out: Any) -> tuple[np.ndarray, ...]:
    outs = out if isinstance(out, tuple) else (out,)
    return tuple(_cupy().asnumpy(o) for o in outs)
