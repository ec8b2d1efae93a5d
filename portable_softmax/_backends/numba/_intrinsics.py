"""LLVM operations numba does not expose in a form that vectorises.

* :func:`maxnum`, :func:`minnum`: ``llvm.maxnum``/``llvm.minnum`` with ``nnan nsz`` on the
  call only, so a row-maximum loop becomes a ``vmaxps``/``vmaxpd`` reduction and a clamp two
  instructions. With a NaN operand the result is poison (in practice some operand): the
  kernels never rely on it, the NaN reaches the row sum, and ``exp`` selects NaN at the end
  (a ``select`` does not propagate poison from the operand it does not choose).
* :func:`rint`: ``llvm.rint`` (round half to even), a ``vroundps`` in vector code.
* :func:`ldexp_split`: ``p * 2**n`` for an integral float ``n`` in the exponent range of
  ``exp``, as two exact power-of-two factors built from integer bits, so a result below the
  normal range is rounded once (subnormals kept) and one beyond it overflows to inf. The
  integer work stays in 32 (float32) or 64 bits (float64) lanes; numba's own integer typing
  would widen it to int64 and stop float32 code from vectorising well.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

__all__ = ["ldexp_split", "maxnum", "minnum", "rint"]

_intrinsic: Any = intrinsic  # numba is untyped: what it compiles is Any here too


def _float_pair(a: Any, b: Any) -> bool:
    return isinstance(a, types.Float) and a == b


def _min_max(name: str) -> Any:
    def typer(typingctx: Any, a: Any, b: Any) -> Any:
        if not _float_pair(a, b):
            return None

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            t = args[0].type
            fn = builder.module.declare_intrinsic(name, [t], ir.FunctionType(t, [t, t]))
            return builder.call(fn, args, fastmath=("nnan", "nsz"))

        return a(a, b), codegen

    typer.__name__ = name.replace("llvm.", "")  # numba names the intrinsic after it
    return typer


def _rint(typingctx: Any, a: Any) -> Any:
    """``a`` rounded to the nearest integer (ties to even), as a float of ``a``'s dtype."""
    if not isinstance(a, types.Float):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        t = args[0].type
        fn = builder.module.declare_intrinsic("llvm.rint", [t], ir.FunctionType(t, [t]))
        return builder.call(fn, args)

    return a(a), codegen


def _ldexp_split(typingctx: Any, p: Any, n: Any) -> Any:
    """``p * 2**h * 2**(n - h)`` with ``h = n >> 1``: ``n`` an integral float with
    ``|n| <= 2 * (largest exponent)``, so both factors are normal floats."""
    if not _float_pair(p, n):
        return None
    if p.bitwidth == 32:
        int_type, bias, mantissa = ir.IntType(32), 127, 23
    else:
        int_type, bias, mantissa = ir.IntType(64), 1023, 52

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        value, exponent = args
        # float -> int32 vectorises on AVX2 for float and double; widen afterwards
        whole = builder.fptosi(exponent, ir.IntType(32))
        if int_type.width != 32:
            whole = builder.sext(whole, int_type)
        high = builder.ashr(whole, ir.Constant(int_type, 1))
        low = builder.sub(whole, high)
        result = value
        for part in (high, low):
            biased = builder.add(part, ir.Constant(int_type, bias))
            bits = builder.shl(biased, ir.Constant(int_type, mantissa))
            result = builder.fmul(result, builder.bitcast(bits, value.type))
        return result

    return p(p, n), codegen


maxnum: Any = _intrinsic(_min_max("llvm.maxnum"))
"""The larger of two floats of one dtype (see the module docstring for NaN)."""
minnum: Any = _intrinsic(_min_max("llvm.minnum"))
"""The smaller of two floats of one dtype (see the module docstring for NaN)."""
rint: Any = _intrinsic(_rint)
ldexp_split: Any = _intrinsic(_ldexp_split)
