"""Backward and JVP kernels of softmax and log_softmax over C-contiguous 2-D rows.

A kernel ``(primary, vector, out, t)`` per product (softmax's VJP and
JVP are one formula, the Jacobian being symmetric):

* ``SOFTMAX_PRODUCT``: ``(v*y - y * sum(v*y)) / T`` given ``y = softmax(x)``;
* ``LOG_SOFTMAX_VJP``: ``(g - exp(logp) * sum(g)) / T``;
* ``LOG_SOFTMAX_JVP``: ``(t - sum(exp(logp) * t)) / T``.

Each row is one blocked, compensated sum (``_reductions``) and one elementwise pass; rows
of at most ``_narrow.NARROW_ENTRIES`` entries take a kernel that indexes the flat arrays by
offset with a plain sum (the caller runs it on one thread and never in place: see the
backend's ``_run_derivative``). No value needs a test: ``y = 0`` and ``logp = -inf`` give
the true products, 0 and ``g/T``.
"""

from __future__ import annotations

import functools
from typing import Any

import numba

from ._exp import vexp
from ._jit import SOURCE_KEY, jit
from ._reductions import BLOCK, compensated_add, compensated_total

__all__ = [
    "INTO_PRIMARY",
    "INTO_VECTOR",
    "LOG_SOFTMAX_JVP",
    "LOG_SOFTMAX_VJP",
    "NOT_IN_PLACE",
    "SOFTMAX_PRODUCT",
    "derivative_kernel",
]

SOFTMAX_PRODUCT, LOG_SOFTMAX_VJP, LOG_SOFTMAX_JVP = 0, 1, 2
"""The ``kind`` argument of a derivative kernel."""

NOT_IN_PLACE, INTO_PRIMARY, INTO_VECTOR = 0, 1, 2
"""The ``in_place`` argument: where the kernel writes (``out``, or one of its inputs)."""


def _build(kind: int, parallel: bool, in_place: int = NOT_IN_PLACE, narrow: bool = False) -> Any:
    """The kernel of one ``kind``; ``kind``, ``parallel`` and ``in_place`` are closure
    constants, so the branches on them fold away (a runtime ``kind`` measured 1.5x slower)
    and numba's cache, which hashes closure cells, keeps the variants apart. ``in_place``
    (:data:`INTO_PRIMARY`, :data:`INTO_VECTOR`) writes into that input, so that LLVM sees
    one array where two overlapping ones would fail its overlap test (scalar loops).
    ``narrow`` (rows of a few entries) indexes the flat arrays by offset, with plain sums: a
    row's views and its blocked, compensated sum cost more than a 10-entry row's work."""

    key = SOURCE_KEY

    @jit(parallel=parallel, cache=True)
    def kernel(primary: Any, vector: Any, out: Any, t: Any) -> None:
        scaled = t != t / t
        for i in numba.prange(primary.shape[0]):
            a = primary[i]
            b = vector[i]
            o = a if in_place == INTO_PRIMARY else (b if in_place == INTO_VECTOR else out[i])
            # the row's sum, in blocks (inline: a nested dispatcher in the closure would
            # change numba's cache key from process to process)
            zero = t - t
            total = zero
            carry = zero
            for start in range(0, a.shape[0], BLOCK):
                ab = a[start : start + BLOCK]
                bb = b[start : start + BLOCK]
                part = zero
                if kind == SOFTMAX_PRODUCT:
                    for j in range(ab.shape[0]):
                        part += bb[j] * ab[j]
                elif kind == LOG_SOFTMAX_VJP:
                    for j in range(bb.shape[0]):
                        part += bb[j]
                else:
                    for j in range(ab.shape[0]):
                        part += vexp(ab[j]) * bb[j]
                total, carry = compensated_add(total, carry, part)
            s = compensated_total(total, carry)
            if kind == SOFTMAX_PRODUCT:
                for j in range(a.shape[0]):
                    o[j] = b[j] * a[j] - a[j] * s
            elif kind == LOG_SOFTMAX_VJP:
                for j in range(a.shape[0]):
                    o[j] = b[j] - vexp(a[j]) * s
            else:
                for j in range(a.shape[0]):
                    o[j] = b[j] - s
            if scaled:
                for j in range(a.shape[0]):
                    o[j] = o[j] / t
        if parallel and key and not narrow:  # closure cells: the cache keys the variants
            return

    @jit(parallel=parallel, cache=True)
    def narrow_kernel(primary: Any, vector: Any, out: Any, t: Any) -> None:
        rows, n = primary.shape
        pa = primary.reshape(-1)  # C-contiguous: views
        pb = vector.reshape(-1)
        po = (
            pa if in_place == INTO_PRIMARY else (pb if in_place == INTO_VECTOR else out.reshape(-1))
        )
        scaled = t != t / t
        for i in numba.prange(rows):
            k = i * n
            s = t - t
            if kind == SOFTMAX_PRODUCT:
                for j in range(n):
                    s += pb[k + j] * pa[k + j]
                for j in range(n):
                    po[k + j] = pb[k + j] * pa[k + j] - pa[k + j] * s
            elif kind == LOG_SOFTMAX_VJP:
                for j in range(n):
                    s += pb[k + j]
                for j in range(n):
                    po[k + j] = pb[k + j] - vexp(pa[k + j]) * s
            else:
                for j in range(n):
                    s += vexp(pa[k + j]) * pb[k + j]
                for j in range(n):
                    po[k + j] = pb[k + j] - s
            if scaled:
                for j in range(n):
                    po[k + j] = po[k + j] / t
        if parallel and key and narrow:  # closure cells: the cache keys the variants apart
            return

    return narrow_kernel if narrow else kernel


derivative_kernel = functools.cache(_build)
"""The derivative kernel ``(primary, vector, out, t)`` of ``kind`` and the variant
``(parallel, in_place, narrow)`` (compiled on first call)."""
