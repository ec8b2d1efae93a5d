"""The timers: statistics, interleaving, rotation, calibration (no speed is asserted)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks._timing import ROTATE_BELOW_BYTES, Entry, copies_for, summarize, time_cpu, time_gpu


def test_summarize() -> None:
    stats = summarize([4.0, 1.0, 3.0, 2.0, 5.0], calls_per_sample=7)
    assert (stats.median, stats.q1, stats.q3, stats.low, stats.high) == (3.0, 2.0, 4.0, 1.0, 5.0)
    assert stats.samples == 5
    assert stats.calls_per_sample == 7
    assert stats.iqr_fraction == pytest.approx(2 / 3)
    assert stats.as_dict()["median_s"] == 3.0
    with pytest.raises(ValueError, match="at least one sample"):
        summarize([])


def test_copies_for() -> None:
    assert copies_for(ROTATE_BELOW_BYTES) == 1
    assert copies_for(ROTATE_BELOW_BYTES // 4) == 4
    assert copies_for(320) == 8
    assert copies_for(320, most=2) == 2


def test_time_cpu_interleaves_rotates_and_brackets() -> None:
    log: list[Any] = []

    def entry(name: str) -> Entry:
        return Entry(
            name,
            lambda arg: log.append((name, arg)),
            [(0,), (1,), (2,)],
            enter=lambda: log.append((name, "enter")),
            leave=lambda: log.append((name, "leave")),
        )

    entries = [entry("a"), entry("b"), entry("c")]
    stats = time_cpu(entries, repeats=4, min_sample_s=0.0, warmup=1)
    assert set(stats) == {"a", "b", "c"}
    assert all(s.samples == 4 and s.calls_per_sample == 1 for s in stats.values())
    samples = log[-4 * 3 * 3 :]  # enter, call, leave per sample
    rounds = [[samples[r * 9 + i * 3][0] for i in range(3)] for r in range(4)]
    assert all(sorted(names) == ["a", "b", "c"] for names in rounds)  # one sample each
    assert len({tuple(names) for names in rounds}) > 1  # in a different order
    for i in range(0, len(samples), 3):
        assert samples[i][1] == "enter"
        assert samples[i + 2][1] == "leave"
    args_a = [arg for name, arg in samples if name == "a" and isinstance(arg, int)]
    assert len(set(args_a)) == 3  # the input copies rotate


def test_time_cpu_batches_fast_calls() -> None:
    calls = []
    entry = Entry("fast", lambda: calls.append(1), [()])
    stats = time_cpu([entry], repeats=3, min_sample_s=1e-3, warmup=1)
    assert stats["fast"].calls_per_sample > 1
    assert stats["fast"].median < 1e-3


def test_time_gpu_with_a_stand_in(fake_cupy: Any) -> None:
    seen = []
    entries = [
        Entry("a", lambda x: seen.append(("a", x)), [(5,)]),
        Entry("b", lambda x: seen.append(("b", x)), [(6,)]),
    ]
    stats = time_gpu(entries, repeats=6, rounds=3, max_duration=1.0)
    assert stats["a"].samples == 6
    assert stats["b"].samples == 6
    assert {name for name, _ in seen[:2]} == {"a"}  # warm-up of the first round
