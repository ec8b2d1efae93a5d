"""First-call timing in fresh processes: cold and warm numba caches, the NumPy path."""

from __future__ import annotations

import pytest

from benchmarks import _first_call
from benchmarks._first_call import lines, measure, run_once

# Prints 2.0 on a fresh cache folder, 1.0 on one a previous run used, 3.0 on the NumPy path.
PROBE = (
    "import os; path = os.environ['PORTABLE_SOFTMAX_PATH']; "
    "d = os.environ.get('NUMBA_CACHE_DIR', ''); seen = os.path.join(d, 'seen'); "
    "print(3.0 if path == 'numpy' else 1.0 if os.path.exists(seen) else 2.0); "
    "path == 'numpy' or open(seen, 'a').close()"
)


def test_cold_runs_get_fresh_caches_and_warm_runs_reuse_one() -> None:
    result = measure(2, 3, None, snippet=PROBE)
    assert result["error"] is None
    assert result["cold"]["runs_s"] == [2.0, 2.0]
    assert result["warm"]["runs_s"] == [1.0, 1.0, 1.0]
    assert result["numpy_path"]["runs_s"] == [3.0, 3.0, 3.0]
    assert result["warm"]["median_s"] == 1.0
    text = "\n".join(lines(result))
    assert "cold cache" in text
    assert "warm cache" in text


def test_without_numba_only_the_numpy_path_runs() -> None:
    result = measure(1, 1, "numba is not installed", snippet=PROBE)
    assert result["cold"]["runs_s"] == []
    assert result["numpy_path"]["runs_s"] == [3.0]
    assert "numba is not installed" in "\n".join(lines(result))


def test_zero_runs_measure_nothing() -> None:
    result = measure(0, 0, None)
    assert result["measured"] is False
    assert "Not measured" in "\n".join(lines(result))


def test_a_failing_child_is_reported() -> None:
    result = measure(1, 1, None, snippet="raise SystemExit('no luck')")
    assert result["error"] is not None
    assert "no luck" in result["error"]
    assert "Measurement failed" in "\n".join(lines(result))


def test_the_real_snippet_on_the_numpy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_first_call, "TIMEOUT_S", 120.0)
    seconds = run_once("numpy", None)
    assert 0 < seconds < 120
