"""The PNGs: how close each case comes to the copy floor, ours against the peers.

Every point is one row's fraction of the copy bandwidth, ``1 / x_copy_floor``: 1.0 means the
call moved its bytes as fast as a plain copy of the same arrays (the memory-bound limit),
0.1 means it took ten times as long. Two figures, one panel per operation in each:

* ``benchmark.png``: the user-facing rows, ``ours`` and ``ours-1t`` in strong blues against
  the peers (torch in muted red, the others in greys and muted colours);
* ``benchmark-variants.png``: every ``ours*`` row (the paths, ``out=`` and thread variants),
  each ``-noedges`` twin drawn hollow in the colour of the row it switches the edges off for.

Only rows with ``status == "ok"`` and a copy floor are drawn. GPU rows share the panels,
labelled ``<impl> [gpu]`` and drawn as stars; their fraction is of the GPU's own copy
bandwidth, so 1.0 means memory bound on either device. Marker shapes: circle = default
threads, triangle = one thread. matplotlib is imported only when a figure is drawn, so the
harness runs without it until then (the call raises ImportError).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._cases import OPS, format_shape

Row = dict[str, Any]
Style = dict[str, Any]
Styler = Callable[[str], Style]
Order = Callable[[str], tuple[Any, ...]]

# ours strong, peers muted; the marker says the threads (circle: default, triangle: one)
_PEERS: dict[str, Style] = {
    "ours": {"color": "#0b3d91", "marker": "o", "markersize": 8},
    "ours-1t": {"color": "#2f8fea", "marker": "^", "markersize": 8},
    "torch": {"color": "#d08c7a", "marker": "o"},
    "torch-1t": {"color": "#d08c7a", "marker": "^"},
    "direct": {"color": "#7f7f7f", "marker": "s"},
    "naive": {"color": "#b0b0b0", "marker": "D"},
    "scipy": {"color": "#93b89a", "marker": "v"},
    "jax": {"color": "#b4a2cf", "marker": "P"},
}
_VARIANT_COLORS = ("#2f8fea", "#e07b00", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_TWIN = "-noedges"
_DTYPES = {"float32": "f32", "float64": "f64"}


def variants_path(path: Path) -> Path:
    """Where the variants figure goes beside ``path``: ``benchmark-variants.png``."""
    return path.with_name(f"{path.stem}-variants{path.suffix}")


def plot(payload: Mapping[str, Any], path: Path) -> list[Path]:
    """Write the main figure to ``path`` and the variants figure beside it.

    Parameters
    ----------
    payload
        The run's payload, as written to ``benchmark.json``: ``rows`` are drawn,
        ``environment`` names the CPU (and the GPU, when GPU rows are drawn).
    path
        The main figure's file; the variants go to :func:`variants_path` of it.

    Returns
    -------
    list of Path
        The two files written (also when no row could be drawn: they then say so).
    """
    import matplotlib

    matplotlib.use("Agg")
    rows = [r for r in payload.get("rows", []) if _drawable(r)]
    env = payload.get("environment") or {}
    main = [r for r in rows if r["impl"] in ("ours", "ours-1t") or not _is_ours(r)]
    variants = [r for r in rows if _is_ours(r)]
    machine = _machine(env, rows)
    out = [path, variants_path(path)]
    _figure(main, _peer_order, _peer_style, f"ours against the peers\n{machine}", out[0])
    title = f"our path variants and edge-switch twins\n{machine}"
    _figure(variants, _variant_order, _variant_style(variants), title, out[1])
    return out


def _drawable(row: Row) -> bool:
    floor = row.get("x_copy_floor")
    return row.get("status") == "ok" and isinstance(floor, (int, float)) and floor > 0


def _is_ours(row: Row) -> bool:
    return str(row["impl"]).startswith("ours")


def _series(row: Row) -> str:
    return f"{row['impl']} [gpu]" if row.get("device") == "gpu" else str(row["impl"])


def _machine(env: Mapping[str, Any], rows: Sequence[Row]) -> str:
    """The CPU model with its ISA and vector width when recorded, and the GPU when drawn."""
    parts = [str(env.get("cpu_model") or "unknown CPU")]
    if env.get("isa"):
        parts.append(f"ISA {env['isa']}")
    vectors = env.get("kernel_vectors")
    if vectors:
        parts.append(f"kernels {vectors['width_bits']}-bit vectors")
    gpu = env.get("gpu")
    if isinstance(gpu, Mapping) and gpu.get("name") and any(r.get("device") == "gpu" for r in rows):
        parts.append(f"GPU {gpu['name']}")
    return ", ".join(parts)


def _case(row: Row) -> tuple[int, tuple[int, ...], str, str]:
    """Sort key and label of a row's case: by element count (a shape's dtypes side by side
    when two shapes have as many elements), then dtype."""
    shape = tuple(row["shape"])
    label = f"{format_shape(shape)} {_DTYPES.get(row['dtype'], row['dtype'])}"
    return math.prod(shape), shape, str(row["dtype"]), label


def _peer_order(series: str) -> tuple[int, int, str]:
    impl = series.removesuffix(" [gpu]")
    # torch at its default threads next to ours, torch-1t next to ours-1t (like for like)
    known = ("ours", "ours-1t", "torch", "torch-1t", "direct", "naive", "scipy", "jax")
    rank = known.index("torch") if _default_torch(impl) else _index(known, impl)
    return int(series.endswith("[gpu]")), rank, impl


def _default_torch(impl: str) -> bool:
    return impl.startswith("torch") and impl != "torch-1t"


def _peer_style(series: str) -> Style:
    impl = series.removesuffix(" [gpu]")
    key = "torch" if _default_torch(impl) else impl
    style: Style = {"color": "#999999", "marker": "X", "markersize": 6, **_PEERS.get(key, {})}
    if series.endswith("[gpu]"):
        style["marker"] = "*"
        style["markersize"] = style["markersize"] + 3
    return style


def _variant_order(series: str) -> tuple[int, int, str, bool]:
    impl = series.removesuffix(" [gpu]")
    base = impl.removesuffix(_TWIN)
    known = ("ours", "ours-1t", "ours-numpy", "ours-generic")
    # each twin right after the row it switches the edges off for
    return int(series.endswith("[gpu]")), _index(known, base), base, impl.endswith(_TWIN)


def _variant_style(rows: Sequence[Row]) -> Styler:
    """Colours fixed per base variant over the whole figure, so each twin matches its base."""
    bases = sorted({_series(r).removesuffix(" [gpu]").removesuffix(_TWIN) for r in rows})
    others = [b for b in sorted(bases, key=_variant_order) if b != "ours"]
    colors = {b: _VARIANT_COLORS[i % len(_VARIANT_COLORS)] for i, b in enumerate(others)}
    colors["ours"] = _PEERS["ours"]["color"]

    def style(series: str) -> Style:
        impl = series.removesuffix(" [gpu]")
        base = impl.removesuffix(_TWIN)
        marker = "^" if base.endswith("-1t") else "o"
        out: Style = {"color": colors.get(base, "#999999"), "markersize": 7}
        out["marker"] = "*" if series.endswith("[gpu]") else marker
        if impl.endswith(_TWIN):
            out["markerfacecolor"] = "white"
            out["markeredgewidth"] = 1.6
        return out

    return style


def _index(known: Sequence[str], name: str) -> int:
    return known.index(name) if name in known else len(known)


def _figure(rows: Sequence[Row], order: Order, style: Styler, title: str, path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    ops = [op for op in OPS if any(r["op"] == op for r in rows)]
    if not ops:
        fig, ax = plt.subplots(figsize=(7, 2.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "no rows with status 'ok' and a copy floor", ha="center")
        fig.suptitle(f"portable-softmax, {title}", fontsize=10)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return
    # the union of the cases on every panel, so that a column is the same case all the way down
    keys = sorted({_case(r) for r in rows})
    column = {key[-1]: i for i, key in enumerate(keys)}
    names = sorted({_series(r) for r in rows}, key=order)
    width = 0.8 / len(names)
    values = [1 / r["x_copy_floor"] for r in rows]
    low, high = min([*values, 1.0]), max([*values, 1.0])
    fig, axes = plt.subplots(
        len(ops),
        1,
        sharex=True,
        squeeze=False,
        figsize=(max(8.0, 1.0 * len(keys) + 3.5), 0.6 + 2.9 * len(ops)),
        layout="constrained",
    )
    for ax, op in zip((a[0] for a in axes), ops, strict=True):
        for i in range(0, len(keys), 2):  # bands so that each case's group reads as one
            ax.axvspan(i - 0.5, i + 0.5, color="0.94", zorder=0)
        ax.axhline(1.0, linestyle="--", color="black", linewidth=1, zorder=1)
        ax.text(-0.45, 1.0, "copy floor", fontsize=7, va="bottom")
        for j, name in enumerate(names):
            here = [r for r in rows if r["op"] == op and _series(r) == name]
            xs = [column[_case(r)[-1]] + (j - (len(names) - 1) / 2) * width for r in here]
            ax.plot(xs, [1 / r["x_copy_floor"] for r in here], linestyle="none", **style(name))
        if high / low > 20:  # the small cases sit decades below the big ones
            ax.set_yscale("log")
            ax.set_ylim(low / 1.6, high * 1.6)
        else:
            ax.set_ylim(0, high * 1.1)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_title(f"{op}: fraction of copy bandwidth (higher is better)", fontsize=10)
        ax.set_ylabel("1 / (x copy floor)")
        ax.grid(True, axis="y", which="major", alpha=0.4)
        ax.set_xlim(-0.5, len(keys) - 0.5)
    bottom = axes[-1][0]
    bottom.set_xticks(range(len(keys)), [key[-1] for key in keys])
    if len(keys) > 7:  # long rows of labels overlap: slant them
        bottom.tick_params(axis="x", labelrotation=35)
        plt.setp(bottom.get_xticklabels(), ha="right", rotation_mode="anchor")
    handles = [Line2D([], [], linestyle="none", **style(n)) for n in names]
    handles.append(Line2D([], [], linestyle="--", color="black", linewidth=1))
    fig.legend(handles, [*names, "copy floor"], loc="outside right upper", fontsize=8)
    fig.suptitle(f"portable-softmax, {title}", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
