"""A cross-entropy call on the NumPy fast path, with its labels sorted out.

The registry took the call (float32/float64 logits in rows, classes on the last axis,
integer labels, no mask) and the labels were checked before dispatch where SPEC's
``validate`` rule says to; here they are only sorted into counted, ignored and invalid
samples (invalid ones, possible with ``validate=False``, become NaN).
"""

from __future__ import annotations

import numpy as np

from ..._generic.cross_entropy_kernels import Config
from ..._lib._call import CrossEntropyCall

__all__ = ["Plan"]

_I64 = np.dtype(np.int64)


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

    def __init__(self, call: CrossEntropyCall) -> None:
        logits: np.ndarray = call.logits
        target: np.ndarray = call.target
        classes = logits.shape[-1]
        dtype = logits.dtype
        self.rows = logits.reshape(-1, classes)
        self.shape = target.shape
        self.reduction = call.reduction
        self.smoothing = call.smoothing
        self.share = dtype.type(call.smoothing / classes)
        weight = call.weight
        self.weight = None if weight is None else weight.astype(dtype, copy=False)
        self.sum_w = dtype.type(classes) if self.weight is None else self.weight.sum(dtype=dtype)
        labels = target.reshape(-1)
        if labels.dtype != _I64:  # widest signed integer, as on the portable path
            labels = labels.astype(_I64)  # (uint64 labels are not taken here)
        self.labels = labels
        counted: np.ndarray | None = None
        self.invalid: np.ndarray | None = None
        ignore = call.ignore_index
        if ignore is None and call.labels_checked:  # every sample counts
            self.index = labels
        else:
            in_range = labels.view(np.uint64) < classes  # a negative label is huge
            ignored = None if ignore is None else labels == ignore
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
