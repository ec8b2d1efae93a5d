"""The one way kernels here are compiled: numba's ``njit`` with this package's options.

Kernel loops get ``contract``, ``afn`` and ``reassoc`` (vectorised sums, fused multiply-adds)
but never ``nnan``/``ninf``, which would let LLVM drop the edge values SPEC section 2
defines, nor ``arcp``, which turns ``(x - m) / T`` into ``(x - m) * (1/T)``, one rounding more
than SPEC section 3's bound allows for large ``|x - m| / T``. ``error_model="numpy"`` keeps
division free of Python's zero checks. ``nogil`` lets threads run kernels side by side (Dask's
threaded scheduler, a user's thread pool): the kernels touch no Python object.

Only the entry points (the kernels, and the few helpers called from Python) are cached on
disk, each built as a closure over its variant (parallel, edges, kind) and over
:data:`SOURCE_KEY`: numba's cache index hashes closure cells, but it checks only the time
stamp of the function's own file, so without the key a kernel would load stale code after an
edit of ``_exp.py`` or ``_reductions.py``. The helpers they call are compiled into them and
not cached separately.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba

__all__ = ["KERNEL_FASTMATH", "SOURCE_KEY", "jit"]

KERNEL_FASTMATH = frozenset({"contract", "afn", "reassoc"})
"""Fast-math flags of the kernel loops (see the module docstring)."""


def _source_key() -> int:
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return int(digest.hexdigest()[:15], 16)  # fits numba's int64 constants


SOURCE_KEY = _source_key()
"""A hash of this backend's sources, for the closures of cached functions (see above)."""


def jit(
    *,
    parallel: bool = False,
    fastmath: frozenset[str] = KERNEL_FASTMATH,
    cache: bool = False,
) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit`` with the package's options; the compiled function is untyped. Pass
    ``cache=True`` only for closures over :data:`SOURCE_KEY`."""
    njit: Any = numba.njit
    decorator: Callable[[Callable[..., Any]], Any] = njit(
        parallel=parallel, fastmath=set(fastmath), error_model="numpy", cache=cache, nogil=True
    )
    return decorator
