"""Cross-entropy and its fused gradient on Dask arrays.

Chunks that hold whole classes: per-sample losses and gradients are one blockwise task per
chunk, the described call on the chunk with ``reduction="none"`` run through the registry
(the chunk type's fastest path, every option applied there). The batch reductions are Dask
tree sums: the loss total, and for ``"mean"`` the denominator ``D = sum_n sum_c w_c t_nc``,
whose per-sample terms come from the portable "denominator" kernel (no exponential). The
gradient of ``"sum"`` and ``"mean"`` is the per-sample gradient scaled by ``grad`` or
``grad / D`` (0 when ``D`` is 0), passed to the chunks as a per-sample ``grad``. Labels and
probabilities are rechunked to the logits' chunks, the class weight ``(C,)`` travels whole.
Chunks that split the class axes take the tree of ``_cross_entropy_tree`` (on the portable
path they are rechunked whole instead). Calls with no sample axis (1-D logits, or every axis
a class axis) or no class axis (0-d logits) get a length-1 one, removed at the end.
"""

from __future__ import annotations

from typing import Any

import array_api_compat

from ._blockwise import on_blocks, static
from ._graph import (
    Array,
    aligned,
    expand,
    indices,
    meta_like,
    served_whole,
    squeezed,
    tree_sum,
)
from ._package import (
    CrossEntropyCall,
    Operands,
    Slices,
    current_path,
    denominator_kernel,
    dispatch,
    one_thread,
    operands,
    quiet_floating_point,
)


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


def _on_block(*blocks: Any, call: CrossEntropyCall, has: tuple[bool, ...], path: str) -> Any:
    """The per-sample call on one chunk (runs on a worker): logits, target, then the weight,
    the mask and ``grad`` where ``has`` says the call has them."""
    rest = list(blocks)
    logits, target = rest.pop(0), rest.pop(0)
    weight, where, grad = (rest.pop(0) if present else None for present in has)
    samples = tuple(n for i, n in enumerate(logits.shape) if i not in call.axes)
    local = on_blocks(
        call, logits, logits=logits, target=target, weight=weight, where=where, grad=grad,
        loss_shape=samples,
    )  # fmt: skip
    with one_thread():
        return dispatch(local, path)


class _Layout:
    """Blockwise indices and rechunked operands of one call, shared by loss and gradient."""

    def __init__(self, call: CrossEntropyCall, prepared: Operands, path: str):
        logits = call.logits
        axes = call.axes
        self.call = call
        self.prepared = prepared
        self.path = path
        self.axes = axes
        self.ind = indices(logits.ndim)
        self.samples = "".join(c for i, c in enumerate(self.ind) if i not in axes)
        self.sample_chunks = tuple(c for i, c in enumerate(logits.chunks) if i not in axes)
        self.sample_shape = tuple(n for i, n in enumerate(logits.shape) if i not in axes)
        target = call.target
        self.target = (
            (target.rechunk(self.sample_chunks), self.samples)
            if call.hard
            else (aligned(target, logits), self.ind)
        )
        self.keywords: list[tuple[Any, str]] = []
        if call.weight is not None:
            self.keywords.append((call.weight.rechunk(-1), self.ind[axes[0]]))
        if call.where is not None:
            self.keywords.append((aligned(expand(call.where, logits.ndim), logits), self.ind))

    def per_chunk(self, function: str, grad: Any, dtype: Any) -> Array:
        """``function`` with ``reduction="none"`` on every chunk, results in ``dtype``."""
        import dask.array as da

        call = self.call
        keywords = list(self.keywords)
        if grad is not None:
            keywords.append((grad, self.samples))
        operands: list[Any] = [call.logits, self.ind, *self.target]
        for array, index in keywords:
            operands += [array, index]
        out_ind = self.ind if function == "cross_entropy_backward" else self.samples
        block_call = call._replace(
            function=function, reduction="none", validate=False, labels_checked=False,
            result_dtype=dtype,
        )  # fmt: skip
        return da.blockwise(  # type: ignore[no-untyped-call]
            _on_block,
            out_ind,
            *operands,
            call=static(block_call, logits=None, target=None, weight=None, where=None, grad=None),
            has=(call.weight is not None, call.where is not None, grad is not None),
            path=self.path,
            dtype=dtype,
            concatenate=True,
            meta=meta_like(call.logits, dtype, len(out_ind)),
        )

    def denominator(self) -> Array:
        """``D`` as a 0-d Dask array in the compute dtype."""
        import dask.array as da

        prepared = self.prepared
        x = prepared.operands[0]
        operands: list[Any] = [x, self.ind]
        for a in prepared.operands[1:]:
            operands += [aligned(a, x), self.ind]
        mask = prepared.slices.mask
        if mask is not None:
            operands += [aligned(mask, x), self.ind]
        terms = da.blockwise(  # type: ignore[no-untyped-call]
            _denominator_block,
            self.ind,
            *operands,
            config=prepared.config,
            axes=self.axes,
            has_mask=mask is not None,
            adjust_chunks={self.ind[a]: 1 for a in self.axes},
            dtype=x.dtype,
            meta=meta_like(x, x.dtype),
        )
        return tree_sum(terms, None, keepdims=False)


def _canonical(call: CrossEntropyCall) -> tuple[CrossEntropyCall, bool, bool]:
    """The call with a class axis and a sample axis: ``(call, added_class, added_sample)``.

    0-d logits (probabilities, ``axis=None``) get a trailing class axis of length 1; logits
    whose every axis is a class axis get a leading sample axis of length 1.
    """
    added_class = not call.axes
    if added_class:
        ndim = call.logits.ndim
        call = call._replace(
            logits=call.logits[..., None], target=call.target[..., None],
            where=None if call.where is None else expand(call.where, ndim)[..., None],
            axes=(ndim,),
        )  # fmt: skip
    added_sample = len(call.axes) == call.logits.ndim
    if added_sample:
        ndim = call.logits.ndim
        target = call.target[None]
        call = call._replace(
            logits=call.logits[None], target=target,
            where=None if call.where is None else expand(call.where, ndim)[None],
            axes=tuple(a + 1 for a in call.axes),
            loss_shape=(1,) if call.reduction == "none" else (),
            grad=None if call.grad is None or call.reduction != "none" else call.grad[None],
        )  # fmt: skip
    return call, added_class, added_sample


def _prepared(call: CrossEntropyCall) -> tuple[CrossEntropyCall, Operands, _Layout | None]:
    """``(call, portable operands, layout)``; layout None: the tree serves chunks that split
    the class axes (where the call is ``served_whole``, they are rechunked whole first)."""
    path = current_path()
    if not served_whole(call.logits, call.axes, path):
        return call, operands(call), None
    whole = dict.fromkeys(call.axes, -1)
    call = call._replace(
        logits=call.logits.rechunk(whole),
        target=call.target if call.hard else call.target.rechunk(whole),
    )
    prepared = operands(call)
    return call, prepared, _Layout(call, prepared, path)


def _loss(call: CrossEntropyCall) -> Array:
    call, prepared, layout = _prepared(call)
    if layout is None:
        return _tree_loss(prepared, call.reduction)
    dtype = call.result_dtype
    if call.reduction == "none":
        return layout.per_chunk("cross_entropy", None, dtype)
    # sums in the compute dtype (float32 for float16 logits)
    losses = layout.per_chunk("cross_entropy", None, call.compute_dtype)
    total = tree_sum(losses, None, keepdims=False)
    if call.reduction == "sum":
        return total.map_blocks(_cast_block, result_dtype=dtype, dtype=dtype)
    return total.map_blocks(_mean_block, layout.denominator(), result_dtype=dtype, dtype=dtype)


def _gradient(call: CrossEntropyCall) -> Array:
    import dask.array as da

    call, prepared, layout = _prepared(call)
    grad = call.grad
    if grad is not None and grad.dtype != call.compute_dtype:
        grad = grad.astype(call.compute_dtype)
    if layout is None:
        return _tree_gradient(prepared, call, grad)
    scale = grad
    if call.reduction == "mean":
        scale = _mean_scale(prepared, grad, layout.denominator())
    if scale is not None and scale.ndim == 0:  # "sum" and "mean": the same for every sample
        scale = da.broadcast_to(  # type: ignore[no-untyped-call]
            scale, layout.sample_shape, chunks=layout.sample_chunks
        )
    elif scale is not None:
        scale = scale.rechunk(layout.sample_chunks)
    return layout.per_chunk("cross_entropy_backward", scale, call.result_dtype)


def cross_entropy(call: CrossEntropyCall) -> Array:
    """:func:`portable_softmax.cross_entropy` of Dask arrays, lazily."""
    canonical, added_class, added_sample = _canonical(call)
    out = _loss(canonical)
    return out.reshape(call.loss_shape) if added_sample or added_class else out


def cross_entropy_backward(call: CrossEntropyCall) -> Array:
    """:func:`portable_softmax.cross_entropy_backward` of Dask arrays, lazily."""
    canonical, added_class, added_sample = _canonical(call)
    out = _gradient(canonical)
    return out.reshape(call.logits.shape) if added_sample or added_class else out


def cross_entropy_with_grad(call: CrossEntropyCall) -> tuple[Array, Array]:
    """:func:`portable_softmax.cross_entropy_with_grad` of Dask arrays, lazily: the loss and
    the gradient graphs (each reads the logits when computed)."""
    return cross_entropy(call), cross_entropy_backward(call)


def _mean_scale(prepared: Operands, grad: Array | None, denominator: Array) -> Array:
    """``grad / D`` (``1 / D`` without grad), 0 when ``D == 0``, as a 0-d Dask array."""
    dtype = prepared.operands[0].dtype
    if grad is None:  # the ones come from D's own chunk type (CuPy chunks: CuPy)
        return denominator.map_blocks(_reciprocal_block, result_dtype=dtype, dtype=dtype)
    return grad.map_blocks(_mean_block, denominator, result_dtype=dtype, dtype=dtype)


def _reciprocal_block(d: Any, *, result_dtype: Any) -> Any:
    xp = array_api_compat.array_namespace(d)
    return _mean_block(xp.ones_like(d), d, result_dtype=result_dtype)


def _tree_loss(prepared: Operands, reduction: str) -> Array:
    from ._cross_entropy_tree import Tree

    tree = Tree(prepared, current_path())
    losses = tree.per_sample("loss")
    dtype = prepared.result_dtype
    if reduction == "none":
        per_sample = squeezed(losses, prepared.slices.axes)
        return per_sample.map_blocks(_cast_block, result_dtype=dtype, dtype=dtype)
    total = tree_sum(losses, None, keepdims=False)
    if reduction == "sum":
        return total.map_blocks(_cast_block, result_dtype=dtype, dtype=dtype)
    return total.map_blocks(_mean_block, tree.denominator(), result_dtype=dtype, dtype=dtype)


def _tree_gradient(prepared: Operands, call: CrossEntropyCall, grad: Array | None) -> Array:
    import dask.array as da

    from ._cross_entropy_tree import Tree

    tree = Tree(prepared, current_path())
    scale = grad
    if call.reduction == "mean":
        scale = _mean_scale(prepared, grad, tree.denominator())
    elif scale is not None and scale.ndim > 0:  # per sample: keepdims, like the logits
        expanded = da.expand_dims(scale, axis=prepared.slices.axes)
        scale = aligned(expanded, tree.x)
    return tree.gradient(scale, prepared.result_dtype)
