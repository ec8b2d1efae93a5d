"""Cross-entropy and its fused gradient on Dask arrays, for chunks that hold whole classes.

Per-sample losses and gradients are one blockwise task per chunk that calls the public
function on the chunk with ``reduction="none"`` (the chunk type's fastest path, every option
applied there). The batch reductions are Dask tree sums: the loss total, and for ``"mean"``
the denominator ``D = sum_n sum_c w_c t_nc``, whose per-sample terms come from the generic
"denominator" kernel (no exponential). The gradient of ``"sum"`` and ``"mean"`` is the
per-sample gradient scaled by ``grad`` or ``grad / D`` (0 when ``D`` is 0), passed to the
chunks as a per-sample ``grad``. Labels and probabilities are rechunked to the logits' chunks,
the class weight ``(C,)`` travels whole. Chunks that split the class axes take the tree of
``_cross_entropy_tree``.
"""

from __future__ import annotations

from typing import Any

import array_api_compat

from ._blockwise import _on_block
from ._forward import takes
from ._graph import (
    Array,
    aligned,
    expand,
    indices,
    meta_like,
    squeezed,
    tree_sum,
    whole_slices,
)
from ._package import Slices, cross_entropy_setup, denominator_kernel, quiet_floating_point


def _setup(logits: Array, target: Array, grad: Array | None, options: dict[str, Any]) -> Any:
    """The generic validation (identical errors)."""
    return cross_entropy_setup(logits, target, grad, **options)


def _denominator_block(
    x: Any, target: Any, *rest: Any, config: Any, axes: tuple[int, ...], has_mask: bool
) -> Any:
    """Per-sample ``d_n`` of one chunk (0 for samples that take no part), keepdims."""
    xp = array_api_compat.array_namespace(x)
    items = list(rest)
    mask = items.pop() if has_mask else None
    with quiet_floating_point(xp):
        local = Slices(xp, axes, mask, None, x.dtype, False, False)
        return denominator_kernel(config)(local, x, target, *items)


def _mean_block(total: Any, d: Any, *, result_dtype: Any) -> Any:
    """``total / d``, 0 when ``d == 0`` (a NaN total stays NaN), in the result dtype."""
    xp = array_api_compat.array_namespace(total)
    with quiet_floating_point(xp):
        zero = xp.where(xp.isnan(total), total, 0.0)
        out = xp.where(d == 0, zero, total / xp.where(d == 0, 1.0, d))
        return out if out.dtype == result_dtype else xp.astype(out, result_dtype)


def _cast_block(total: Any, *, result_dtype: Any) -> Any:
    xp = array_api_compat.array_namespace(total)
    with quiet_floating_point(xp):  # a float16 loss beyond 65504 rounds to inf, quietly
        return total if total.dtype == result_dtype else xp.astype(total, result_dtype)


class _Layout:
    """Blockwise indices and rechunked operands of one call, shared by loss and gradient."""

    def __init__(self, logits: Array, target: Array, call: Any, weight: Any, where: Any):
        axes = call.slices.axes
        self.axes = axes
        self.hard = call.config.hard
        self.ind = indices(logits.ndim)
        self.samples = "".join(c for i, c in enumerate(self.ind) if i not in axes)
        self.sample_chunks = tuple(c for i, c in enumerate(logits.chunks) if i not in axes)
        self.sample_shape = tuple(n for i, n in enumerate(logits.shape) if i not in axes)
        self.logits = logits
        target_ind = self.samples if self.hard else self.ind
        self.target = (
            (target.rechunk(self.sample_chunks), target_ind)
            if self.hard
            else (aligned(target, logits), target_ind)
        )
        self.keywords: list[tuple[str, Any, str]] = []
        if weight is not None:
            self.keywords.append(("weight", weight.rechunk(-1), self.ind[axes[0]]))
        if where is not None:
            self.keywords.append(("where", aligned(expand(where, logits.ndim), logits), self.ind))
        self.call = call

    def per_chunk(
        self, function: str, x: Array, options: dict[str, Any], grad: Any, dtype: Any
    ) -> Array:
        """``function`` (public, ``reduction="none"``) on every chunk of ``x``."""
        import dask.array as da

        keywords = list(self.keywords)
        if grad is not None:
            keywords.append(("grad", grad, self.samples))
        operands: list[Any] = [x, self.ind, *self.target]
        for _, array, index in keywords:
            operands += [array, index]
        gradient = function == "cross_entropy_backward"
        out_ind = self.ind if gradient else self.samples
        return da.blockwise(  # type: ignore[no-untyped-call]
            _on_block,
            out_ind,
            *operands,
            function=function,
            positional=2,
            keywords=tuple(name for name, _, _ in keywords),
            options={**options, "reduction": "none", "validate": False},
            dtype=dtype,
            concatenate=True,
            meta=meta_like(self.logits, dtype, len(out_ind)),
        )

    def denominator(self) -> Array:
        """``D`` as a 0-d Dask array in the compute dtype."""
        import dask.array as da

        call = self.call
        x = call.operands[0]
        operands: list[Any] = [x, self.ind]
        for a in call.operands[1:]:
            operands += [aligned(a, x), self.ind]
        mask = call.slices.mask
        if mask is not None:
            operands += [aligned(mask, x), self.ind]
        terms = da.blockwise(  # type: ignore[no-untyped-call]
            _denominator_block,
            self.ind,
            *operands,
            config=call.config,
            axes=self.axes,
            has_mask=mask is not None,
            adjust_chunks={self.ind[a]: 1 for a in self.axes},
            dtype=x.dtype,
            meta=meta_like(x, x.dtype),
        )
        return tree_sum(terms, None, keepdims=False)


def _prepared(
    logits: Array, target: Array, grad: Array | None, options: dict[str, Any]
) -> tuple[Any, Any, _Layout | None] | None:
    """Validate; return ``(call, options, layout)`` (layout None: chunks split the class
    axes), or None for calls left to the generic path (no sample axis, empty or 0-d)."""
    weight, where = options["weight"], options["where"]
    if not takes(logits, target, weight, where, grad):
        return None
    call, checked, grad_c = _setup(logits, target, grad, options)
    axes = call.slices.axes
    if call.slices.empty or call.slices.added_axis or len(axes) == logits.ndim:
        return None
    if not whole_slices(logits, axes):
        return call, (checked, grad_c), None
    return call, (checked, grad_c), _Layout(logits, target, call, weight, where)


def _block_options(call: Any, options: dict[str, Any]) -> dict[str, Any]:
    axes = call.slices.axes
    return {
        "axis": axes[0] if call.config.hard else axes,
        "ignore_index": options["ignore_index"],
        "label_smoothing": options["label_smoothing"],
    }


def cross_entropy(logits: Array, target: Array, /, **options: Any) -> Array:
    """:func:`portable_softmax.cross_entropy` of Dask arrays (lazy), or NotImplemented."""
    prepared = _prepared(logits, target, None, options)
    if prepared is None:
        return NotImplemented
    call, (checked, _), layout = prepared
    if layout is None:
        return _tree_loss(call, checked.reduction)
    block_options = _block_options(call, options)
    if checked.reduction == "none":
        return layout.per_chunk("cross_entropy", logits, block_options, None, call.result_dtype)
    compute = call.operands[0]  # sums in the compute dtype (float32 for float16 logits)
    losses = layout.per_chunk("cross_entropy", compute, block_options, None, compute.dtype)
    total = tree_sum(losses, None, keepdims=False)
    if checked.reduction == "sum":
        return total.map_blocks(
            _cast_block, result_dtype=call.result_dtype, dtype=call.result_dtype
        )
    dtype = call.result_dtype
    return total.map_blocks(_mean_block, layout.denominator(), result_dtype=dtype, dtype=dtype)


def cross_entropy_backward(logits: Array, target: Array, /, **options: Any) -> Array:
    """:func:`portable_softmax.cross_entropy_backward` of Dask arrays (lazy), or
    NotImplemented."""
    import dask.array as da

    grad = options.pop("grad", None)
    prepared = _prepared(logits, target, grad, options)
    if prepared is None:
        return NotImplemented
    call, (checked, grad_c), layout = prepared
    if layout is None:
        return _tree_gradient(call, checked.reduction, grad_c)
    scale = grad_c
    if checked.reduction == "mean":
        scale = _mean_scale(call, grad_c, layout.denominator())
    if scale is not None and scale.ndim == 0:  # "sum" and "mean": the same for every sample
        scale = da.broadcast_to(  # type: ignore[no-untyped-call]
            scale, layout.sample_shape, chunks=layout.sample_chunks
        )
    elif scale is not None:
        scale = scale.rechunk(layout.sample_chunks)
    return layout.per_chunk(
        "cross_entropy_backward", logits, _block_options(call, options), scale, call.result_dtype
    )


def _mean_scale(call: Any, grad: Array | None, denominator: Array) -> Array:
    """``grad / D`` (``1 / D`` without grad), 0 when ``D == 0``, as a 0-d Dask array."""
    dtype = call.operands[0].dtype
    if grad is None:  # the ones come from D's own chunk type (CuPy chunks: CuPy)
        return denominator.map_blocks(_reciprocal_block, result_dtype=dtype, dtype=dtype)
    return grad.map_blocks(_mean_block, denominator, result_dtype=dtype, dtype=dtype)


def _reciprocal_block(d: Any, *, result_dtype: Any) -> Any:
    xp = array_api_compat.array_namespace(d)
    return _mean_block(xp.ones_like(d), d, result_dtype=result_dtype)


def _tree_loss(call: Any, reduction: str) -> Array:
    from ._cross_entropy_tree import Tree

    tree = Tree(call)
    losses = tree.per_sample("loss")
    dtype = call.result_dtype
    if reduction == "none":
        per_sample = squeezed(losses, call.slices.axes)
        return per_sample.map_blocks(_cast_block, result_dtype=dtype, dtype=dtype)
    total = tree_sum(losses, None, keepdims=False)
    if reduction == "sum":
        return total.map_blocks(_cast_block, result_dtype=dtype, dtype=dtype)
    return total.map_blocks(_mean_block, tree.denominator(), result_dtype=dtype, dtype=dtype)


def _tree_gradient(call: Any, reduction: str, grad: Array | None) -> Array:
    import dask.array as da

    from ._cross_entropy_tree import Tree

    tree = Tree(call)
    scale = grad
    if reduction == "mean":
        scale = _mean_scale(call, grad, tree.denominator())
    elif scale is not None and scale.ndim > 0:  # per sample: keepdims, like the logits
        expanded = da.expand_dims(scale, axis=call.slices.axes)
        scale = aligned(expanded, tree.x)
    return tree.gradient(scale, call.result_dtype)
