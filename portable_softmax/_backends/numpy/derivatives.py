"""The softmax VJP (and JVP: the same formula) over the last axis of NumPy arrays, by blocks."""

from __future__ import annotations

import numpy as np

from ..._generic.derivatives import softmax_product_kernel
from .blocks import BACKWARD_BLOCK_BYTES, blockwise, chunk_scratch, chunked_sum, column_chunks

__all__ = ["softmax_backward"]


def _backward_finish(
    out: np.ndarray, g: np.ndarray, y: np.ndarray, dot: np.ndarray, temperature: float | None
) -> None:
    """``out = y * (g - dot) / T``."""
    np.subtract(g, dot, out=out)
    np.multiply(out, y, out=out)
    if temperature is not None:
        np.divide(out, temperature, out=out)


def softmax_backward(y: np.ndarray, g: np.ndarray, temperature: float | None) -> np.ndarray:
    """``y * (g - sum(g*y)) / T`` over the last axis.

    Short rows put ``g*y`` in the output block for the sum; long rows (column chunks) put
    each chunk's products in a small scratch that stays in cache, so the output is written
    only once.
    """
    chunks = column_chunks(y.shape[-1], y.itemsize)
    products: list[np.ndarray] = []

    def block(out: np.ndarray, scratch: None, yb: np.ndarray, gb: np.ndarray) -> bool:
        if len(chunks) == 1:
            np.multiply(yb, gb, out=out)
            _backward_finish(out, gb, yb, np.add.reduce(out, axis=1, keepdims=True), temperature)
            return True

        def fill(chunk: slice) -> np.ndarray:
            yc = yb[:, chunk]
            target = chunk_scratch(products, yc)
            np.multiply(yc, gb[:, chunk], out=target)
            return target

        dot = chunked_sum(yb.shape[0], y.dtype, chunks, fill)
        for chunk in chunks:
            _backward_finish(out[:, chunk], gb[:, chunk], yb[:, chunk], dot, temperature)
        return True

    out = blockwise(
        y,
        g,
        block=block,
        fallback=softmax_product_kernel,
        temperature=temperature,
        scratch=False,
        block_bytes=BACKWARD_BLOCK_BYTES,
    )
    return out.reshape(y.shape)
