"""The PNGs from a made-up payload: both files written, and no crash with nothing to draw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks._plot import plot, variants_path

pytest.importorskip("matplotlib")


def _row(
    op: str, shape: list[int], dtype: str, impl: str, x_copy_floor: float | None
) -> dict[str, Any]:
    """One row in the schema of ``benchmark.json`` (the fields the plot reads, and a few more)."""
    gpu = impl.endswith("[gpu]")
    impl = impl.removesuffix(" [gpu]")
    return {
        "op": op,
        "shape": shape,
        "dtype": dtype,
        "nbytes": 4 * shape[0] * shape[-1],
        "impl": impl,
        "backend": "cupy" if gpu else "numpy",
        "device": "gpu" if gpu else "cpu",
        "threads": 1 if impl.endswith("-1t") else 2,
        "key": f"{impl} [{'cupy' if gpu else 'numpy'}]",
        "status": "ok" if x_copy_floor is not None else "not available",
        "reason": "",
        "median_s": 1e-5,
        "gbps": 1.0,
        "x_copy_floor": x_copy_floor,
    }


def _payload(rows: list[Any]) -> dict[str, Any]:
    return {
        "environment": {"cpu_model": "Test CPU 3000", "gpu": {"name": "Fake GPU"}},
        "rows": rows,
    }


def test_both_figures_are_written(tmp_path: Path) -> None:
    impls = ["ours", "ours-1t", "ours-numpy", "ours-noedges", "ours-out-1t", "torch-2t", "torch-1t"]
    impls += ["direct", "naive", "ours [gpu]", "torch [gpu]"]
    rows = [
        _row(op, shape, dtype, impl, 1.5 + 30 * i / len(impls))
        for op in ("forward", "xent")
        for shape in ([8, 10], [256, 1000])
        for dtype in ("float32", "float64")
        for i, impl in enumerate(impls)
    ]
    rows.append(_row("backward", [8, 10], "float32", "scipy", None))  # not drawn
    path = tmp_path / "benchmark.png"
    written = plot(_payload(rows), path)
    assert written == [path, tmp_path / "benchmark-variants.png"]
    for file in written:
        assert file.read_bytes()[:4] == b"\x89PNG"
        assert file.stat().st_size > 1000


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [{**_row("forward", [8, 10], "float32", "ours", None), "status": "ok"}],  # no floor
        [{**_row("forward", [8, 10], "float32", "ours", 2.0), "status": "failed"}],
        [_row("forward", [8, 10], "float32", "naive", 2.0)],  # nothing for the variants figure
    ],
)
def test_nothing_to_draw_does_not_crash(tmp_path: Path, rows: list[Any]) -> None:
    path = tmp_path / "benchmark.png"
    plot({"rows": rows}, path)
    assert path.stat().st_size > 0
    assert variants_path(path).stat().st_size > 0
