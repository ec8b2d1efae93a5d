"""The elementwise pass after the tree: softmax, log_softmax and logsumexp from the records.

Each output block reads its own chunk and the merged record of its slices (broadcast along
the reduced axes) and applies the SPEC section 2 table in reverse order of precedence, so the
earlier rows win: the formula, then no finite entry (``m = -inf``), then ``k`` infinities,
then NaN, then the mask. No value decides a branch, except that a NumPy chunk whose slices
are all plain rescales the exponentials kept from the statistics pass.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat

from ._graph import Array, indices, meta_like
from ._package import dispatch, quiet_floating_point
from ._tree import K, M, N, S, block_slices, rows_call, rows_of, slice_operands


def _nonzero(xp: Any, a: Any) -> Any:
    return xp.where(a == 0, 1.0, a)


def softmax_of(local: Any, x: Any, record: Any) -> Any:
    """softmax of block ``x`` from the merged ``record`` of its slices, every edge settled."""
    xp = local.xp
    top, total, k, n = record[M], record[S], record[K], record[N]
    masked = local.fill_masked(x, -math.inf)
    e = xp.exp(local.shift(masked, xp.where(top == -math.inf, 0.0, top)))
    out = e / _nonzero(xp, total)
    out = xp.where(top == -math.inf, 0.0, out)
    out = xp.where(k > 0, xp.where(masked == math.inf, 1.0 / _nonzero(xp, k), 0.0), out)
    out = xp.where(n > 0, math.nan, out)
    return local.fill_masked(out, 0.0)


def _rescale(e: Any, factor: Any, axes: tuple[int, ...], path: str) -> Any:
    """``min(e * factor, 1)`` for a NumPy chunk, in place where ``e`` lies as rows (it is
    this chunk's private intermediate): the registry's ``rescale_rows`` block operation."""
    import numpy as np

    rows = rows_of(e, axes)
    if rows is None:
        return np.minimum(e * factor, 1)
    call = rows_call("rescale_rows", rows, np.ascontiguousarray(factor.reshape(-1, 1)), None, False)
    return dispatch(call, path, _unblocked).reshape(e.shape)


def _unblocked(call: Any) -> Any:
    """No backend takes the rescale: one NumPy expression."""
    import numpy as np

    return np.minimum(call.x * call.vector, 1, out=call.x)


def _softmax_block(
    x: Any, *rest: Any, slicing: dict[str, Any], result_dtype: Any, path: str
) -> Any:
    xp = array_api_compat.array_namespace(x)
    with quiet_floating_point(xp):
        local, (pair, record) = block_slices(xp, x.dtype, rest, **slicing)
        e, chunk_record = pair
        plain = e is not None and not (bool(xp.any(record[K] > 0)) or bool(xp.any(record[N] > 0)))
        if plain:  # NumPy chunk, finite maxima everywhere: rescale exp((x - m_chunk)/T)
            factor = xp.exp(local.shift(chunk_record[M], record[M])) / record[S]
            # A factor below the normal range has lost bits; with an unshifted chunk (its
            # reference 0 far below the row's maximum) e can be large and e * factor a normal
            # output, so such blocks take the formula instead (NaN factors too).
            plain = bool(xp.all(factor >= xp.finfo(factor.dtype).smallest_normal))
        out = _rescale(e, factor, slicing["axes"], path) if plain else softmax_of(local, x, record)
        return out if out.dtype == result_dtype else xp.astype(out, result_dtype)


def log_softmax_of(local: Any, x: Any, record: Any) -> Any:
    """log_softmax of block ``x`` from the merged ``record`` of its slices, every edge settled."""
    xp = local.xp
    top, total, k, n = record[M], record[S], record[K], record[N]
    masked = local.fill_masked(x, -math.inf)
    out = local.shift(masked, xp.where(top == -math.inf, 0.0, top))
    out = out - xp.log(_nonzero(xp, total))
    out = xp.where(top == -math.inf, -math.inf, out)
    share = -xp.log(_nonzero(xp, k))
    out = xp.where(k > 0, xp.where(masked == math.inf, share, -math.inf), out)
    out = xp.where(n > 0, math.nan, out)
    out = local.fill_masked(out, -math.inf)
    return out


def _log_softmax_block(
    x: Any, *rest: Any, slicing: dict[str, Any], result_dtype: Any, path: str
) -> Any:
    xp = array_api_compat.array_namespace(x)
    with quiet_floating_point(xp):
        local, (record,) = block_slices(xp, x.dtype, rest, **slicing)
        out = log_softmax_of(local, x, record)
        return out if out.dtype == result_dtype else xp.astype(out, result_dtype)


def _logsumexp_block(record: Any, *, result_dtype: Any) -> Any:
    xp = array_api_compat.array_namespace(record)
    with quiet_floating_point(xp):
        top, total, k, n = record[M], record[S], record[K], record[N]
        positive = total > 0
        out = top + xp.where(positive, xp.log(xp.where(positive, total, 1.0)), -math.inf)
        out = xp.where(top == -math.inf, -math.inf, out)
        out = xp.where(k > 0, math.inf, out)
        out = xp.where(n > 0, math.nan, out)
        return out if out.dtype == result_dtype else xp.astype(out, result_dtype)


def forward_pass(
    kind: str,
    x: Array,
    *,
    axes: tuple[int, ...],
    mask: Array | None,
    temperature: Any,
    pairs: Array | None,
    merged: Array,
    dtype: Any,
    path: str,
) -> Array:
    """softmax (``pairs`` from the statistics pass) or log_softmax of ``x``, lazily."""
    import dask.array as da

    ind = indices(x.ndim)
    operands, slicing = slice_operands(x, axes, mask, temperature)
    if kind == "softmax":
        operands += [pairs, ind]
    operands += [merged, "F" + ind]
    block = _softmax_block if kind == "softmax" else _log_softmax_block
    return da.blockwise(  # type: ignore[no-untyped-call]
        block,
        ind,
        *operands,
        slicing=slicing,
        result_dtype=dtype,
        path=path,
        dtype=dtype,
        concatenate=True,
        meta=meta_like(x, dtype),
    )


def logsumexp_pass(merged: Array, *, dtype: Any) -> Array:
    """logsumexp from the merged records, with length 1 on the reduced axes."""
    import dask.array as da

    ind = indices(merged.ndim - 1)
    return da.blockwise(  # type: ignore[no-untyped-call]
        _logsumexp_block,
        ind,
        merged,
        "F" + ind,
        result_dtype=dtype,
        dtype=dtype,
        concatenate=True,
        meta=meta_like(merged, dtype, merged.ndim - 1),
    )
