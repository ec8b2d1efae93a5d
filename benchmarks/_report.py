"""The JSON and Markdown outputs (derived numbers: ``_derive``; targets: ``_targets``)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import _first_call
from ._cases import format_shape
from ._ours import BY_NAME, FAMILY, VARIANTS

Row = dict[str, Any]


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n")


# ---------------------------------------------------------------------------- Markdown


def fmt_time(seconds: float | None) -> str:
    """Seconds in us / ms / s with three significant digits."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} us"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def _num(value: float | None, suffix: str = "", digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}{suffix}"


def _table(header: Sequence[str], lines: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return out


def markdown(payload: dict[str, Any]) -> str:
    """The human-readable report."""
    env = payload["environment"]
    rows: list[Row] = payload["rows"]
    gpu = env.get("gpu")
    lines = [
        "# portable_softmax benchmark",
        "",
        f"- command: `{env['command']}`",
        f"- date (UTC): {env['date_utc']}; commit {env.get('git_commit')}"
        + (" (uncommitted changes)" if env.get("git_dirty") else ""),
        f"- CPU: {env['cpu_model']}, ISA {env.get('isa', '?')}, "
        f"{_vectors(env.get('kernel_vectors'))}; {env['logical_cpus']} logical CPUs; "
        "load average at start "
        f"{env.get('load_average_at_start')}, at end {env.get('load_average_at_end')} "
        "(1, 5, 15 minutes)",
        f"- GPU: {gpu['name']} (driver {gpu['driver']}, {gpu['memory']})" if gpu else "- GPU: none",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v is not None),
        f"- path auto on NumPy tries: {', '.join(env.get('auto_fast_paths') or ['-'])}; "
        f"default threads {env.get('portable_softmax_threads')}",
        f"- settings: {payload['settings']}",
        "",
        "Implementations are timed as users call them: every call allocates a fresh output, "
        "except `ours-out-1t`, which writes into one preallocated output (`out=`). "
        "Times are per call, the median of interleaved samples; spread is the interquartile "
        "range relative to the median. **x copy floor** is the headline: the time over the "
        "copy floor, the bytes that op must move (forward: read x, write y; backward: read y "
        "and g, write dx; xent: read the logits, write the gradient) at the copy bandwidth "
        "measured in this run on one thread, paid the way the call pays it (SPEC section 4): "
        "into a fresh output (`np.copy(x)`; `y + g` for the backward) for calls that return "
        "a new array, into an existing buffer (`np.copyto`) for `out=` calls; 1.00 is the "
        "memory-bound limit. **kernel** is the path that served the call (numba's thread "
        "decision with it). "
        "GB/s counts the same bytes. x exp, the time over one `np.exp(x, out=...)` pass, is "
        "for reference only (np.exp is slow on some processors). Speedups are the other "
        "row's time over this one (above 1: this one is faster), the median of the ratios of "
        "samples taken in the same round; edge cost likewise. torch-1t runs PyTorch at 1 "
        "thread, torch-Nt at its default N; JAX (XLA) uses its default thread pool.",
        "",
        "Rows of ours (thread count, path and edge switch set before each sample and "
        "restored after it, outside the timed loop, as PyTorch's thread count):",
        "",
    ]
    lines += [f"- `{v.name}`: {v.meaning}" for v in VARIANTS]
    lines += [""] + [f"- note: {note}" for note in payload.get("notes", [])]
    lines += ["", "## SPEC section 4 targets", ""]
    lines += _table(
        ["target", "status", "measured"],
        ([t["target"], t["status"], t["detail"]] for t in payload["targets"]),
    )
    lines += ["", "## Ours against the copy floor and the peers", ""]
    lines += summary_table(rows)
    lines += _unavailable(rows)
    lines += ["", "## First call (import + first softmax, fresh processes)", ""]
    first = payload.get("first_call")
    lines += _first_call.lines(first) if first else ["Not measured in this run."]
    lines += _gpu_section(payload)
    lines += ["", "## Floors", ""]
    lines += _table(
        ["device", "shape", "dtype", "bytes", "copy", "copy GB/s", "np.exp pass (reference)"],
        (
            [
                f["device"],
                format_shape(tuple(f["shape"])),
                f["dtype"],
                str(f["nbytes"]),
                fmt_time(f["copy"]["median_s"]),
                _num(f["copy_gbps"], "", 1),
                fmt_time(f["exp"]["median_s"]) if f.get("exp") else "-",
            ]
            for f in payload["floors"]
        ),
    )
    lines += ["", "## Every row", ""]
    lines += _table(
        [
            "case",
            "impl",
            "backend",
            "threads",
            "status",
            "median",
            "spread",
            "min - max",
            "GB/s",
            "x copy floor",
            "x exp",
            "ours speedup",
        ],
        (_full_cells(r) for r in rows),
    )
    return "\n".join(lines) + "\n"


def _gpu_section(payload: dict[str, Any]) -> list[str]:
    pairs = payload.get("gpu_vs_cpu") or []
    if not pairs:
        return []
    lines = ["", "## GPU (CuPy) against CPU (NumPy), ours", ""]
    lines += _table(
        ["case", "CPU", "GPU device", "GPU with transfers", "speedup", "with transfers"],
        (
            [
                f"{p['op']} {format_shape(tuple(p['shape']))} {p['dtype']}",
                fmt_time(p["cpu_s"]),
                fmt_time(p["gpu_s"]),
                fmt_time(p["gpu_with_transfers_s"]),
                _num(p["speedup"], "x"),
                _num(p["speedup_with_transfers"], "x"),
            ]
            for p in pairs
        ),
    )
    lines += [""]
    lines += _table(
        ["op", "dtype", "measure", "GPU wins from"],
        (
            [
                c["op"],
                c["dtype"],
                c["measure"],
                format_shape(tuple(c["gpu_wins_from"])) if c["gpu_wins_from"] else "never",
            ]
            for c in payload.get("crossovers", [])
        ),
    )
    return lines


def _peers(rows: Sequence[Row]) -> list[str]:
    """Peer names in a stable order: the naive chain, SciPy, PyTorch, JAX, then the rest."""
    names = {r["impl"] for r in rows if r["impl"] not in BY_NAME}
    order = {"naive": 0, "scipy": 1, "torch-1t": 2, "jax": 4}
    return sorted(names, key=lambda n: (order.get(n, 3 if n.startswith("torch") else 5), n))


def summary_table(rows: Sequence[Row]) -> list[str]:
    """One Markdown row per row of ours that ran or failed: time, x copy floor first, edge
    cost, speedup over each peer and over the pure NumPy path, and x exp for reference."""
    peers = _peers(rows)
    versus = [*peers, "ours-numpy"] if any(r["impl"] == "ours-numpy" for r in rows) else peers
    header = ["case", "impl", "kernel", "threads", "median", "x copy floor", "GB/s", "spread"]
    header += ["edge cost", *(f"vs {p}" for p in versus), "x exp (ref.)"]
    shown = [r for r in rows if r["impl"] in FAMILY and r["status"] != "not available"]
    return _table(header, (_summary_cells(r, versus) for r in shown))


def _unavailable(rows: Sequence[Row]) -> list[str]:
    """The rows of ours that could not run, one line per (row, reason)."""
    cases: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        if r["impl"] in BY_NAME and r["status"] == "not available":
            cases[r["key"], r["reason"]] += 1
    if not cases:
        return []
    return [""] + [f"- {key}: not available ({n} cases): {why}" for (key, why), n in cases.items()]


def _case(row: Row) -> str:
    return f"{row['op']} {format_shape(tuple(row['shape']))} {row['dtype']}"


def _threads(row: Row) -> str:
    return str(row["threads"] or "default")


def _vectors(found: dict[str, Any] | None) -> str:
    """The kernels' vector width, as the report's machine line says it."""
    if not found:
        return "kernel vector width not measured"
    return (
        f"kernels use {found['width_bits']}-bit vectors (softmax float32 assembly: "
        f"{found['zmm']} zmm, {found['ymm']} ymm, {found['xmm']} xmm operands; "
        f"LLVM CPU {found['llvm_cpu']})"
    )


def _summary_cells(row: Row, versus: Sequence[str]) -> list[str]:
    kernel = row.get("kernel") or row["backend"]
    head = [_case(row), row["impl"], kernel, _threads(row)]
    if row["status"] != "ok":
        return [*head, row["status"] + ": " + row["reason"]] + ["-"] * (5 + len(versus))
    return [
        *head,
        fmt_time(row["median_s"]),
        _num(row.get("x_copy_floor")),
        _num(row["gbps"], "", 1),
        _num(100 * (row["q3_s"] - row["q1_s"]) / row["median_s"], "%", 0),
        _num(100 * row["edge_cost"], "%", 1) if "edge_cost" in row else "-",
        *(_num(row.get("speedup_vs", {}).get(p), "x") for p in versus),
        _num(row.get("x_compute_floor")),
    ]


def _full_cells(row: Row) -> list[str]:
    head = [_case(row), row["impl"], row["backend"], _threads(row)]
    if row["status"] != "ok":
        return [*head, f"{row['status']}: {row['reason']}"] + ["-"] * 7
    return [
        *head,
        "ok",
        fmt_time(row["median_s"]),
        _num(100 * (row["q3_s"] - row["q1_s"]) / row["median_s"], "%", 0),
        f"{fmt_time(row['min_s'])} - {fmt_time(row['max_s'])}",
        _num(row["gbps"], "", 1),
        _num(row.get("x_copy_floor")),
        _num(row.get("x_compute_floor")),
        _num(row.get("ours_speedup"), "x"),
    ]
