"""softmax, log_softmax and logsumexp over the last axis of a NumPy array, by cache blocks."""

from __future__ import annotations

import numpy as np

from ..._generic.forward import log_softmax_kernel, logsumexp_kernel, softmax_kernel
from .blocks import (
    UNSHIFTED_MAX,
    blockwise,
    chunk_scratch,
    chunked_sum,
    column_chunks,
    finite,
    shift,
)

__all__ = ["log_softmax", "logsumexp", "softmax"]


def _unshifted(m: np.ndarray, limit: float) -> bool:
    """Whether every row maximum lies in ``[0, limit]`` (False for NaN)."""
    return (
        float(np.minimum.reduce(m, axis=None)) >= 0.0
        and float(np.maximum.reduce(m, axis=None)) <= limit
    )


def softmax(x: np.ndarray, temperature: float | None, out: np.ndarray | None = None) -> np.ndarray:
    """Softmax over the last axis (see the module docstring for the conditions).

    When every row maximum ``m`` of a block lies in ``[0, UNSHIFTED_MAX]`` (and T is 1), the
    block skips the shift: ``exp(x) / sum(exp(x))`` cannot overflow there, an ``exp(x_i)``
    that underflows belongs to an output below the normal range (``S >= exp(m) >= 1``), and
    the result is at least as accurate, since ``x_i - m`` is never rounded.
    """
    chunks = column_chunks(x.shape[-1], x.itemsize)
    limit = UNSHIFTED_MAX[x.dtype.itemsize] if temperature is None else -1.0

    def block(out: np.ndarray, scratch: None, xb: np.ndarray) -> bool:
        m = np.maximum.reduce(xb, axis=1, keepdims=True)
        shift = limit < 0 or not _unshifted(m, limit)
        if shift and not finite(m):
            return False
        if len(chunks) == 1:
            _exp_into(out, xb, m if shift else None, temperature)
            total = np.add.reduce(out, axis=1, keepdims=True)
        else:

            def fill(chunk: slice) -> np.ndarray:
                return _exp_into(out[:, chunk], xb[:, chunk], m if shift else None, temperature)

            total = chunked_sum(xb.shape[0], x.dtype, chunks, fill)
        np.multiply(out, np.reciprocal(total), out=out)
        return True

    return blockwise(
        x, block=block, fallback=softmax_kernel, temperature=temperature, scratch=False, out=out
    ).reshape(x.shape)


def _exp_into(
    out: np.ndarray, xb: np.ndarray, m: np.ndarray | None, temperature: float | None
) -> np.ndarray:
    """``out = exp((xb - m)/T)``, or ``exp(xb)`` when ``m`` is None (no shift); returns out."""
    if m is None:
        return np.exp(xb, out=out)  # type: ignore[no-any-return]
    shift(xb, m, temperature, out)
    return np.exp(out, out=out)  # type: ignore[no-any-return]


def log_softmax(
    x: np.ndarray, temperature: float | None, out: np.ndarray | None = None
) -> np.ndarray:
    """Log-softmax over the last axis: ``(x - m)/T - log(sum(exp((x - m)/T)))``."""
    chunks = column_chunks(x.shape[-1], x.itemsize)
    scratch: list[np.ndarray] = []

    def block(out: np.ndarray, _: None, xb: np.ndarray) -> bool:
        m = xb.max(axis=1, keepdims=True)
        if not finite(m):
            return False

        def fill(chunk: slice) -> np.ndarray:
            o = out[:, chunk]
            shift(xb[:, chunk], m, temperature, o)
            return np.exp(o, out=chunk_scratch(scratch, o))  # type: ignore[no-any-return]

        total = chunked_sum(xb.shape[0], x.dtype, chunks, fill)
        np.subtract(out, np.log(total), out=out)
        return True

    return blockwise(
        x, block=block, fallback=log_softmax_kernel, temperature=temperature, scratch=False,
        out=out,
    ).reshape(x.shape)  # fmt: skip


def logsumexp(x: np.ndarray) -> np.ndarray:
    """logsumexp over the last axis, keeping it with length 1.

    Skips the shift where softmax does (see :func:`softmax`): ``log(sum(exp(x)))`` then
    errs by at most the rounding of the result, within the SPEC bound.
    """
    chunks = column_chunks(x.shape[-1], x.itemsize)
    limit = UNSHIFTED_MAX[x.dtype.itemsize]
    scratch: list[np.ndarray] = []

    def block(out: np.ndarray, _: None, xb: np.ndarray) -> bool:
        m = xb.max(axis=1, keepdims=True)
        shift = not _unshifted(m, limit)
        if shift and not finite(m):
            return False

        def fill(chunk: slice) -> np.ndarray:
            xc = xb[:, chunk]
            s = chunk_scratch(scratch, xc)
            if shift:
                np.subtract(xc, m, out=s)
                return np.exp(s, out=s)  # type: ignore[no-any-return]
            return np.exp(xc, out=s)  # type: ignore[no-any-return]

        total = np.log(chunked_sum(xb.shape[0], x.dtype, chunks, fill))
        if shift:
            np.add(m, total, out=out)
        else:
            out[...] = total
        return True

    out = blockwise(
        x, block=block, fallback=logsumexp_kernel, temperature=None, out_columns=1, scratch=False
    )
    return out.reshape((*x.shape[:-1], 1))
