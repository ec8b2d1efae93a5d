"""Row reductions shared by the kernels: the maximum, accurate sums, and the blocked
sum of exponentials that every forward and cross-entropy kernel starts from.

Sums are taken in blocks of :data:`BLOCK` entries: inside a block the loop is vectorised
(``reassoc`` lets LLVM keep 16-32 partial sums, so each partial adds a handful of entries),
and the block sums are added with Neumaier's compensated summation, compiled *without*
``reassoc`` so it is not simplified away. The error of a row sum is then about
``(log2(BLOCK) + 2) * eps`` whatever the row length, below SPEC section 3's
``2 * ceil(log2 n) * eps`` for every row longer than a block.
"""

from __future__ import annotations

from typing import Any

from ._exp import vexp
from ._intrinsics import maxnum
from ._jit import jit

__all__ = [
    "BLOCK",
    "compensated_add",
    "compensated_total",
    "exp_sum",
    "exp_sum_in_place",
    "halves",
    "row_max",
    "scale_row",
]

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


@jit(fastmath=frozenset({"contract"}))
def scale_row(row: Any, factor: Any) -> None:
    """``row *= factor``. Without ``reassoc``: under it LLVM folds ``x * (1 / s)`` back into
    ``x / s``, a vector division per element (softmax (256, 1000) float32 took 240 us
    instead of 190)."""
    for j in range(row.shape[0]):
        row[j] *= factor


@jit()
def halves(m: Any, t: Any) -> Any:
    """``(h, m*h, t*h)`` with ``h = 1/2`` for ``t > 1``, else 1: ``(x*h - m*h) / (t*h)`` is
    ``(x - m)/t`` without overflow of ``x - m`` where the quotient is in range (as on the
    generic path; the halvings are exact)."""
    one = t / t
    h = one / (one + one) if t > one else one
    return h, m * h, t * h


@jit()
def _block_exp_sum(xb: Any, ob: Any, m: Any, t: Any, write: bool) -> Any:
    """One block's ``sum(exp((x - m)/t))``, the exponentials written to ``ob`` with
    ``write``. Each case is its own loop: a test inside the loop measured 1.6x slower."""
    s = t - t
    scaled = t != t / t
    h, mh, th = halves(m, t)
    if write and scaled:
        for j in range(xb.shape[0]):
            e = vexp((xb[j] * h - mh) / th)
            ob[j] = e
            s += e
    elif write:
        for j in range(xb.shape[0]):
            e = vexp(xb[j] - m)
            ob[j] = e
            s += e
    elif scaled:
        for j in range(xb.shape[0]):
            s += vexp((xb[j] * h - mh) / th)
    else:
        for j in range(xb.shape[0]):
            s += vexp(xb[j] - m)
    return s


@jit()
def exp_sum(xi: Any, oi: Any, m: Any, t: Any, write: bool) -> Any:
    """``sum(exp((x - m)/t))`` in blocks; with ``write`` the exponentials go to ``oi``."""
    zero = t - t
    total = zero
    carry = zero
    for start in range(0, xi.shape[0], BLOCK):
        # a block as its own view: LLVM vectorises a loop from 0 over a view far better
        # (3x here) than one over a range of the row
        s = _block_exp_sum(xi[start : start + BLOCK], oi[start : start + BLOCK], m, t, write)
        total, carry = compensated_add(total, carry, s)
    return compensated_total(total, carry)


@jit()
def exp_sum_in_place(row: Any, m: Any, t: Any) -> Any:
    """:func:`exp_sum` writing the exponentials over the row itself. Its own loops, through
    one view per block: LLVM vectorises them, where two views of one row (or one view
    passed as two arguments) fail its overlap test and run the scalar loop, 4x slower."""
    zero = t - t
    total = zero
    carry = zero
    scaled = t != t / t
    h, mh, th = halves(m, t)
    for start in range(0, row.shape[0], BLOCK):
        block = row[start : start + BLOCK]
        s = zero
        if scaled:
            for j in range(block.shape[0]):
                e = vexp((block[j] * h - mh) / th)
                block[j] = e
                s += e
        else:
            for j in range(block.shape[0]):
                e = vexp(block[j] - m)
                block[j] = e
                s += e
        total, carry = compensated_add(total, carry, s)
    return compensated_total(total, carry)
