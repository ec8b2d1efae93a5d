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

A cache that cannot be written (a read-only install, no writable home directory, no
``NUMBA_CACHE_DIR``) must never make a call fail: numba then finds no cache locator and
refuses ``cache=True``, so those kernels compile in memory instead, with one warning per
process that says how to get the cache back.
"""

from __future__ import annotations

import hashlib
import warnings
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
    ``cache=True`` only for closures over :data:`SOURCE_KEY`; where no cache directory can be
    written, the function compiles in memory (see the module docstring)."""
    njit: Any = numba.njit
    options = {
        "parallel": parallel,
        "fastmath": set(fastmath),
        "error_model": "numpy",
        "nogil": True,
    }

    def decorate(function: Callable[..., Any]) -> Any:
        if cache:
            try:
                return njit(cache=True, **options)(function)
            except RuntimeError as error:  # numba: "cannot cache function ...: no locator"
                if "cannot cache" not in str(error):
                    raise
                _warn_uncached(error)
        return njit(**options)(function)

    return decorate


_warned = False


def _warn_uncached(error: RuntimeError) -> None:
    """Warn once per process that the kernels compile in memory (no writable cache)."""
    global _warned
    if _warned:
        return
    _warned = True
    warnings.warn(
        f"portable_softmax: numba found no writable cache directory ({error}); the compiled "
        "kernels are kept in memory only and compile again in every process. Set "
        "NUMBA_CACHE_DIR to a writable directory to cache them on disk.",
        RuntimeWarning,
        stacklevel=4,
    )
