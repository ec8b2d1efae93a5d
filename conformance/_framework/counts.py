"""A pytest plugin: test counts and test time per backend, for runs that mix backends.

One pytest process now runs several backends (``nox -s tests``), so pytest's closing line no
longer says how many tests each backend executed. This plugin prints one line per backend
(and path, once tests have one) at the end of the run::

    conformance counts: numpy-numba: 1215 passed, 199 skipped in 21.4 s
    conformance counts: jax-generic-x64: 1350 passed, 48 skipped in 80.2 s
    conformance counts: (no backend): 21 passed in 0.3 s

``.ci/run`` reads these lines. Time is the sum of the tests' setup, call and teardown, so
under pytest-xdist it is CPU-side time spread over the workers, not wall time. The suite's
conftest loads it. It works under xdist: the key travels in
``user_properties``, which xdist sends from the workers to the controller.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

import pytest

_KEY = "conformance_slot"
# The fixtures whose parameter names a test's slot; a path fixture joins in when it exists.
_SLOT_PARAMS = ("backend", "path")
_ORDER = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


def _slot(item: pytest.Item) -> str:
    params = getattr(getattr(item, "callspec", None), "params", {})
    parts = [str(params[name]) for name in _SLOT_PARAMS if name in params]
    jax = parts and parts[0].partition("-")[0] == "jax"
    if jax and os.environ.get("JAX_ENABLE_X64", "") not in ("", "0"):
        parts.append("x64")  # the float64 run of JAX is a run of its own: jax-generic-x64
    return "-".join(parts) if parts else "(no backend)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # At collection, so that tests skipped in setup (by conftest's own hook) carry it too.
    for item in items:
        item.user_properties.append((_KEY, _slot(item)))


class _Counts:
    """Tallies the reports (in the xdist controller, or the only process) and prints them."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        slot = next((str(v) for k, v in report.user_properties if k == _KEY), "(no backend)")
        self.seconds[slot] += report.duration
        outcome = _outcome(report)
        if outcome is not None:
            self.counts[slot][outcome] += 1

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.counts:
            return
        terminalreporter.section("conformance counts per backend")
        for slot in sorted(self.counts, key=lambda s: (s.startswith("("), s)):
            c = self.counts[slot]
            text = ", ".join(f"{c[k]} {k}" for k in _ORDER if c.get(k))
            terminalreporter.write_line(
                f"conformance counts: {slot}: {text} in {self.seconds[slot]:.1f} s"
            )


def _outcome(report: pytest.TestReport) -> str | None:
    """The one outcome pytest's summary counts for this phase, if it counts one."""
    if hasattr(report, "wasxfail"):
        if report.skipped:
            return "xfailed"
        if report.passed and report.when == "call":
            return "xpassed"
        return None
    if report.when == "call":
        return report.outcome
    if report.failed:  # setup or teardown
        return "error"
    if report.skipped and report.when == "setup":
        return "skipped"
    return None


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # xdist workers send their reports to the controller
        config.pluginmanager.register(_Counts(), "conformance-counts")
