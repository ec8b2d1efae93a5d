"""Turn validated arguments into the slices a function reduces over, and back.

Every public function reduces over some axes of one primary array (``x``, ``y`` or ``logp``)
with optional companions of the same shape (``grad``, ``tangent``). ``prepare`` validates
them once, casts them to the compute dtype and maps ``axis=()`` (every element its own
slice, including 0-d input) onto a trailing length-1 axis, so the numerical code only ever
sees a non-empty tuple of axes. ``Slices.finish`` undoes both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ._arguments import (
    Array,
    check_same_shape,
    check_temperature,
    check_where,
    floating_dtypes,
    namespace_of,
    normalize_axis,
)


@dataclass(frozen=True)
class Slices:
    """The reduction every function of the family performs, with its validated options."""

    xp: ModuleType
    axes: tuple[int, ...]
    """Reduced axes of the (possibly expanded) arrays; never empty."""
    mask: Array | None
    """Boolean mask broadcast to the arrays' shape, or None."""
    temperature: Array | float | None
    """None for T = 1, a positive Python float, or an array with size 1 on reduced axes."""
    result_dtype: Any
    added_axis: bool
    """Whether a trailing length-1 axis was added to express ``axis=()``."""
    empty: bool
    """Whether a reduced axis has length zero (then there is nothing to compute)."""

    def fill_masked(self, a: Array, value: float) -> Array:
        """Put ``value`` where the mask is False, whatever ``a`` holds there (NaN included)."""
        if self.mask is None:
            return a
        return self.xp.where(self.mask, a, value)

    def zero_masked(self, a: Array) -> Array:
        """Multiplicands that must not carry masked garbage into a sum."""
        return self.fill_masked(a, 0.0)

    def _checked_temperature(self) -> Array | float | None:
        """The temperature, with array entries that are not positive (or NaN) made NaN."""
        t = self.temperature
        if t is None or isinstance(t, float):
            return t
        return self.xp.where(t > 0, t, math.nan)

    def divide_by_temperature(self, a: Array) -> Array:
        """``a / T``; an array entry that is not positive (or NaN) gives a NaN slice."""
        t = self._checked_temperature()
        return a if t is None else a / t

    def shift(self, a: Array, m: Array) -> Array:
        """``(a - m) / T`` with exact zeros where ``a == m`` (so ``inf - inf`` never counts).

        For T > 1, ``a - m`` may overflow where ``(a - m) / T`` does not: there we use the
        halves ``a/2 - m/2``, which cannot overflow, over ``T/2`` (exact scalings). For
        T <= 1 an overflowing difference overflows after the division too, and halving a
        tiny T could make it subnormal (flushed to 0 on some backends).
        """
        xp = self.xp
        t = self._checked_temperature()
        if t is None:
            return xp.where(a == m, 0.0, a - m)
        if isinstance(t, float):
            half: Array | float = 0.5 if t > 1 else 1.0
        else:
            half = 0.5 + 0.5 * xp.astype(t <= 1, t.dtype)  # 0.5 where t > 1, else 1
        if isinstance(half, float) and half == 1.0:
            return xp.where(a == m, 0.0, a - m) / t
        return xp.where(a == m, 0.0, a * half - m * half) / (t * half)

    def finish(self, out: Array, *, reduced: bool = False, keepdims: bool = True) -> Array:
        """Cast to the result dtype; drop the added axis, and reduced axes unless keepdims."""
        xp = self.xp
        if out.dtype != self.result_dtype:
            out = xp.astype(out, self.result_dtype)
        if self.added_axis:
            return out[..., 0]
        if reduced and not keepdims:
            return xp.squeeze(out, axis=self.axes)
        return out


def prepare(
    primary_name: str,
    primary: object,
    *,
    axis: object,
    where: object,
    temperature: object,
    companions: dict[str, object] | None = None,
) -> tuple[Slices, list[Array]]:
    """Validate the arguments; return the slices and the arrays in the compute dtype.

    The returned list holds the primary array first, then the companions in order.
    """
    companions = companions or {}
    temperature_array = None if isinstance(temperature, (int, float)) else temperature
    xp = namespace_of(
        **{primary_name: primary},
        **companions,
        where=where,
        temperature=temperature_array,
    )
    x: Array = primary
    compute_dtype, result_dtype = floating_dtypes(xp, x, name=primary_name)
    for name, companion in companions.items():
        check_same_shape(companion, x, first_name=name, second_name=primary_name)
        if xp.isdtype(companion.dtype, "complex floating"):  # type: ignore[attr-defined]
            raise TypeError(f"{name} has complex dtype {companion.dtype}; pass a real array")  # type: ignore[attr-defined]
    shape = tuple(x.shape)
    axes = normalize_axis(axis, x.ndim)
    keep_shape = tuple(1 if i in axes else n for i, n in enumerate(shape))
    mask = check_where(xp, where, shape)
    t = check_temperature(xp, temperature, keep_shape, compute_dtype)
    arrays = [_cast(xp, a, compute_dtype) for a in (x, *companions.values())]

    added_axis = not axes
    if added_axis:
        arrays = [a[..., None] for a in arrays]
        mask = None if mask is None else mask[..., None]
        if t is not None and not isinstance(t, float):
            t = t[..., None]
        axes = (len(shape),)
    empty = any(arrays[0].shape[i] == 0 for i in axes)
    return Slices(xp, axes, mask, t, result_dtype, added_axis, empty), arrays


def _cast(xp: ModuleType, a: Any, dtype: Any) -> Array:
    return a if a.dtype == dtype else xp.astype(a, dtype)
