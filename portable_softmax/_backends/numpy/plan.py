"""Which cross-entropy calls the NumPy fast path takes, and their labels sorted out.

:func:`plan` looks at metadata only (types, dtypes, shapes, option values) and returns None
for anything else, invalid calls included, so that the generic path raises the documented
error. The labels are then checked with the portable path's rule and message.
"""

from __future__ import annotations

import numpy as np

from ..._generic.cross_entropy_kernels import Config
from ..._lib._targets import raise_first_bad

__all__ = ["Plan", "plan"]

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_I64 = np.dtype(np.int64)
_REDUCTIONS = ("none", "sum", "mean")


class Plan:
    """A call this path takes, with its labels sorted into counted, ignored and invalid."""

    __slots__ = (
        "counted",
        "d",
        "index",
        "invalid",
        "labels",
        "reduction",
        "rows",
        "shape",
        "share",
        "smoothing",
        "sum_w",
        "w_y",
        "weight",
    )

    def __init__(
        self,
        logits: np.ndarray,
        target: np.ndarray,
        reduction: str,
        weight: np.ndarray | None,
        ignore: int | None,
        smoothing: float,
        validate: bool | None,
    ) -> None:
        classes = logits.shape[-1]
        dtype = logits.dtype
        self.rows = logits.reshape(-1, classes)
        self.shape = target.shape
        self.reduction = reduction
        self.smoothing = smoothing
        self.share = dtype.type(smoothing / classes)
        self.weight = None if weight is None else weight.astype(dtype, copy=False)
        self.sum_w = dtype.type(classes) if self.weight is None else self.weight.sum(dtype=dtype)
        labels = target.reshape(-1)
        if labels.dtype is not _I64:  # widest signed integer, as on the portable path
            wraps = labels.dtype == np.uint64  # values above int64's maximum turn negative
            labels = labels.astype(_I64)
            if wraps:  # keep them invalid (never ignore_index): no class is that large
                labels = np.where(labels < 0, np.iinfo(_I64).max, labels)
        self.labels = labels
        unsigned = labels.view(np.uint64)  # a negative label is huge: one test for [0, C)
        counted: np.ndarray | None = None
        self.invalid: np.ndarray | None = None
        if ignore is None and validate is not False:  # every sample counts, or we raise
            if unsigned.max() >= classes:
                _raise_first_bad(target, unsigned >= classes, classes, logits.ndim - 1)
            self.index = labels
        else:
            in_range = unsigned < classes
            ignored = None if ignore is None else labels == ignore
            if validate is not False:
                ok = in_range if ignored is None else in_range | ignored
                if not ok.all():
                    _raise_first_bad(target, ~ok, classes, logits.ndim - 1)
            counted = in_range if ignored is None else in_range & ~ignored
            invalid = ~in_range if ignored is None else ~in_range & ~ignored
            self.index = np.where(counted, labels, 0)
            self.invalid = invalid if invalid.any() else None
        self.counted = counted
        w_y = np.ones(labels.shape, dtype) if self.weight is None else self.weight[self.index]
        if counted is not None:
            w_y = np.where(counted, w_y, 0).astype(dtype, copy=False)
        self.w_y = w_y
        self.d = np.add.reduce(w_y)  # SPEC's D: the weighted count of the samples that count

    def settle(self, out: np.ndarray) -> None:
        """Samples that do not count get 0, invalid ones NaN (in place)."""
        if self.counted is not None:
            out[~self.counted] = 0.0
        if self.invalid is not None:
            out[self.invalid] = np.nan

    def config(self, *, scaled: bool) -> Config:
        """The portable kernel's configuration for this call's rows (settled by the caller)."""
        return Config(
            hard=True,
            classes=self.rows.shape[1],
            ignore_index=None,
            smoothing=self.smoothing,
            weighted=self.weight is not None,
            scaled=scaled,
        )


def _raise_first_bad(target: np.ndarray, bad: np.ndarray, classes: int, axis: int) -> None:
    """Raise as the portable path does, naming the first invalid label as given."""
    import array_api_compat.numpy as xp

    what = f"outside [0, {classes}) (classes on axis {axis})"
    raise_first_bad(xp, target, bad.reshape(target.shape), what)


def plan(
    logits: object,
    target: object,
    *,
    axis: object,
    reduction: object,
    weight: object,
    ignore_index: object,
    label_smoothing: object,
    where: object,
    validate: object,
) -> Plan | None:
    """The call as a :class:`Plan`, or None when this path does not take it (metadata only)."""
    if type(logits) is not np.ndarray or type(target) is not np.ndarray or where is not None:
        return None
    if type(reduction) is not str or reduction not in _REDUCTIONS:
        return None
    if ignore_index is not None and type(ignore_index) is not int:
        return None
    if type(label_smoothing) is not float and type(label_smoothing) is not int:
        return None
    if not 0 <= label_smoothing <= 1 or (validate is not None and type(validate) is not bool):
        return None
    dtype = logits.dtype
    if dtype is not _F32 and dtype is not _F64:
        return None
    ndim = logits.ndim
    if ndim == 0 or target.ndim != ndim - 1 or target.dtype.kind not in "iu":
        return None
    if type(axis) is not int or (axis != -1 and axis != ndim - 1):
        return None
    if target.shape != logits.shape[:-1] or logits.size == 0:
        return None
    if ndim > 2 and not logits.flags.c_contiguous:
        return None
    if weight is not None and not (
        type(weight) is np.ndarray
        and weight.shape == logits.shape[-1:]
        and weight.dtype.kind in "fiu"
    ):
        return None
    return Plan(logits, target, reduction, weight, ignore_index, float(label_smoothing), validate)
