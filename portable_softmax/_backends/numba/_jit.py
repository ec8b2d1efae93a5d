"""The one way kernels here are compiled: numba's ``njit`` with this package's options.

Kernel loops get ``contract``, ``afn`` and ``reassoc`` (vectorised sums, fused multiply-adds)
but never ``nnan``/``ninf``, which would let LLVM drop the edge values SPEC section 2
defines, nor ``arcp``, which turns ``(x - m) / T`` into ``(x - m) * (1/T)``, one rounding more
than SPEC section 3's bound allows for large ``|x - m| / T``. ``error_model="numpy"`` keeps
division free of Python's zero checks. Compilations are cached on disk (``cache=True``); the
variants built from one closure (parallel or not, edges or not) are told apart by numba's
cache through their closure cells, which its index key hashes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba

__all__ = ["KERNEL_FASTMATH", "jit"]

KERNEL_FASTMATH = frozenset({"contract", "afn", "reassoc"})
"""Fast-math flags of the kernel loops (see the module docstring)."""


def jit(
    *, parallel: bool = False, fastmath: frozenset[str] = KERNEL_FASTMATH
) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit`` with the package's options; the compiled function is untyped."""
    njit: Any = numba.njit
    decorator: Callable[[Callable[..., Any]], Any] = njit(
        parallel=parallel, fastmath=set(fastmath), error_model="numpy", cache=True
    )
    return decorator
