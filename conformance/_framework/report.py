"""The conformance matrix: check x backend x implementation, as JSON and Markdown.

``pytest conformance --report DIR`` writes ``DIR/conformance-matrix.json`` (every test with
its outcome, reason and worst recorded error) and ``DIR/conformance-matrix.md`` (one row per
check, one column per backend and implementation). ``--report-append`` merges into an
existing JSON first, so separate runs (one per backend, as nox does) build one matrix.
"""

from __future__ import annotations

import datetime
import json
import math
import platform
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from . import errors
from .provided import DIFFERENT_CONVENTION, NOT_PROVIDED

CONCERNS = ("values", "stability", "properties", "derivatives", "api", "document")
# Module-name fragments that tag a module with a concern when no marker says otherwise.
_CONCERN_HINTS = (
    ("api", "api"),
    ("document", "document"),
    ("source", "document"),
    ("propert", "properties"),
    ("hypothesis", "properties"),
    ("deriv", "derivatives"),
    ("grad", "derivatives"),
    ("backward", "derivatives"),
    ("jvp", "derivatives"),
    ("stab", "stability"),
    ("edge", "stability"),
    ("value", "values"),
    ("accura", "values"),
)
# Order of precedence when one cell aggregates several parametrised tests.
STATUSES = ("fail", "error", DIFFERENT_CONVENTION, "pass", NOT_PROVIDED, "skipped", "xfail")
_SHORT = {DIFFERENT_CONVENTION: "convention", NOT_PROVIDED: "n/p"}


def concern_of(item: pytest.Item) -> str:
    """The concern of a test: its concern marker, else a guess from the module name."""
    for concern in CONCERNS:
        if item.get_closest_marker(concern) is not None:
            return concern
    module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
    for hint, concern in _CONCERN_HINTS:
        if hint in module:
            return concern
    return "other"


@dataclass
class TestResult:
    """One test of the run, as the JSON stores it."""

    nodeid: str
    check: str
    module: str
    concern: str
    backend: str
    impl: str
    outcome: str
    reason: str = ""
    error_eps: float | None = None
    bound_eps: float | None = None
    error_context: str = ""


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def classify(report: pytest.TestReport) -> tuple[str, str]:
    """Outcome and reason of one phase report."""
    if hasattr(report, "wasxfail"):
        return "xfail", str(report.wasxfail)
    if report.passed:
        return "pass", ""
    if report.skipped:
        reason = _skip_reason(report)
        for status in (NOT_PROVIDED, DIFFERENT_CONVENTION):
            if reason.startswith(status):
                return status, reason
        return "skipped", reason
    if report.when == "call":
        # the assertion's first line says what broke; the test name is in the row already
        text = getattr(report, "longreprtext", "") or ""
        message = next((ln[1:].strip() for ln in text.splitlines() if ln.startswith("E ")), "")
        return "fail", message or report.head_line or ""
    return "error", f"{report.when} failed"


class MatrixPlugin:
    """Collects outcomes during the run and writes the matrix at the end."""

    def __init__(self, out_dir: Path, append: bool, meta: dict[str, Any]) -> None:
        self.out_dir = out_dir
        self.append = append
        self.meta = meta
        self.items: dict[str, dict[str, str]] = {}
        self.results: dict[str, TestResult] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            params = getattr(getattr(item, "callspec", None), "params", {})
            backend = params.get("backend", "-")
            impl = params.get("impl", "-")
            name = getattr(item, "originalname", item.name)
            cls = item.cls.__name__ + "." if getattr(item, "cls", None) else ""
            self.items[item.nodeid] = {
                "check": cls + name,
                "module": item.module.__name__.rsplit(".", 1)[-1] if item.module else "",
                "concern": concern_of(item),
                "backend": str(getattr(backend, "name", backend)),
                "impl": str(impl),
            }

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Any:
        errors.start_test()
        yield

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        info = self.items.get(report.nodeid)
        if info is None:
            return
        outcome, reason = classify(report)
        current = self.results.get(report.nodeid)
        # setup gives the outcome when the test never runs; call overrides a passed setup;
        # a failing teardown turns a pass into an error.
        replace = (
            current is None
            or report.when == "call"
            or (report.when == "teardown" and outcome == "error" and current.outcome == "pass")
        )
        if replace:
            self.results[report.nodeid] = TestResult(
                report.nodeid, outcome=outcome, reason=reason, **info
            )
        if report.when == "teardown":
            worst = errors.finish_test()
            result = self.results[report.nodeid]
            if worst is not None:
                result.error_eps, result.bound_eps = worst.error_eps, worst.bound_eps
                result.error_context = worst.context

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        json_path = self.out_dir / "conformance-matrix.json"
        tests = [asdict(r) for r in self.results.values()]
        meta = dict(self.meta)
        if self.append and json_path.exists():
            old = json.loads(json_path.read_text())
            mine = {t["nodeid"] for t in tests}
            tests = [t for t in old.get("tests", []) if t["nodeid"] not in mine] + tests
            meta["runs"] = [*old.get("meta", {}).get("runs", []), self.meta]
        else:
            meta["runs"] = [self.meta]
        doc = {"meta": meta, "tests": tests, "cells": build_cells(tests)}
        json_path.write_text(json.dumps(doc, indent=1, default=_json_default) + "\n")
        (self.out_dir / "conformance-matrix.md").write_text(render_markdown(doc))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return str(obj)


def build_cells(tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aggregate tests into cells keyed by (concern, check, backend, impl)."""
    groups: dict[tuple[str, str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for t in tests:
        groups[(t["concern"], t["module"], t["check"], t["backend"], t["impl"])].append(t)
    cells = []
    for (concern, module, check, backend, impl), members in sorted(groups.items()):
        counts = Counter(m["outcome"] for m in members)
        status = next(s for s in STATUSES if counts.get(s))
        worst = max(
            (m for m in members if m.get("error_eps") is not None),
            key=lambda m: _ratio(m["error_eps"], m["bound_eps"]),
            default=None,
        )
        reasons = sorted({m["reason"] for m in members if m["outcome"] != "pass" and m["reason"]})
        cells.append(
            {
                "concern": concern,
                "module": module,
                "check": check,
                "backend": backend,
                "impl": impl,
                "status": status,
                "counts": dict(counts),
                "reasons": reasons,
                "worst_error_eps": None if worst is None else worst["error_eps"],
                "bound_eps": None if worst is None else worst["bound_eps"],
            }
        )
    return cells


def _ratio(err: Any, bound: Any) -> float:
    err, bound = float(err), float(bound)
    if math.isnan(err):
        return math.inf
    return err / bound if bound else (0.0 if err == 0 else math.inf)


def _cell_text(cell: dict[str, Any]) -> str:
    counts: dict[str, int] = cell["counts"]
    total = sum(counts.values())
    status = cell["status"]
    text = _SHORT.get(status, status)
    if status in ("fail", "error"):
        text = f"**{status.upper()}** {counts[status]}/{total}"
    elif len(counts) > 1:
        text += " " + ", ".join(
            f"{_SHORT.get(s, s)} {counts[s]}" for s in STATUSES if counts.get(s) and s != status
        ).join(("(", ")"))
    if cell["worst_error_eps"] is not None:
        text += f" {float(cell['worst_error_eps']):.3g}/{float(cell['bound_eps']):.3g} eps"
    return text


def render_markdown(doc: dict[str, Any]) -> str:
    """The matrix as Markdown: one table row per check, one column per backend / impl."""
    idle = idle_columns(doc["tests"])
    cells = [c for c in doc["cells"] if (c["impl"], c["backend"]) not in idle]
    columns = sorted({(c["impl"], c["backend"]) for c in cells})
    rows: dict[tuple[str, str, str], dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
    for c in cells:
        rows[(c["concern"], c["module"], c["check"])][(c["impl"], c["backend"])] = c
    meta = doc["meta"]
    lines = [
        "# Conformance matrix",
        "",
        f"Generated {meta.get('date', '?')} on {meta.get('machine', '?')}; "
        f"{len(doc['tests'])} tests. Cells: pass / **FAIL** k/n / n/p (not provided) / "
        "convention (a documented different convention) / skipped; mixed outcomes are "
        "counted in brackets; `e/b eps` is the worst recorded error against its bound.",
        "",
    ]
    for run in meta.get("runs", [meta]):
        header = run.get("header", [])
        if header:
            lines += [
                f"Run `pytest {' '.join(run.get('args', []))}` ({run.get('date', '?')}, "
                f"Python {run.get('python', '?')}):",
                "",
            ]
            lines += [f"- {h.removeprefix('conformance ')}" for h in header]
            lines.append("")
    totals: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for t in doc["tests"]:
        totals[(t["impl"], t["backend"])][t["outcome"]] += 1
    lines += [
        "| impl / backend | " + " | ".join(STATUSES) + " |",
        "|---|" + "---:|" * len(STATUSES),
    ]
    for col in columns:
        lines.append(
            f"| {col[0]} / {col[1]} | "
            + " | ".join(str(totals[col].get(s, 0)) for s in STATUSES)
            + " |"
        )
    if idle:
        lines += ["", "Not run (left out of the tables below):", ""]
        lines += [f"- {i} / {b}: {reason}" for (i, b), reason in sorted(idle.items())]
    lines += ["", *render_summary(doc)]
    lines += [
        "",
        "| concern | check | " + " | ".join(f"{i} / {b}" for i, b in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for (concern, module, check), by_col in sorted(rows.items()):
        texts = [_cell_text(by_col[col]) if col in by_col else "" for col in columns]
        lines.append(f"| {concern} | `{module}::{check}` | " + " | ".join(texts) + " |")
    notes = sorted(
        {
            (c["impl"], c["backend"], c["check"], r)
            for c in cells
            for r in c["reasons"]
            if c["status"] != "pass" or r
        }
    )
    if notes:
        lines += ["", "## Reasons (failures, not provided, conventions, skips)", ""]
        for impl, backend, check, reason in notes:
            lines.append(f"- {impl} / {backend} / `{check}`: {reason.splitlines()[0][:300]}")
    return "\n".join(lines) + "\n"


_RAN = ("pass", "fail", "error", DIFFERENT_CONVENTION, "xfail")


def idle_columns(tests: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """Columns (impl, backend) where no test ran at all, with the most common reason.

    An implementation that does not take a backend's arrays, or a backend that is missing,
    makes every test of its column "not provided" or skipped; such columns say nothing per
    check, so the tables leave them out and list them once.
    """
    ran: set[tuple[str, str]] = set()
    reasons: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for t in tests:
        col = (t["impl"], t["backend"])
        if t["outcome"] in _RAN:
            ran.add(col)
        reasons[col][t["reason"].splitlines()[0] if t["reason"] else t["outcome"]] += 1
    return {col: reason.most_common(1)[0][0] for col, reason in reasons.items() if col not in ran}


def render_summary(doc: dict[str, Any]) -> list[str]:
    """Concern x implementation: pass / fail / not provided / convention counts, worst error.

    Compact enough for a README: every backend an implementation ran on counts in its
    column (idle columns left out); the worst recorded error is the one nearest its bound.
    """
    idle = idle_columns(doc["tests"])
    tests = [t for t in doc["tests"] if (t["impl"], t["backend"]) not in idle]
    impls = sorted({t["impl"] for t in tests if t["impl"] != "-"})
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    worst: dict[tuple[str, str], tuple[float, Any, Any]] = {}
    for t in tests:
        key = (t["concern"], t["impl"])
        counts[key][t["outcome"]] += 1
        # errors of xfails and of convention skips say nothing about the promises kept
        if t.get("error_eps") is not None and t["outcome"] in ("pass", "fail"):
            r = _ratio(t["error_eps"], t["bound_eps"])
            if key not in worst or r > worst[key][0]:
                worst[key] = (r, t["error_eps"], t["bound_eps"])
    lines = [
        "Summary (tests per concern: pass / **fail** / not provided / different convention; "
        "worst error / its bound in eps):",
        "",
        "| concern | " + " | ".join(impls) + " |",
        "|---|" + "---|" * len(impls),
    ]
    for concern in sorted({c for c, i in counts if i in impls}):
        cells = []
        for impl in impls:
            c = counts.get((concern, impl))
            if not c:
                cells.append("")
                continue
            fail = c["fail"] + c["error"]
            text = (
                f"{c['pass']} / {f'**{fail}**' if fail else 0} / {c[NOT_PROVIDED]} / "
                f"{c[DIFFERENT_CONVENTION]}"
            )
            if (concern, impl) in worst:
                _, e, b = worst[(concern, impl)]
                text += f"; {float(e):.3g}/{float(b):.3g}"
            cells.append(text)
        lines.append(f"| {concern} | " + " | ".join(cells) + " |")
    return lines


REPO_ROOT = Path(__file__).resolve().parents[2]


def source_location(obj: Any, root: Path = REPO_ROOT) -> str:
    """Where an implementation under test comes from, for the report's header.

    A file inside the repository as a path relative to its root (``portable_softmax/__init__.py``),
    so that a committed report names no folder of the machine it ran on; anything else (an
    installed package, an object without a file) by its module's name.
    """
    file = getattr(obj, "__file__", None)
    if file:
        try:
            return Path(file).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    module = getattr(obj, "__name__", None) or getattr(obj, "__module__", None)
    return module if isinstance(module, str) else type(obj).__module__


def run_meta(config: pytest.Config, header: list[str]) -> dict[str, Any]:
    """Description of this run for the JSON."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {platform.processor() or platform.platform()}",
        "python": platform.python_version(),
        "args": list(config.invocation_params.args),
        "header": header,
    }
