"""The Dask tree's chunk steps on numba: per-row statistics ``(m, s, e)`` and the rescale.

A chunk that splits the class axis holds row pieces; the tree merges, per row, the maximum
``m`` and ``s = sum(exp((x - m)/T))`` of every piece (``_backends/dask/_tree.py``), and the
output pass turns the kept exponentials ``e`` into softmax with one factor per row. These are
those steps on numba's exponential, on one thread (Dask's workers are the parallelism): the
same max, blocked exponentials and compensated sum as the forward kernels. Rows with a NaN
or without a finite maximum are left to the caller's general statistics, which settle the
SPEC section 2 edges.

A chunk that ``dask.array.from_array`` cuts from a larger array is a strided view: its rows
are contiguous, but the step between them is the parent's row length. numba's loops over
such a 2-D view do not vectorise (4x slower, measured), and a contiguous copy costs a read
and a write of the chunk (half the kernel's time), so the kernel reads the rows out of one
read-only 1-D span of the parent's memory instead: row ``i`` is
``span[i * pitch : i * pitch + n]``, a contiguous slice. Contiguous chunks take the same
kernel with ``pitch = n``, so there is one compiled variant per dtype and ``keep``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..._lib._call import Call
from ._jit import SOURCE_KEY, jit
from ._reductions import exp_sum, row_max

__all__ = ["rescale_rows", "row_statistics"]


@functools.cache
def _build(keep: bool) -> Any:
    """The kernel ``(span, pitch, n, e, m, s, t)``; ``keep`` (a closure constant) writes
    ``e``."""

    key = SOURCE_KEY

    @jit(cache=True)
    def kernel(span: Any, pitch: Any, n: Any, e: Any, m_out: Any, s_out: Any, t: Any) -> None:
        for i in range(m_out.shape[0]):
            xi = span[i * pitch : i * pitch + n]
            m = row_max(xi)
            m_out[i, 0] = m
            if m - m != 0:  # NaN, +inf or -inf: the caller's general statistics
                return
            s_out[i, 0] = exp_sum(xi, e[i], m, t, keep)
        if key:  # closure cells: numba's cache keys the variants apart
            return

    return kernel


def _row_span(rows: np.ndarray) -> tuple[np.ndarray, int] | None:
    """``(span, pitch)``: the rows as one read-only contiguous 1-D view of their memory, and
    the distance between row starts in entries; None where the rows do not lie that way."""
    count, n = rows.shape
    item = rows.itemsize
    step = rows.strides[0] if count > 1 else n * item
    if (rows.strides[1] != item and n > 1) or step % item or step < n * item:
        return None
    pitch = step // item
    length = (count - 1) * pitch + n
    span = np.lib.stride_tricks.as_strided(rows, shape=(length,), strides=(item,), writeable=False)
    return span, pitch


def row_statistics(call: Call) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """``(m, s, e)`` of the float32/float64 rows ``call.x``, ``m`` and ``s`` as ``(rows, 1)``;
    ``e`` (C-contiguous, fresh) only with ``call.keepdims`` (keep the exponentials). None
    when some row holds a NaN or has no finite maximum (the caller's general statistics
    settle those).

    Examples
    --------
    >>> import numpy as np
    >>> from portable_softmax._lib._call import Call
    >>> x = np.array([[0.0, 0.0], [1.0, 3.0]])
    >>> call = Call("row_statistics", np, "numpy", x, None, (1,), None, None, True, x.dtype,
    ...             x.dtype)
    >>> m, s, e = row_statistics(call)
    >>> m.ravel().tolist(), s.ravel().round(4).tolist(), e[1].round(4).tolist()
    ([0.0, 3.0], [2.0, 1.1353], [0.1353, 1.0])
    """
    rows: np.ndarray = call.x
    keep = call.keepdims
    t = rows.dtype.type(1.0 if call.temperature is None else call.temperature)
    found = _row_span(rows)
    if found is None:  # rows that overlap or run backwards: a copy lies the usual way
        rows = np.ascontiguousarray(rows)
        found = _row_span(rows)
        assert found is not None
    span, pitch = found
    count, n = rows.shape
    e = np.empty(rows.shape if keep else (count, 0), rows.dtype)
    m = np.empty((count, 1), rows.dtype)
    s = np.empty((count, 1), rows.dtype)
    _build(keep)(span, pitch, n, e, m, s, t)
    # a NaN beside a finite maximum reaches the sum: NaN rows are the general step's too
    if not (np.isfinite(m).all() and np.isfinite(s).all()):
        return None
    return m, s, e if keep else None


@functools.cache
def _rescale_kernel() -> Any:
    """The in-place rescale kernel ``(e, factor)``, compiled (or loaded) on first use."""
    key = SOURCE_KEY

    @jit(cache=True)
    def kernel(e: Any, factor: Any) -> None:
        for i in range(e.shape[0]):
            ei = e[i]
            f = factor[i, 0]
            for j in range(ei.shape[0]):
                v = ei[j] * f
                ei[j] = 1.0 if v > 1.0 else v  # NaN stays NaN, as with np.minimum
        if key:  # closure cells: numba's cache keys the variants apart
            return

    return kernel


def rescale_rows(call: Call) -> np.ndarray:
    """``min(e * factor, 1)`` in place, one vectorised pass: ``e = call.x`` a C-contiguous,
    writable float32/float64 (rows, n) array, ``factor = call.vector`` (rows, 1) of its dtype.

    ``e`` is the private intermediate of one chunk (its statistics were taken before), so no
    fresh output (and no page faults) is needed. Both factors are rounded, so their product
    can exceed a probability's range by an ulp: the clamp keeps softmax in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from portable_softmax._lib._call import Call
    >>> e, factor = np.array([[1.0, 0.5], [2.0, 4.0]]), np.array([[0.5], [0.25]])
    >>> call = Call("rescale_rows", np, "numpy", e, factor, (1,), None, None, False, e.dtype,
    ...             e.dtype)
    >>> rescale_rows(call).tolist()
    [[0.5, 0.25], [0.5, 1.0]]
    """
    e: np.ndarray = call.x
    _rescale_kernel()(e, np.ascontiguousarray(call.vector))
    return e
