"""Per-row statistics for a chunk of a Dask tree: ``(m, s, e)`` in one compiled pass.

A chunk that splits the class axis holds row pieces; the tree merges, per row, the maximum
``m`` and ``s = sum(exp((x - m)/T))`` of every piece (``_backends/dask/_tree.py``). This is
that chunk step on numba's exponential, on one thread (Dask's workers are the parallelism):
the same max, blocked exponentials and compensated sum as the forward kernels, with the
exponentials ``e`` kept for softmax's rescaling pass. Rows with a NaN or without a finite
maximum are left to the caller's general statistics, which settle the SPEC section 2 edges.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._eligibility import scalar_temperature
from ._jit import SOURCE_KEY, jit
from ._reductions import exp_sum, row_max

__all__ = ["row_statistics"]


def _build(keep: bool) -> Any:
    """The kernel ``(x, e, m, s, t)``; ``keep`` (a closure constant) writes ``e``."""

    key = SOURCE_KEY

    @jit(cache=True)
    def kernel(x: Any, e: Any, m_out: Any, s_out: Any, t: Any) -> None:
        for i in range(x.shape[0]):
            xi = x[i]
            m = row_max(xi)
            m_out[i, 0] = m
            if m - m != 0:  # NaN, +inf or -inf: the caller's general statistics
                return
            s_out[i, 0] = exp_sum(xi, e[i], m, t, keep)
        if key:  # closure cells: numba's cache keys the variants apart
            return

    return kernel


_KERNELS: dict[bool, Any] = {}


def row_statistics(
    rows: np.ndarray, temperature: float | None, *, keep: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """``(m, s, e)`` of the float32/float64 ``rows``, ``m`` and ``s`` as
    ``(rows, 1)``; ``e`` only with ``keep``. None when some row holds a NaN or has no finite
    maximum, or
    when the call is not the kernel's (another dtype or layout, an invalid temperature).

    Examples
    --------
    >>> import numpy as np
    >>> m, s, e = row_statistics(np.array([[0.0, 0.0], [1.0, 3.0]]), None, keep=True)
    >>> m.ravel().tolist(), s.ravel().round(4).tolist(), e[1].round(4).tolist()
    ([0.0, 3.0], [2.0, 1.1353], [0.1353, 1.0])
    """
    if rows.ndim != 2 or rows.dtype not in (np.float32, np.float64) or rows.size == 0:
        return None
    # a chunk cut from a larger array (dask.array.from_array) is a strided view: one copy
    # costs less than a kernel compiled for any layout (its loops do not vectorise)
    rows = np.ascontiguousarray(rows)
    t = scalar_temperature(temperature, rows.dtype)
    if t is None:
        return None
    count = rows.shape[0]
    e = np.empty(rows.shape if keep else (count, 0), rows.dtype)
    m = np.empty((count, 1), rows.dtype)
    s = np.empty((count, 1), rows.dtype)
    kernel = _KERNELS.get(keep)
    if kernel is None:
        kernel = _KERNELS[keep] = _build(keep)
    kernel(rows, e, m, s, t)
    # a NaN beside a finite maximum reaches the sum: NaN rows are the general step's too
    if not (np.isfinite(m).all() and np.isfinite(s).all()):
        return None
    return m, s, e if keep else None
