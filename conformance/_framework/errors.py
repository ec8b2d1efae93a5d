"""Worst error seen per check, for the conformance matrix.

A check records ``(error, bound)`` pairs in units of the dtype's eps; the report keeps the
pair with the largest ratio per test and shows it next to the outcome. The recorder is a
module-level slot that conftest points at the running test, so that assertion helpers can
record without taking a fixture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class ErrorRecord:
    """The worst ``error / bound`` seen in one test (both in units of eps)."""

    error_eps: float
    bound_eps: float
    context: str

    @property
    def ratio(self) -> float:
        """error / bound; inf when the bound is 0 and the error is not."""
        if self.bound_eps == 0:
            return 0.0 if self.error_eps == 0 else math.inf
        return self.error_eps / self.bound_eps


_current: list[ErrorRecord] | None = None


def start_test() -> None:
    """Begin collecting records for a new test."""
    global _current
    _current = []


def finish_test() -> ErrorRecord | None:
    """Stop collecting and return the worst record of the test, if any."""
    global _current
    records, _current = _current or [], None
    return _worst(records)


def _worst(records: list[ErrorRecord]) -> ErrorRecord | None:
    def key(r: ErrorRecord) -> float:
        # NaN errors are the worst of all.
        return math.inf if math.isnan(r.error_eps) else r.ratio

    return max(records, key=key, default=None)


def record_error(error_eps: float, bound_eps: float, context: str = "") -> None:
    """Record an error against its bound (both in eps) for the running test."""
    if _current is not None:
        _current.append(ErrorRecord(float(error_eps), float(bound_eps), context))
