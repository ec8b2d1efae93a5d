"""Row reductions shared by the kernels: the maximum, and accurate sums.

Sums are taken in blocks of :data:`BLOCK` entries: inside a block the loop is vectorised
(``reassoc`` lets LLVM keep 16-32 partial sums, so each partial adds a handful of entries),
and the block sums are added with Neumaier's compensated summation, compiled *without*
``reassoc`` so it is not simplified away. The error of a row sum is then about
``(log2(BLOCK) + 2) * eps`` whatever the row length, below SPEC section 3's
``2 * ceil(log2 n) * eps`` for every row longer than a block.
"""

from __future__ import annotations

from typing import Any

from ._intrinsics import maxnum
from ._jit import jit

__all__ = ["BLOCK", "compensated_add", "compensated_total", "row_max"]

BLOCK = 512
"""Entries per block of a row sum."""


@jit()
def row_max(x: Any) -> Any:
    """The maximum of a 1-D row (see :func:`._intrinsics.maxnum` for rows with NaN)."""
    m = x[0]
    for j in range(1, x.shape[0]):
        m = maxnum(m, x[j])
    return m


@jit(fastmath=frozenset())
def compensated_add(total: Any, carry: Any, value: Any) -> Any:
    """One step of Neumaier's summation: ``(total, carry)`` after adding ``value``.

    With non-finite values the carry turns NaN; callers use ``total`` alone then.
    """
    t = total + value
    if abs(total) >= abs(value):
        carry += (total - t) + value
    else:
        carry += (value - t) + total
    return t, carry


@jit(fastmath=frozenset())
def compensated_total(total: Any, carry: Any) -> Any:
    """The sum that :func:`compensated_add` accumulated (``total`` alone when not finite)."""
    return total + carry if total - total == 0 else total
