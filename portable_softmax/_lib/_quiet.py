"""Silence floating-point warnings where the backend would emit them for documented input.

Only NumPy-backed eager namespaces warn: the limits of the SPEC (``inf - inf`` on +inf slices
before they are replaced, ``log(0)``, overflow of huge spreads to -inf) are intended results,
not accidents. CuPy, PyTorch and JAX never warn; Dask runs NumPy blockwise under this guard.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType

_NUMPY_BACKED = frozenset({"numpy", "array_api_compat.numpy", "array_api_strict"})


@contextlib.contextmanager
def quiet_floating_point(xp: ModuleType) -> Iterator[None]:
    """Ignore NumPy floating-point warnings inside the block, for NumPy-backed namespaces."""
    name = xp.__name__  # (array_api_compat's namespace tests are lru-cached functions,
    if name in _NUMPY_BACKED:  # which torch.compile warns about)
        import numpy as np

        with np.errstate(all="ignore"):
            yield
    else:
        yield
