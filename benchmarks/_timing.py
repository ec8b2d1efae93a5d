"""Timers: interleaved host-clock sampling on the CPU, CUDA events on the GPU.

CPU: every implementation of a case is warmed up, calibrated so that one sample lasts at
least ``min_sample_s`` (small inputs are timed as a loop of calls and divided), then the
samples are taken in rounds, one sample per implementation per round, in a fresh random
order each round, so that drift, neighbours' load and any after-effect of the previous
sample (a multi-threaded peer's workers still spinning) hit all alike.
Inputs that fit in cache are rotated among several copies so that no call finds its input
in the innermost caches because the previous call just read it.

GPU: ``cupyx.profiler.benchmark`` (CUDA events around each call, explicit ``n_repeat`` and
``max_duration``), in several rounds that alternate between implementations.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ROTATE_BELOW_BYTES = 32 * 1024 * 1024
"""Inputs smaller than this get several copies to rotate among (see ``copies_for``)."""


def copies_for(nbytes: int, *, most: int = 8) -> int:
    """How many input copies to rotate among: enough to exceed ``ROTATE_BELOW_BYTES``."""
    if nbytes >= ROTATE_BELOW_BYTES:
        return 1
    return max(1, min(most, math.ceil(ROTATE_BELOW_BYTES / max(1, nbytes))))


@dataclass(frozen=True)
class Stats:
    """Per-call times in seconds over the samples of one implementation."""

    median: float
    q1: float
    q3: float
    low: float
    high: float
    samples: int
    calls_per_sample: int
    values: tuple[float, ...] = ()
    """The per-call time of every sample, in the order taken (one per round)."""

    @property
    def iqr_fraction(self) -> float:
        """The interquartile range relative to the median."""
        return (self.q3 - self.q1) / self.median if self.median > 0 else math.nan

    def as_dict(self) -> dict[str, float | int | list[float]]:
        return {
            "median_s": self.median,
            "q1_s": self.q1,
            "q3_s": self.q3,
            "min_s": self.low,
            "max_s": self.high,
            "samples": self.samples,
            "calls_per_sample": self.calls_per_sample,
            "samples_s": list(self.values),
        }


def summarize(per_call: Sequence[float], calls_per_sample: int = 1) -> Stats:
    """Median, quartiles and extremes of per-call times."""
    values = np.asarray(per_call, dtype=np.float64)
    if values.size == 0:
        raise ValueError("summarize needs at least one sample; got none")
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return Stats(
        float(median),
        float(q1),
        float(q3),
        float(values.min()),
        float(values.max()),
        int(values.size),
        calls_per_sample,
        tuple(float(v) for v in values),
    )


def _nothing() -> None:
    return None


@dataclass
class Entry:
    """One implementation in an interleaved timing: ``call(*argsets[i])`` for rotating i."""

    key: str
    call: Callable[..., Any]
    argsets: list[tuple[Any, ...]]
    enter: Callable[[], None] = _nothing
    leave: Callable[[], None] = _nothing
    number: int = 1
    cooldown_s: float = 0.0
    """Untimed pause after each sample (lets a multi-threaded peer's workers go idle)."""
    prime: bool = False
    """Before each sample, after ``enter``, make up to ``min(number, 50)`` untimed calls
    (for a thread pool that was just resized: its first calls can stall for ms)."""
    samples: list[float] = field(default_factory=list)

    def run(self, count: int, start: int = 0) -> float:
        """Seconds for ``count`` calls, rotating the inputs (the timed region is the loop)."""
        argsets = self.argsets
        order = [argsets[(start + i) % len(argsets)] for i in range(count)]
        call = self.call
        self.enter()
        try:
            for args in order[: min(len(order), 50)] if self.prime else ():
                call(*args)
            begin = time.perf_counter()
            for args in order:
                call(*args)
            return time.perf_counter() - begin
        finally:
            self.leave()
            if self.cooldown_s:
                time.sleep(self.cooldown_s)


def time_cpu(
    entries: Sequence[Entry],
    *,
    repeats: int,
    min_sample_s: float,
    warmup: int = 2,
    max_calls: int = 100_000,
) -> dict[str, Stats]:
    """Interleaved host-clock timing; returns per-call statistics per entry key."""
    for entry in entries:
        entry.run(warmup)
        single = max(min(entry.run(1) for _ in range(3)), 1e-9)
        entry.number = max(1, min(max_calls, math.ceil(min_sample_s / single)))
        entry.samples = []
    order = list(entries)
    shuffle = random.Random(0).shuffle
    for repeat in range(repeats):
        shuffle(order)
        for entry in order:
            elapsed = entry.run(entry.number, start=repeat * entry.number)
            entry.samples.append(elapsed / entry.number)
    return {e.key: summarize(e.samples, e.number) for e in entries}


def time_gpu(
    entries: Sequence[Entry],
    *,
    repeats: int,
    rounds: int = 3,
    max_duration: float = 2.0,
) -> dict[str, Stats]:
    """CUDA-event timing with ``cupyx.profiler.benchmark``, alternating in ``rounds``."""
    from cupyx.profiler import benchmark

    per_round = max(1, math.ceil(repeats / rounds))
    for entry in entries:
        entry.samples = []
    for round_index in range(rounds):
        shift = round_index % len(entries)
        for entry in [*entries[shift:], *entries[:shift]]:
            entry.enter()
            try:
                result = benchmark(
                    entry.call,
                    entry.argsets[0],
                    n_repeat=per_round,
                    n_warmup=2,
                    max_duration=max_duration / rounds,
                )
            finally:
                entry.leave()
            entry.samples.extend(float(t) for t in np.asarray(result.gpu_times)[0])
    return {e.key: summarize(e.samples) for e in entries}
