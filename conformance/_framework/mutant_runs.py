"""Run the suite against several mutants in one process: ``python -m
conformance._framework.mutant_runs SPEC.json``.

Each mutant run is its own ``pytest.main`` (its module, ``-k`` selection, ``-x``), one after
the other in this process, so the interpreter, pytest, NumPy and numba start once, not once
per mutant (two of a run's two and a half seconds). The outcome of each run (exit code and
the node ids that failed) is printed as one JSON line per mutant; ``test_mutants`` reads them.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

PREFIX = "mutant-run "
"""Marks this module's output lines among pytest's own."""


class _Failures:
    """Collects the node ids of failed tests (any phase) of one run."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failed.append(report.nodeid)


def run(mutant: str, module: str, expr: str) -> dict[str, Any]:
    """One mutant's run: the catching check's module on NumPy, with ``-k expr``."""
    failures = _Failures()
    args = [
        module,
        "--backend",
        "numpy",
        "--impl",
        f"conformance.mutants:{mutant}",
        "-q",
        "-x",
        "-p",
        "no:cacheprovider",
        "-m",
        "not mutants",
        "-k",
        expr,
    ]
    code = pytest.main(args, plugins=[failures])
    return {"mutant": mutant, "args": args, "exit": int(code), "failed": failures.failed}


def main(argv: list[str]) -> int:
    """Run every ``[mutant, module, expr]`` of the JSON file ``argv[0]``."""
    with open(argv[0], encoding="utf-8") as spec:
        runs = json.load(spec)
    for mutant, module, expr in runs:
        outcome = run(mutant, module, expr)
        print(PREFIX + json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
