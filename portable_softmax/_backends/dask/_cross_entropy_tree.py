"""Cross-entropy when chunks split the class axes: the forward tree plus plain tree sums.

The smoothed weighted target ``w t' = w ((1 - eps) t + eps / C_n)`` (over the ``C_n``
unmasked classes) needs ``C_n``, a per-sample sum, before any term can be formed. It splits
into two sums that need nothing per sample: ``sum_c w t' log p = (1 - eps) A + eps/C_n B``
with ``A = sum_c w t log p`` and ``B = sum_c w log p`` over the unmasked classes (0 log 0 = 0
in each: a class whose weighted target is 0 contributes nothing). So, per chunk, one pass
forms the fields ``(A, B, C_n, found, P = sum w t, Q = sum w)`` from the logits, the merged
softmax records (``_tree``) and the labels' one-hot built from the chunk's class indices; a
tree sum over the class axes gives them per sample, and the loss, the denominator
``d_n = P`` and the gradient's ``sum_c w t' = (1 - eps) P + eps/C_n Q`` are read off them.
Samples that take no part (ignored label, every class masked) give 0, invalid ones (a label
outside ``[0, C)`` or on a masked class: ``found = 0``) NaN, as in the generic kernels.
"""

from __future__ import annotations

from typing import Any

import array_api_compat

from ._graph import Array, aligned, indices, meta_like, tree_sum
from ._output import log_softmax_of, softmax_of
from ._package import accurate_sum, quiet_floating_point
from ._tree import _local, statistics

A, B, COUNT, FOUND, P, Q = range(6)
FIELDS = 6


def _targets(xp: Any, local: Any, x: Any, target: Any, index: Any, weight: Any) -> Any:
    """``(t, w, live)`` of one chunk: the (one-hot) target, zero where masked; the weight
    (1 without one) and 1 where unmasked."""
    mask = local.mask
    if index is not None:  # hard labels: compare with this chunk's class indices
        hit = index == target
        t = xp.astype(hit if mask is None else hit & mask, x.dtype)
    else:
        t = local.zero_masked(target)
    live = xp.ones_like(x) if mask is None else xp.astype(mask, x.dtype)
    w = xp.ones_like(x) if weight is None else weight * xp.ones_like(x)
    return t, w, live


def _unpack(rest: tuple[Any, ...], hard: bool, weighted: bool, masked: bool) -> list[Any]:
    items = list(rest)
    index = items.pop(0) if hard else None
    weight = items.pop(0) if weighted else None
    mask = items.pop(0) if masked else None
    return [index, weight, mask, *items]


def _fields_block(
    x: Any, target: Any, *rest: Any, axes: tuple[int, ...], config: Any, masked: bool
) -> Any:
    xp = array_api_compat.array_namespace(x)
    index, weight, mask, record = _unpack(rest, config.hard, config.weighted, masked)
    with quiet_floating_point(xp):
        local = _local(xp, axes, mask, None, x.dtype)
        logp = log_softmax_of(local, x, record)
        t, w, live = _targets(xp, local, x, target, index, weight)
        wt = w * t
        wl = w * live
        terms = [
            xp.where(wt == 0, 0.0, wt * logp),
            xp.where(wl == 0, 0.0, w * logp),
            live,
            t,
            wt,
            wl,
        ]
        return xp.stack([accurate_sum(xp, a, axes) for a in terms])


def _keep_bad(xp: Any, fields: Any, labels: Any, config: Any) -> tuple[Any, Any]:
    """Samples that take part, and invalid ones (None for probabilities)."""
    keep = fields[COUNT] > 0
    if not config.hard:
        return keep, None
    if config.ignore_index is not None:
        keep = keep & (labels != config.ignore_index)
    return keep, keep & (fields[FOUND] == 0)


def _mark(xp: Any, a: Any, keep: Any, bad: Any) -> Any:
    a = xp.where(keep, a, 0.0)
    return a if bad is None else xp.where(bad, float("nan"), a)


def _loss_block(fields: Any, labels: Any, *, config: Any, kind: str) -> Any:
    """Per-sample loss (``kind="loss"``) or denominator term, keepdims."""
    xp = array_api_compat.array_namespace(fields)
    with quiet_floating_point(xp):
        keep, bad = _keep_bad(xp, fields, labels, config)
        if kind == "denominator":
            return xp.where(keep, fields[P], 0.0)
        eps = config.smoothing
        total = (1 - eps) * fields[A] if eps < 1 else xp.zeros_like(fields[A])
        if eps > 0:
            count = fields[COUNT]
            total = total + eps / xp.where(count > 0, count, 1.0) * fields[B]
        return _mark(xp, -total, keep, bad)


def _gradient_block(
    x: Any,
    target: Any,
    *rest: Any,
    axes: tuple[int, ...],
    config: Any,
    masked: bool,
    scaled: bool,
    result_dtype: Any,
) -> Any:
    xp = array_api_compat.array_namespace(x)
    index, weight, mask, record, fields, *scale = _unpack(
        rest, config.hard, config.weighted, masked
    )
    with quiet_floating_point(xp):
        local = _local(xp, axes, mask, None, x.dtype)
        p = softmax_of(local, x, record)
        t, w, _ = _targets(xp, local, x, target, index, weight)
        eps = config.smoothing
        smoothed, total = t, fields[P]
        if eps:
            count = fields[COUNT]
            share = eps / xp.where(count > 0, count, 1.0)
            smoothed = local.zero_masked((1 - eps) * t + share)
            total = (1 - eps) * fields[P] + share * fields[Q]
        out = local.zero_masked(p * total - w * smoothed)
        if scaled:
            out = out * scale[0]
        keep, bad = _keep_bad(xp, fields, target if config.hard else None, config)
        out = _mark(xp, out, keep, bad)
        return out if out.dtype == result_dtype else xp.astype(out, result_dtype)


class Tree:
    """The graph pieces of one cross-entropy call whose chunks split the class axes, from its
    portable operands (``_generic.cross_entropy.operands``) and the caller's path setting."""

    def __init__(self, call: Any, path: str):
        import dask.array as da

        self.call = call
        self.config = call.config
        self.axes = call.slices.axes
        self.x = x = call.operands[0]
        self.ind = indices(x.ndim)
        self.mask = call.slices.mask
        _, self.record = statistics(
            x, axes=self.axes, mask=self.mask, temperature=None, keep_exp=False, path=path
        )
        operands: list[Any] = [x, self.ind, aligned(call.operands[1], x), self.ind]
        if self.config.hard:
            axis = self.axes[0]
            shape = tuple(n if i == axis else 1 for i, n in enumerate(x.shape))
            # the chunk type's arange: CuPy chunks get CuPy class indices
            labels = call.operands[1]
            index = da.arange(
                x.shape[axis], chunks=(x.chunks[axis],), dtype=labels.dtype, like=x._meta
            )
            operands += [index.reshape(shape), self.ind]
        if self.config.weighted:
            operands += [aligned(call.operands[2], x), self.ind]
        if self.mask is not None:
            operands += [aligned(self.mask, x), self.ind]
        self.operands = operands
        partial = da.blockwise(  # type: ignore[no-untyped-call]
            _fields_block,
            "G" + self.ind,
            *operands,
            self.record,
            "F" + self.ind,
            axes=self.axes,
            config=self.config,
            masked=self.mask is not None,
            new_axes={"G": FIELDS},
            adjust_chunks={self.ind[a]: 1 for a in self.axes},
            concatenate=True,
            dtype=x.dtype,
            meta=meta_like(x, x.dtype, x.ndim + 1),
        )
        self.fields = tree_sum(partial, tuple(a + 1 for a in self.axes))

    def per_sample(self, kind: str) -> Array:
        """Per-sample losses or denominator terms, keepdims, in the compute dtype."""
        import dask.array as da

        labels = aligned(self.call.operands[1], self.x) if self.config.hard else None
        operands: list[Any] = [self.fields, "G" + self.ind]
        operands += [labels, self.ind] if labels is not None else [None, None]
        return da.blockwise(  # type: ignore[no-untyped-call]
            _loss_block,
            self.ind,
            *operands,
            config=self.config,
            kind=kind,
            concatenate=True,
            dtype=self.x.dtype,
            meta=meta_like(self.x, self.x.dtype),
        )

    def denominator(self) -> Array:
        return tree_sum(self.per_sample("denominator"), None, keepdims=False)

    def gradient(self, scale: Array | None, dtype: Any) -> Array:
        """The fused gradient; ``scale`` 0-d or keepdims per sample (None: ones)."""
        import dask.array as da

        operands = [*self.operands, self.record, "F" + self.ind, self.fields, "G" + self.ind]
        if scale is not None:
            operands += [scale, "" if scale.ndim == 0 else self.ind]
        return da.blockwise(  # type: ignore[no-untyped-call]
            _gradient_block,
            self.ind,
            *operands,
            axes=self.axes,
            config=self.config,
            masked=self.mask is not None,
            scaled=scale is not None,
            result_dtype=dtype,
            concatenate=True,
            dtype=dtype,
            meta=meta_like(self.x, dtype),
        )
