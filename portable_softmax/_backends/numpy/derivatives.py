"""The softmax VJP (and JVP: the same formula) over the last axis of NumPy arrays, by blocks."""

from __future__ import annotations

import numpy as np

from ..._generic.derivatives import softmax_product_kernel
from .blocks import BACKWARD_BLOCK_BYTES, blockwise, chunk_scratch, chunked_sum, column_chunks

__all__ = ["softmax_backward"]


def _backward_finish(
    out: np.ndarray,
    g: np.ndarray,
    y: np.ndarray,
    dot: np.ndarray,
    temperature: float | None,
    scratch: np.ndarray,
) -> None:
    """``out = y * (g - dot) / T``, through ``scratch`` so that ``out`` may be ``y`` or ``g``."""
    np.subtract(g, dot, out=scratch)
    np.multiply(scratch, y, out=out)
    if temperature is not None:
        np.divide(out, temperature, out=out)


def softmax_backward(
    y: np.ndarray, g: np.ndarray, temperature: float | None, out: np.ndarray | None = None
) -> np.ndarray:
    """``y * (g - sum(g*y)) / T`` over the last axis, into ``out`` (which may be ``y`` or
    ``g``) or a fresh array.

    Each chunk's products go to a small scratch that stays in cache, and so does
    ``g - sum(g*y)``, so the output is written only once and no input is overwritten
    before it is read.
    """
    chunks = column_chunks(y.shape[-1], y.itemsize)
    scratch: list[np.ndarray] = []

    def block(out: np.ndarray, _: None, yb: np.ndarray, gb: np.ndarray) -> bool:
        def fill(chunk: slice) -> np.ndarray:
            yc = yb[:, chunk]
            target = chunk_scratch(scratch, yc)
            np.multiply(yc, gb[:, chunk], out=target)
            return target

        dot = chunked_sum(yb.shape[0], y.dtype, chunks, fill)
        for chunk in chunks:
            yc = yb[:, chunk]
            work = chunk_scratch(scratch, yc)
            _backward_finish(out[:, chunk], gb[:, chunk], yc, dot, temperature, work)
        return True

    return blockwise(
        y,
        g,
        block=block,
        fallback=softmax_product_kernel,
        temperature=temperature,
        scratch=False,
        block_bytes=BACKWARD_BLOCK_BYTES,
        out=out,
    ).reshape(y.shape)
