"""End to end: the command line, the output files, the report, the GPU entry point."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from benchmarks import gpu
from benchmarks._cli import main
from benchmarks._derive import crossovers, derive
from benchmarks._impls import gpu_available

ROOT = Path(__file__).resolve().parents[2]


def test_main_writes_every_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--sizes",
            "8x10,16x300",
            "--dtypes",
            "float32",
            "--peers",
            "naive,scipy",
            "--repeats",
            "2",
            "--no-first-call",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    payload = json.loads((tmp_path / "benchmark.json").read_text())
    env = payload["environment"]
    for key in (
        "cpu_model",
        "logical_cpus",
        "versions",
        "threads",
        "git_commit",
        "date_utc",
        "command",
    ):
        assert key in env
    assert "--sizes 8x10,16x300" in env["command"]
    assert {r["op"] for r in payload["rows"]} == {"forward", "backward", "xent"}
    text = (tmp_path / "benchmark.md").read_text()
    assert "## SPEC section 4 targets" in text
    assert "fresh output" in text
    assert "x copy floor" in text
    assert "## First call" in text
    assert payload["first_call"]["measured"] is False
    assert {t["id"] for t in payload["targets"]} >= {"numba-torch", "edges-numpy", "first-call"}
    assert (tmp_path / "benchmark.png").read_bytes()[:4] == b"\x89PNG"
    _assert_tables_are_rectangular(text)
    out = capsys.readouterr()
    assert "benchmark.json" in out.out
    assert "[" in out.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ops", "forward,sideways"], "unknown"),
        (["--dtypes", "float16"], "float32,float64"),
        (["--repeats", "0"], "positive"),
        (["--sizes", "8by10"], "joined by 'x'"),
    ],
)
def test_bad_options(argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        main(["--sizes", "8x10", *argv, "--out", "/nonexistent/never"])


def test_cupy_without_gpu_is_an_error() -> None:
    if gpu_available() is None:
        pytest.skip("a GPU runs CuPy here: the error path cannot be reached")
    with pytest.raises(SystemExit, match="no GPU runs CuPy here"):
        main(["--backends", "cupy", "--out", "/nonexistent/never"])


def test_gpu_session_without_gpu_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    if gpu_available() is None:
        pytest.skip("a GPU runs CuPy here: the error path cannot be reached")
    assert gpu.main([]) == 2
    assert "needs an NVIDIA GPU" in capsys.readouterr().err


def test_gpu_session_with_a_stand_in(
    fake_cupy: Any,
    with_cross_entropy: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(gpu, "CPU_SHAPES", ((8, 10),))
    monkeypatch.setattr(gpu, "GPU_ONLY_SHAPES", ((64, 300),))
    monkeypatch.setattr(gpu, "DTYPES", ("float32",))
    code = gpu.main(
        ["--only", "grid", "--out", str(tmp_path / "run"), "--copy-to", str(tmp_path / "copy")]
    )
    assert code == 0
    payload = json.loads((tmp_path / "run" / "benchmark.json").read_text())
    assert payload["environment"]["gpu"]["name"] == "Fake GPU 9000"
    assert len(payload["gpu_vs_cpu"]) == 2 * 3  # two shapes, three ops
    assert (tmp_path / "copy" / "run" / "benchmark.md").exists()
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1].startswith("not measured: GPU")  # the short table comes last
    assert any(line.startswith("forward 64x300 float32") for line in printed)


def test_conformance_step_reports_the_suites_verdict(fake_cupy: Any, tmp_path: Path) -> None:
    # the stand-in CuPy does not reach the pytest subprocess: the suite must refuse it
    result = gpu.run_conformance(tmp_path, timeout=120)
    assert result["returncode"] not in (0, None)
    assert (tmp_path / "conformance.log").read_text()


def test_default_out_and_card_slug() -> None:
    import datetime

    assert gpu.card_slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    day = datetime.date(2026, 11, 27)
    assert str(gpu.default_out("NVIDIA H100", day)) == "benchmarks/results/nvidia-h100-2026-11-27"


def test_gpu_run_script_is_valid_bash() -> None:
    done = subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "gpu_run.sh")], check=False)
    assert done.returncode == 0


def test_crossover_is_the_size_from_which_the_gpu_always_wins() -> None:
    pairs = [
        {
            "op": "forward",
            "dtype": "float32",
            "shape": [n],
            "nbytes": 4 * n,
            "speedup": s,
            "speedup_with_transfers": t,
        }
        for n, s, t in [
            (10, 0.1, 0.01),
            (1000, 1.5, 0.5),
            (10**5, 0.9, 0.8),
            (10**7, 8.0, 2.0),
            (10**8, 20.0, 3.0),
        ]
    ]
    found = {c["measure"]: c["gpu_wins_from"] for c in crossovers(pairs)}
    assert found == {"device time": [10**7], "with transfers": [10**7]}


def _assert_tables_are_rectangular(text: str) -> None:
    width = None
    for line in text.splitlines():
        if not line.startswith("|"):
            width = None
            continue
        cells = line.count(" | ") + 1 if not line.startswith("|---") else line.count("---|")
        width = width or cells
        assert cells == width, line


def test_speedups_pair_samples_of_the_same_round() -> None:
    # a burst of load slowed rounds 2-4 for ours and rounds 2-3 for the peer: per round the
    # peer is 2x slower, except the last round; the medians alone would say 0.5x
    ours = {
        "impl": "ours",
        "key": "ours [numpy]",
        "op": "forward",
        "shape": [8],
        "dtype": "f",
        "device": "cpu",
        "status": "ok",
        "median_s": 10.0,
        "samples_s": [1, 1, 10, 10, 10],
    }
    peer = {
        **ours,
        "impl": "naive",
        "key": "naive [numpy]",
        "median_s": 5.0,
        "samples_s": [2, 2, 20, 20, 5],
    }
    derive([ours, peer])
    assert ours["speedup_vs"] == {"naive": 2.0}
    assert peer["ours_speedup"] == 2.0
    unpaired = {**peer, "samples_s": [5.0]}
    derive([ours, unpaired])
    assert ours["speedup_vs"] == {"naive": 0.5}


def test_main_table_shows_the_rows_of_ours_and_lists_the_missing_ones() -> None:
    from benchmarks._report import _unavailable, summary_table

    def row(impl: str, status: str = "ok", **extra: Any) -> dict[str, Any]:
        return {
            "impl": impl,
            "key": f"{impl} [numpy]",
            "backend": "numpy",
            "device": "cpu",
            "threads": 1,
            "status": status,
            "reason": "numba is not installed" if status != "ok" else "",
            "op": "forward",
            "shape": [8, 10],
            "dtype": "float32",
            "median_s": 1e-5,
            "q1_s": 1e-5,
            "q3_s": 1e-5,
            "gbps": 0.1,
            "x_copy_floor": 3.0,
            **extra,
        }

    rows = [
        row("ours", edge_cost=0.05, speedup_vs={"naive": 1.5, "ours-numpy": 2.0}),
        row("ours-1t", "not available"),
        row("ours-numpy", speedup_vs={"naive": 0.75}),
        row("ours-numpy-noedges"),
        row("naive"),
    ]
    table = summary_table(rows)
    assert "x copy floor" in table[0]
    assert table[0].index("x copy floor") < table[0].index("vs naive")
    assert "vs ours-numpy" in table[0]
    body = table[2:]
    assert [line.split(" | ")[1] for line in body] == ["ours", "ours-numpy"]
    assert "5.0%" in body[0]
    assert "2.00x" in body[0]
    assert _unavailable(rows) == [
        "",
        "- ours-1t [numpy]: not available (1 cases): numba is not installed",
    ]
    _assert_tables_are_rectangular("\n".join(table))
