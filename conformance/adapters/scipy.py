"""SciPy's ``scipy.special.softmax``, ``log_softmax`` and ``logsumexp`` as an implementation.

SciPy takes NumPy arrays; other namespaces only when ``SCIPY_ARRAY_API=1`` was set before
SciPy was imported (its array-API support). No ``where``, no temperature, no derivatives,
no cross-entropy. SciPy's default ``axis=None`` is replaced by our ``-1``.
"""

from __future__ import annotations

import os
from typing import Any

import array_api_compat

__conformance_name__ = "scipy"
__conformance_conventions__ = {
    "nan_for_inf_rows": "NaN in slices holding +inf or no finite entry",
    "accepts_lists": "lists and Python scalars converted with numpy.asarray",
    "error_on_empty_axis": "ValueError for a zero-length axis (no identity for maximum)",
    "own_validation_errors": "NumPy's own exceptions and messages for bad input",
}


def __conformance_accepts__(backend: Any) -> str | None:
    if array_api_compat.is_numpy_namespace(backend.xp):
        return None
    if os.environ.get("SCIPY_ARRAY_API") == "1":
        return None
    return "scipy.special takes NumPy arrays only unless SCIPY_ARRAY_API=1 is set"


def softmax(x: Any, /, *, axis: Any = -1) -> Any:
    """``scipy.special.softmax(x, axis=axis)``."""
    from scipy import special

    return special.softmax(x, axis=axis)


def log_softmax(x: Any, /, *, axis: Any = -1) -> Any:
    """``scipy.special.log_softmax(x, axis=axis)``."""
    from scipy import special

    return special.log_softmax(x, axis=axis)


def logsumexp(x: Any, /, *, axis: Any = -1, keepdims: bool = False) -> Any:
    """``scipy.special.logsumexp(x, axis=axis, keepdims=keepdims)``."""
    from scipy import special

    return special.logsumexp(x, axis=axis, keepdims=keepdims)
