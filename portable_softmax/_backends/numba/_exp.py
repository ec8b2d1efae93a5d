"""A vectorisable ``exp`` for float32 and float64, callable from the kernels as ``vexp``.

``exp(x) = 2**n * exp(r)`` with ``n = rint(x / ln 2)`` and ``r = x - n ln 2`` in two parts
(Cody and Waite: ``n * LN2_HI`` is exact), so ``|r| <= ln(2)/2``; ``exp(r)`` is
``1 + r + r**2 q(r)`` with ``q`` a near-minimax polynomial (Chebyshev fit of
``(e**r - 1 - r) / r**2`` in mpmath, degree 4 for float32 and 10 for float64: at most
0.13 and 0.002 units in the last place of approximation error). ``2**n`` is built from
integer bits in two halves (:func:`._intrinsics.ldexp_split`), so subnormal results are
rounded once and overflow gives inf. Inputs are clamped to where the result is 0 or inf
(``minnum``/``maxnum``, two instructions; 17% faster than compare-and-select), and a NaN input
is returned by the final select, whatever its lane computed.

Compiled without ``reassoc`` (which would fold the two-part reduction into one rounding)
and without ``nnan``/``ninf``: the edge values are part of the contract.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import types
from numba.extending import overload

from ._intrinsics import ldexp_split, maxnum, minnum, rint

__all__ = ["EXP_FASTMATH", "vexp"]

EXP_FASTMATH = frozenset({"contract"})
"""Fast-math flags of ``exp``: fused multiply-adds only."""

f32 = np.float32
f64 = np.float64

# float32: beyond these the result is 0 (below -103.97) or inf (above 88.73)
_LO32, _HI32 = f32(-104.0), f32(89.0)
_LOG2E32 = f32(1.4426950408889634)
_LN2_HI32, _LN2_LO32 = f32(0.693145751953125), f32(1.4286067653301870e-06)
_Q32 = tuple(
    f32(c)
    for c in (
        0.5,
        0.16666576666119928306,
        0.041666554212984150315,
        0.0083632328836826181975,
        0.001392625083149761171,
    )
)
_ONE32 = f32(1.0)

_LO64, _HI64 = f64(-746.0), f64(710.0)
_LOG2E64 = f64(1.4426950408889634)
_LN2_HI64, _LN2_LO64 = f64(6.93147180369123816490e-01), f64(1.90821492927058770002e-10)
_Q64 = tuple(
    f64(c)
    for c in (
        0.5,
        0.1666666666666667103,
        0.041666666666666669783,
        0.0083333333333260831202,
        0.0013888888888883711167,
        0.00019841269875002278793,
        0.0000248015873256774619,
        2.7557255170000887438e-6,
        2.7557273478718580474e-7,
        2.5105312729622101775e-8,
        2.0914755325893202191e-9,
    )
)
_ONE64 = f64(1.0)


def vexp(x: Any) -> Any:
    """``exp(x)`` inside numba-compiled code (float32 or float64 scalars)."""
    raise NotImplementedError("vexp is only callable from numba-compiled code")


def _exp32(x: Any) -> Any:
    q0, q1, q2, q3, q4 = _Q32
    xc = minnum(maxnum(x, _LO32), _HI32)  # for NaN x: poison, not chosen by the last select
    n = rint(xc * _LOG2E32)
    r = xc - n * _LN2_HI32
    r = r - n * _LN2_LO32
    q = q0 + r * (q1 + r * (q2 + r * (q3 + r * q4)))
    p = _ONE32 + (r + (r * r) * q)
    y = ldexp_split(p, n)
    return y if x == x else x


def _exp64(x: Any) -> Any:
    q0, q1, q2, q3, q4, q5, q6, q7, q8, q9, q10 = _Q64
    xc = minnum(maxnum(x, _LO64), _HI64)
    n = rint(xc * _LOG2E64)
    r = xc - n * _LN2_HI64
    r = r - n * _LN2_LO64
    q = q6 + r * (q7 + r * (q8 + r * (q9 + r * q10)))
    q = q0 + r * (q1 + r * (q2 + r * (q3 + r * (q4 + r * (q5 + r * q)))))
    p = _ONE64 + (r + (r * r) * q)
    y = ldexp_split(p, n)
    return y if x == x else x


@overload(vexp, jit_options={"fastmath": set(EXP_FASTMATH), "error_model": "numpy"})
def _vexp_overload(x: Any) -> Any:
    if x == types.float32:
        return _exp32
    if x == types.float64:
        return _exp64
    return None
