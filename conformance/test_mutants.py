"""The suite catches broken implementations: each mutant in ``conformance.mutants`` fails it.

For every mutant the suite runs in a subprocess on NumPy, restricted (its module and ``-k``)
to the check that should catch the defect, and must exit with "tests failed" and name that
check. The runs share one subprocess (``_framework/mutant_runs.py``): a process costs two
seconds to start, a run half a second. Deselect with ``-m "not mutants"``; the tests are
skipped when the run does not test portable_softmax (the mutants wrap it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import portable_softmax
from conformance._framework.mutant_runs import PREFIX
from conformance.mutants import MUTANTS

# one worker runs them all: the module fixture starts the subprocess once
pytestmark = [pytest.mark.mutants, pytest.mark.xdist_group("mutants")]

ROOT = Path(__file__).resolve().parent.parent

# mutant -> (the check that must catch it, the -k expression that selects it)
CATCHES: dict[str, tuple[str, str]] = {
    "diagonal_backward": (
        "test_source_document.py::test_flaw_diagonal_only_backward",
        "test_flaw_diagonal_only_backward",
    ),
    "no_max_shift": ("test_stability.py::test_row5_finite_extremes_never_nan", "row5"),
    "nan_for_neg_inf_rows": ("test_stability.py::test_row4_no_finite_entry", "row4"),
    "float32_to_float64": ("test_api_contract.py::test_kind_kept", "test_kind_kept"),
    "mutates_input": (
        "test_api_contract.py::test_inputs_not_mutated",
        "test_inputs_not_mutated",
    ),
    "off_by_1e4": ("test_golden.py::test_golden_values", "test_golden_values"),
    "mean_counts_ignored": (
        "test_properties.py::test_cross_entropy_mean_is_sum_over_weights",
        "test_cross_entropy_mean_is_sum_over_weights",
    ),
    "axis_ignored": (
        "test_values.py::test_random_and_adversarial",
        "test_random_and_adversarial and axis0",
    ),
}


def _tests_portable_softmax(config: pytest.Config) -> bool:
    specs = config.getoption("impl") or [os.environ.get("PORTABLE_SOFTMAX_IMPL", "")]
    names = {s.strip() for spec in specs for s in spec.split(",") if s.strip()}
    return not names or "portable_softmax" in names


def _selects_numpy(config: pytest.Config) -> bool:
    """Whether this run's backends include NumPy, the backend every mutant run uses."""
    specs = config.getoption("backend") or [os.environ.get("PORTABLE_SOFTMAX_BACKENDS", "")]
    names = {s.strip() for spec in specs for s in spec.split(",") if s.strip()}
    return not names or "numpy" in names


def test_every_mutant_has_a_catching_check() -> None:
    """The table above covers every mutant (a new mutant needs its check)."""
    assert sorted(CATCHES) == sorted(MUTANTS)


_HAS_CROSS_ENTROPY = hasattr(portable_softmax, "cross_entropy")


def _batch() -> list[str]:
    """The mutants this package can run (cross-entropy's needs the function)."""
    return [m for m in sorted(MUTANTS) if m != "mean_counts_ignored" or _HAS_CROSS_ENTROPY]


@pytest.fixture(scope="module")
def mutant_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every mutant's run, in one subprocess (``mutant_runs``): mutant -> outcome."""
    runs = [[m, f"conformance/{CATCHES[m][0].partition('::')[0]}", CATCHES[m][1]] for m in _batch()]
    spec = tmp_path_factory.mktemp("mutants") / "runs.json"
    spec.write_text(json.dumps(runs), encoding="utf-8")
    cmd = [sys.executable, "-m", "conformance._framework.mutant_runs", str(spec)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    for key in ("PORTABLE_SOFTMAX_BACKENDS", "PORTABLE_SOFTMAX_IMPL", "PORTABLE_SOFTMAX_XP"):
        env.pop(key, None)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    outcomes = {}
    for line in proc.stdout.splitlines():
        if line.startswith(PREFIX):
            outcome = json.loads(line[len(PREFIX) :])
            outcomes[outcome["mutant"]] = outcome
    tail = "\n".join(out.splitlines()[-25:])
    assert proc.returncode == 0, f"the mutant runs broke (exit {proc.returncode}):\n{tail}"
    return outcomes


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_suite_catches_mutant(request: pytest.FixtureRequest, mutant: str) -> None:
    """``pytest <module> --impl conformance.mutants:<mutant> -k <expr>`` fails in the right
    check (run in one subprocess for all mutants, a pytest run each)."""
    if not _tests_portable_softmax(request.config):
        pytest.skip("the mutants wrap portable_softmax, which this run does not test")
    if not _selects_numpy(request.config):
        # One run per mutant is enough: the numpy session has them (no repeat per backend).
        pytest.skip("the mutant runs use NumPy; they run where numpy is selected")
    if mutant not in _batch():
        pytest.skip("portable_softmax has no cross_entropy")
    outcome = request.getfixturevalue("mutant_outcomes").get(mutant)
    assert outcome is not None, f"mutant {mutant}: no outcome from the mutant runs"
    check = CATCHES[mutant][0]
    how = f"$ pytest {' '.join(outcome['args'])}\nfailed: {outcome['failed']}"
    assert outcome["exit"] == 1, (
        f"mutant {mutant}: exit code {outcome['exit']}, but should be 1 (tests failed)\n{how}"
    )
    assert any(nodeid.startswith(f"conformance/{check}[") for nodeid in outcome["failed"]), (
        f"mutant {mutant}: the suite failed, but not in {check}\n{how}"
    )
