"""The per-slice kernels of cross-entropy: loss, denominator and fused gradient.

Each works on one block of whole slices (all classes of some samples), so ``_run.run`` can
call it directly or blockwise on Dask. Hard labels arrive with a length-1 class axis and are
compared with the class indices to build the one-hot target in the block; ``where`` masks
classes; invalid samples (a label outside ``[0, C)`` or on a masked class) become NaN and
samples that take no part (ignored, or all classes masked) 0, by ``where``, never by
branching on values.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import array_api_compat

from .._lib._arguments import Array
from .._lib._slices import Slices
from .forward import log_softmax_kernel, softmax_kernel
from .reductions import accurate_sum
from .tangents import register


@dataclass(frozen=True)
class Config:
    """What the kernels need besides arrays (static: no array values)."""

    hard: bool
    classes: int
    ignore_index: int | None
    smoothing: float
    weighted: bool
    scaled: bool


def _weighted_targets(
    slices: Slices, x: Array, target: Array, weight: Array | None, config: Config
) -> tuple[Array, Array, Array, Array | None]:
    """Return ``(w*t', w*t, keep, bad)`` for one block of slices.

    ``keep`` marks samples that take part (not ignored, some class unmasked); ``bad`` marks
    invalid hard labels (None for probabilities).
    """
    xp = slices.xp
    axes = slices.axes
    mask = slices.mask
    bad = None
    if config.hard:
        shape = tuple(config.classes if i in axes else 1 for i in range(x.ndim))
        index = xp.arange(config.classes, dtype=target.dtype, device=array_api_compat.device(x))
        hit = xp.reshape(index, shape) == target
        if mask is not None:
            hit = hit & mask
        t = xp.astype(hit, x.dtype)
        found = xp.any(hit, axis=axes, keepdims=True)
        keep = _all_true(xp, found.shape, x)
        if config.ignore_index is not None:
            keep = target != config.ignore_index
        bad = keep & ~found
    else:
        t = slices.zero_masked(target)
        keep = _all_true(xp, tuple(1 if i in axes else n for i, n in enumerate(x.shape)), x)
    count: Array | int = config.classes
    if mask is not None:
        count = xp.sum(xp.astype(mask, x.dtype), axis=axes, keepdims=True)
        live = count > 0
        keep = keep & live
        bad = None if bad is None else bad & live
    smoothed = t
    if config.smoothing:
        eps = config.smoothing
        if mask is None:
            smoothed = (1 - eps) * t + eps / count
        else:
            share = eps / xp.where(count > 0, count, 1.0)
            smoothed = xp.where(mask, (1 - eps) * t + share, 0.0)
    if weight is not None:
        return weight * smoothed, weight * t, keep, bad
    return smoothed, t, keep, bad


def _all_true(xp: ModuleType, shape: tuple[int, ...], like: Array) -> Array:
    return xp.ones(shape, dtype=xp.bool, device=array_api_compat.device(like))


def _split(arrays: tuple[Array, ...], config: Config) -> tuple[Array, Array | None, Array | None]:
    """(target, weight, scale) out of the kernel operands after the logits."""
    rest = list(arrays)
    target = rest.pop(0)
    weight = rest.pop(0) if config.weighted else None
    scale = rest.pop(0) if config.scaled else None
    return target, weight, scale


def _mark(xp: ModuleType, a: Array, keep: Array, bad: Array | None) -> Array:
    """0 for samples that take no part, NaN for invalid ones."""
    a = xp.where(keep, a, 0.0)
    return a if bad is None else xp.where(bad, math.nan, a)


@functools.cache  # one kernel object per (config, kind): JAX compiles it once per shape
def kernel_of(config: Config, kind: str) -> Any:
    """The per-slice kernel of ``kind``: "loss" and "denominator" reduce the class axes
    (per-sample ``l_n`` and ``d_n = sum_c w_c t_nc``); "gradient" keeps them."""

    def kernel(slices: Slices, x: Array, *arrays: Array) -> Array:
        xp = slices.xp
        target, weight, scale = _split(arrays, config)
        wt, plain, keep, bad = _weighted_targets(slices, x, target, weight, config)
        if kind == "denominator":
            return xp.where(keep, accurate_sum(xp, plain, slices.axes), 0.0)
        if kind == "loss":
            terms = xp.where(wt == 0, 0.0, wt * log_softmax_kernel(slices, x))  # 0 log 0 = 0
            return _mark(xp, -accurate_sum(xp, terms, slices.axes), keep, bad)
        p = softmax_kernel(slices, x)
        out = slices.zero_masked(p * accurate_sum(xp, wt, slices.axes) - wt)
        return _mark(xp, out if scale is None else out * scale, keep, bad)

    if kind == "loss":
        register(kernel, functools.partial(_loss_tangent, kernel_of(config, "gradient")))
    return kernel


def _loss_tangent(
    gradient: Any, slices: Slices, _: Array, arrays: tuple[Array, ...], dx: Array
) -> Array:
    """The per-sample loss's tangent for a tangent ``dx`` of the logits: the fused gradient
    (for a loss gradient of one) dotted with ``dx`` over the classes."""
    g = gradient(slices, *arrays)
    return accurate_sum(slices.xp, slices.zero_masked(g * dx), slices.axes)
