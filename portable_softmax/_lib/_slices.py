"""Turn a described call into the slices the portable kernels reduce over, and back.

Every function reduces over some axes of one primary array (``x``, ``y``, ``logp`` or the
logits) with optional companions of the same shape (``grad``, ``tangent``, probabilities).
:func:`prepare` casts them to the compute dtype, broadcasts the mask and maps ``axis=()``
(every element its own slice, including 0-d input) onto a trailing length-1 axis, so the
numerical code only ever sees a non-empty tuple of axes. ``Slices.finish`` undoes both. The
call was validated when it was described: nothing here checks anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ._arguments import Array


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


def prepare(call: Any, primary: Array, *companions: Array) -> tuple[Slices, list[Array]]:
    """The slices of ``call`` and its arrays (``primary`` first) in the compute dtype."""
    xp = call.xp
    dtype = call.compute_dtype
    arrays = [cast(xp, a, dtype) for a in (primary, *companions)]
    shape = tuple(primary.shape)
    mask = None if call.where is None else xp.broadcast_to(call.where, shape)
    t = getattr(call, "temperature", None)
    if t is not None and not isinstance(t, float):
        t = cast(xp, t, dtype)
    axes = call.axes
    added_axis = not axes
    if added_axis:
        arrays = [a[..., None] for a in arrays]
        mask = None if mask is None else mask[..., None]
        if t is not None and not isinstance(t, float):
            t = t[..., None]
        axes = (len(shape),)
    empty = any(arrays[0].shape[i] == 0 for i in axes)
    return Slices(xp, axes, mask, t, call.result_dtype, added_axis, empty), arrays


def cast(xp: ModuleType, a: Any, dtype: Any) -> Array:
    """``a`` in ``dtype`` (itself when it already is)."""
    return a if a.dtype == dtype else xp.astype(a, dtype)
