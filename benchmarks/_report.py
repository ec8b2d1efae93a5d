"""Derived numbers (speedups, edge cost, GPU/CPU), the SPEC section 4 targets, and the
JSON and Markdown outputs."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._cases import format_shape

Row = dict[str, Any]

BIG_BYTES = 64 * 2**20
"""SPEC section 4: "arrays of 64 MiB and more" ((4096, 4096) float32 is exactly 64 MiB)."""
MB = 10**6
GPU_BIG_BYTES = 256 * 2**20

CPU_PEERS = ("naive", "scipy", "torch-1t", "jax")


def _case_key(row: Row) -> tuple[str, tuple[int, ...], str, str]:
    return row["op"], tuple(row["shape"]), row["dtype"], row["device"]


def paired_ratio(slow: Row, fast: Row) -> float:
    """``slow`` time over ``fast`` time: the median of the per-round ratios when both have
    one sample per round (taken side by side, so that bursts of load from other processes
    cancel), else the ratio of the medians."""
    a, b = slow.get("samples_s"), fast.get("samples_s")
    if a and b and len(a) == len(b):
        return float(np.median(np.asarray(a) / np.asarray(b)))
    return float(slow["median_s"] / fast["median_s"])


def derive(rows: Sequence[Row]) -> None:
    """Add ``speedup_vs`` (peer time / ours) and ``edge_cost`` to the ``ours`` rows, and
    ``ours_speedup`` to each peer row, in place (see :func:`paired_ratio`)."""
    ours = {_case_key(r): r for r in rows if r["impl"] == "ours" and r["status"] == "ok"}
    for row in rows:
        mine = ours.get(_case_key(row))
        if mine is None or row["status"] != "ok" or row is mine:
            continue
        if row["impl"] == "ours-noedges":
            mine["edge_cost"] = paired_ratio(mine, row) - 1
            continue
        ratio = paired_ratio(row, mine)
        row["ours_speedup"] = ratio
        mine.setdefault("speedup_vs", {})[row["impl"]] = ratio


def gpu_vs_cpu(rows: Sequence[Row]) -> list[Row]:
    """Per case, CPU ours time over GPU ours time (device only, and with transfers)."""
    gpu = {_case_key(r)[:3]: r for r in rows if r["key"] == "ours [cupy]" and r["status"] == "ok"}
    out = []
    for row in rows:
        if row["key"] != "ours [numpy]" or row["status"] != "ok":
            continue
        other = gpu.get(_case_key(row)[:3])
        if other is None:
            continue
        transfers = other.get("with_transfers", {}).get("median_s")
        out.append(
            {
                "op": row["op"],
                "shape": row["shape"],
                "dtype": row["dtype"],
                "nbytes": row["nbytes"],
                "cpu_s": row["median_s"],
                "gpu_s": other["median_s"],
                "gpu_with_transfers_s": transfers,
                "speedup": row["median_s"] / other["median_s"],
                "speedup_with_transfers": None if not transfers else row["median_s"] / transfers,
            }
        )
    return out


def crossovers(pairs: Sequence[Row]) -> list[Row]:
    """Per op and dtype, the smallest size from which on the GPU is always faster."""
    out = []
    for op, dtype in sorted({(p["op"], p["dtype"]) for p in pairs}):
        series = sorted((p for p in pairs if (p["op"], p["dtype"]) == (op, dtype)), key=_bytes)
        for field in ("speedup", "speedup_with_transfers"):
            wins_from = None
            for p in reversed(series):
                if p[field] is None or p[field] <= 1:
                    break
                wins_from = p
            out.append(
                {
                    "op": op,
                    "dtype": dtype,
                    "measure": "device time" if field == "speedup" else "with transfers",
                    "gpu_wins_from": None if wins_from is None else wins_from["shape"],
                    "gpu_wins_from_bytes": None if wins_from is None else wins_from["nbytes"],
                }
            )
    return out


def _bytes(row: Row) -> int:
    return int(row["nbytes"])


def _ok(rows: Iterable[Row], **match: Any) -> list[Row]:
    return [r for r in rows if r["status"] == "ok" and all(r.get(k) == v for k, v in match.items())]


def _target(ident: str, text: str, ratios: list[tuple[str, float]], ok: Any, how: str) -> Row:
    if not ratios:
        return {"id": ident, "target": text, "status": "not measured", "detail": "no such case run"}
    met = all(ok(value) for _, value in ratios)
    worst = ", ".join(f"{name}: {value:.2f}" for name, value in ratios)
    status = "met" if met else "NOT met"
    return {"id": ident, "target": text, "status": status, "detail": f"{how} {worst}"}


def _speedups(
    rows: Sequence[Row], ops: Sequence[str], peers: Sequence[str], at_least: int
) -> list[tuple[str, float]]:
    found = []
    for row in _ok(rows, key="ours [numpy]"):
        if row["op"] not in ops or row["nbytes"] < at_least:
            continue
        for peer in peers:
            value = row.get("speedup_vs", {}).get(peer)
            if value is not None:
                name = f"{row['op']} {format_shape(tuple(row['shape']))} {row['dtype']} vs {peer}"
                found.append((name, value))
    return found


def targets(rows: Sequence[Row]) -> list[Row]:
    """SPEC section 4's targets, each met / NOT met / not measured, with the ratios."""
    out = [
        _target(
            "cpu-forward",
            "CPU: forward >= 2x faster than the naive chain and SciPy, arrays >= 64 MiB",
            _speedups(rows, ["forward"], ["naive", "scipy"], BIG_BYTES),
            lambda v: v >= 2,
            "speedups:",
        ),
        _target(
            "cpu-xent",
            "CPU: cross-entropy >= 2x faster than the naive chain, arrays >= 64 MiB",
            _speedups(rows, ["xent"], ["naive"], BIG_BYTES),
            lambda v: v >= 2,
            "speedups:",
        ),
        _target(
            "cpu-backward",
            "CPU: backward >= 1.5x faster than the naive chain, arrays >= 64 MiB",
            _speedups(rows, ["backward"], ["naive"], BIG_BYTES),
            lambda v: v >= 1.5,
            "speedups:",
        ),
        _target(
            "cpu-torch",
            "CPU: no slower than PyTorch at the same thread count (1), arrays >= 64 MiB",
            _speedups(rows, ["forward", "backward", "xent"], ["torch-1t"], BIG_BYTES),
            lambda v: v >= 1,
            "speedups:",
        ),
    ]
    small = _speedups(rows, ["forward", "backward", "xent"], ["naive", "scipy"], MB)
    worst = sorted(small, key=lambda item: item[1])[:3]
    out.append(
        _target(
            "cpu-1mb",
            "CPU: arrays >= 1 MB never slower than the naive chain or SciPy",
            worst if all(v >= 1 for _, v in small) else [i for i in small if i[1] < 1],
            lambda v: v >= 1,
            f"{len(small)} comparisons; the lowest speedups:" if small else "",
        )
    )
    tiny = [
        (f"forward 8x10 {r['dtype']} (us)", r["median_s"] * 1e6)
        for r in _ok(rows, key="ours [numpy]", op="forward")
        if r["shape"] == [8, 10]
    ]
    out.append(
        _target(
            "cpu-small",
            "CPU: (8, 10) forward under 20 us a call",
            tiny,
            lambda v: v < 20,
            "median:",
        )
    )
    edges = [
        (f"{r['op']} {format_shape(tuple(r['shape']))} {r['dtype']}", r["edge_cost"])
        for r in _ok(rows, key="ours [numpy]")
        if "edge_cost" in r
    ]
    out.append(
        _target(
            "cpu-edges",
            "CPU fast path: edge handling costs at most 10% (time with / without - 1)",
            sorted(edges, key=lambda item: -item[1])[:4] if edges else [],
            lambda v: v <= 0.10,
            f"{len(edges)} cases, the largest costs:",
        )
    )
    if edges and any(v > 0.10 for _, v in edges):
        out[-1]["status"] = "NOT met"
    moon = []
    for row in _ok(rows, key="ours [numpy]", dtype="float32"):
        if row["shape"] == [4096, 4096] and row["op"] in ("forward", "backward"):
            moon.append((f"{row['op']} x compute floor", row.get("x_compute_floor") or math.nan))
    out.append(
        _target(
            "moonshot",
            "Moonshot: forward/backward (4096, 4096) float32 within 1.5x of one np.exp pass",
            moon,
            lambda v: v <= 1.5,
            "ratios:",
        )
    )
    gpu_fraction = [
        (
            f"{r['op']} {format_shape(tuple(r['shape']))} copy-bandwidth fraction",
            1 / r["x_copy_floor"],
        )
        for r in _ok(rows, key="ours [cupy]", dtype="float32")
        if r["op"] in ("forward", "backward") and r["nbytes"] >= GPU_BIG_BYTES
    ]
    out.append(
        _target(
            "gpu-bandwidth",
            "GPU: float32 >= 256 MiB forward/backward at >= 80% of the copy bandwidth",
            gpu_fraction,
            lambda v: v >= 0.8,
            "fractions:",
        )
    )
    torch_gpu = [
        (
            f"{r['op']} {format_shape(tuple(r['shape']))} {r['dtype']} vs torch",
            r["speedup_vs"]["torch"],
        )
        for r in _ok(rows, key="ours [cupy]")
        if r["nbytes"] >= GPU_BIG_BYTES and "torch" in r.get("speedup_vs", {})
    ]
    out.append(
        _target(
            "gpu-torch",
            "GPU: no slower than torch on the same card, >= 256 MiB",
            torch_gpu,
            lambda v: v >= 1,
            "speedups:",
        )
    )
    return out


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
        f"- CPU: {env['cpu_model']}, {env['logical_cpus']} logical CPUs; load average at start "
        f"{env.get('load_average_at_start')}, at end {env.get('load_average_at_end')} "
        "(1, 5, 15 minutes)",
        f"- GPU: {gpu['name']} (driver {gpu['driver']}, {gpu['memory']})" if gpu else "- GPU: none",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v is not None),
        f"- settings: {payload['settings']}",
        "",
        "Implementations are timed as users call them: every call allocates a fresh output. "
        "Times are per call, the median of interleaved samples; spread is the interquartile "
        "range relative to the median. GB/s counts the bytes that must move (forward: read x, "
        "write y; backward: read y and g, write dx; xent: read logits, write the gradient). "
        "x copy = time over the copy floor (those bytes at the copy bandwidth measured in "
        "this run); x exp = time over one `np.exp(x, out=...)` pass (CPU). Speedups are the "
        "peer's time over ours (above 1: ours is faster), the median of the ratios of samples "
        "taken in the same round; edge cost likewise. NumPy is single-threaded; "
        "torch-1t runs at 1 thread, torch-Nt at its default N; JAX (XLA) uses its default "
        "thread pool.",
    ]
    for note in payload.get("notes", []):
        lines.append(f"- note: {note}")
    lines += ["", "## SPEC section 4 targets", ""]
    lines += _table(
        ["target", "status", "measured"],
        ([t["target"], t["status"], t["detail"]] for t in payload["targets"]),
    )
    lines += ["", "## Ours against the floors and the peers", ""]
    lines += summary_table(rows)
    pairs = payload.get("gpu_vs_cpu") or []
    if pairs:
        lines += ["", "## GPU (CuPy) against CPU (NumPy), ours", ""]
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
    lines += ["", "## Floors", ""]
    lines += _table(
        ["device", "shape", "dtype", "bytes", "copy", "copy GB/s", "np.exp pass"],
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
            "x copy",
            "x exp",
            "ours speedup",
        ],
        (_full_cells(r) for r in rows),
    )
    return "\n".join(lines) + "\n"


def summary_table(rows: Sequence[Row]) -> list[str]:
    """One Markdown row per ``ours`` case: time, floors, edge cost, speedup per peer."""
    peers = sorted({r["impl"] for r in rows if r["impl"] not in ("ours", "ours-noedges")})
    header = ["case", "backend", "median", "spread", "GB/s", "x copy", "x exp", "edge cost"]
    return _table(
        header + [f"vs {p}" for p in peers],
        (_summary_cells(r, peers) for r in rows if r["impl"] == "ours"),
    )


def _case(row: Row) -> str:
    return f"{row['op']} {format_shape(tuple(row['shape']))} {row['dtype']}"


def _summary_cells(row: Row, peers: Sequence[str]) -> list[str]:
    if row["status"] != "ok":
        return [_case(row), row["backend"], row["status"] + ": " + row["reason"]] + ["-"] * (
            5 + len(peers)
        )
    cells = [
        _case(row),
        row["backend"],
        fmt_time(row["median_s"]),
        _num(100 * (row["q3_s"] - row["q1_s"]) / row["median_s"], "%", 0),
        _num(row["gbps"], "", 1),
        _num(row.get("x_copy_floor")),
        _num(row.get("x_compute_floor")),
        _num(100 * row["edge_cost"], "%", 1) if "edge_cost" in row else "-",
    ]
    return cells + [_num(row.get("speedup_vs", {}).get(p), "x") for p in peers]


def _full_cells(row: Row) -> list[str]:
    head = [_case(row), row["impl"], row["backend"], str(row["threads"] or "default")]
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
