"""The PNG: effective GB/s against array size, one line per implementation and backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

Row = dict[str, Any]


def plot(rows: Sequence[Row], floors: Sequence[Row], path: Path) -> None:
    """One panel per operation and dtype; dashed lines are the copy bandwidths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["status"] == "ok"]
    keys = sorted({r["key"] for r in ok})
    palette = plt.get_cmap("tab10" if len(keys) <= 10 else "tab20")
    colors = {key: palette(i % palette.N) for i, key in enumerate(keys)}
    ops = [op for op in ("forward", "backward", "xent") if any(r["op"] == op for r in rows)]
    dtypes = sorted({r["dtype"] for r in rows}) or ["float32"]
    fig, axes = plt.subplots(
        max(1, len(ops)),
        len(dtypes),
        figsize=(6 * len(dtypes), 3.6 * max(1, len(ops))),
        squeeze=False,
    )
    for i, op in enumerate(ops or ["forward"]):
        for j, dtype in enumerate(dtypes):
            ax = axes[i][j]
            for key in keys:
                series = sorted(
                    (r for r in ok if r["key"] == key and r["op"] == op and r["dtype"] == dtype),
                    key=lambda r: r["nbytes"],
                )
                if series:
                    ax.plot(
                        [r["nbytes"] for r in series],
                        [r["gbps"] for r in series],
                        marker="o",
                        label=key,
                        color=colors[key],
                        linewidth=2.2 if key.startswith("ours") else 1.2,
                    )
            for device in ("cpu", "gpu"):
                line = sorted(
                    (f for f in floors if f["device"] == device and f["dtype"] == dtype),
                    key=lambda f: f["nbytes"],
                )
                if line:
                    ax.plot(
                        [f["nbytes"] for f in line],
                        [f["copy_gbps"] for f in line],
                        linestyle="--",
                        color="grey" if device == "cpu" else "black",
                        label=f"copy bandwidth [{device}]",
                    )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{op}, {dtype}")
            ax.set_xlabel("array size (bytes)")
            ax.set_ylabel("effective GB/s (higher is better)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
