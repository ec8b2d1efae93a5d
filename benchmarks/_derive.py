"""Numbers derived from the timed rows: speedups, edge costs, GPU/CPU pairs, crossovers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._ours import BY_NAME, FAMILY

Row = dict[str, Any]


def case_key(row: Row) -> tuple[str, tuple[int, ...], str, str]:
    """Rows of one case on one device kind compare with each other."""
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
    """Add, in place (ratios by :func:`paired_ratio`, above 1: the row of ours is faster):

    * to each row of ours (``FAMILY``): ``speedup_vs``, every other row's time over its own
      (peers and the other rows of ours, so that e.g. numba against pure NumPy is there);
    * to a row of ours that has a no-edges twin: ``edge_cost``, its time over the twin's - 1;
    * to every peer row: ``ours_speedup``, its time over the ``ours`` row's.
    """
    cases: dict[tuple[Any, ...], dict[str, Row]] = defaultdict(dict)
    for row in rows:
        if row["status"] == "ok":
            cases[case_key(row)][row["impl"]] = row
    for by_impl in cases.values():
        for name in FAMILY:
            mine = by_impl.get(name)
            if mine is None:
                continue
            for other, row in by_impl.items():
                twin = other in BY_NAME and not BY_NAME[other].edges
                if other != name and not twin:
                    mine.setdefault("speedup_vs", {})[other] = paired_ratio(row, mine)
        for name, row in by_impl.items():
            variant = BY_NAME.get(name)
            if variant is not None and variant.base is not None and variant.base in by_impl:
                base = by_impl[variant.base]
                base["edge_cost"] = paired_ratio(base, row) - 1
        ours = by_impl.get("ours")
        if ours is None:
            continue
        for name, row in by_impl.items():
            if name not in BY_NAME:
                row["ours_speedup"] = paired_ratio(row, ours)


def gpu_vs_cpu(rows: Sequence[Row]) -> list[Row]:
    """Per case, CPU ours time over GPU ours time (device only, and with transfers)."""
    gpu = {case_key(r)[:3]: r for r in rows if r["key"] == "ours [cupy]" and r["status"] == "ok"}
    out = []
    for row in rows:
        if row["key"] != "ours [numpy]" or row["status"] != "ok":
            continue
        other = gpu.get(case_key(row)[:3])
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
        series = sorted(
            (p for p in pairs if (p["op"], p["dtype"]) == (op, dtype)),
            key=lambda p: int(p["nbytes"]),
        )
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
