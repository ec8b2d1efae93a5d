"""The GPU session's kernel check, kernel benchmark and phases, without a GPU.

What runs here: the check's cases and comparison (graded on NumPy, where the generic path in
the input dtype must pass against float64, and perturbed results must not), the benchmark's
shapes and report writing on a made-up payload, the phase commands and the phase runner.
What cannot: anything on a GPU (the kernels themselves, timings): UNVERIFIED until a GPU run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import portable_softmax as ps
from benchmarks import gpu, gpu_check, gpu_kernels, scaling_gpu


def test_check_cases_pass_on_a_correct_implementation() -> None:
    # The generic path in the input dtype is correct: the check's bounds must let it pass.
    for name, dtype, n, arrays, options in gpu_check.cases(np, (1, 33, 1025, 4099), ("float32",)):
        with ps.use_path("generic"):
            got = getattr(ps, name)(*arrays, **options)
        want = gpu_check._reference(ps, np, name, arrays, options)
        assert gpu_check.problem(name, got, want, dtype, n) is None, name


def test_check_catches_a_wrong_gradient_of_the_pair() -> None:
    name, dtype, n, arrays, options = next(
        c for c in gpu_check.cases(np, (33,), ("float32",)) if c[0] == "cross_entropy_with_grad"
    )
    loss, grad = gpu_check._reference(ps, np, name, arrays, options)
    assert gpu_check.problem(name, (loss, grad), (loss, grad), dtype, n) is None
    found = gpu_check.problem(name, (loss, grad * 1.01), (loss, grad), dtype, n)
    assert str(found).startswith("gradient: ")


def test_check_cases_cover_every_function() -> None:
    from portable_softmax import _dispatch
    from portable_softmax._lib._call import FUNCTIONS

    names = {case[0] for case in gpu_check.cases(np, (7,), ("float16",))}
    assert names == set(FUNCTIONS) == set(_dispatch.CUPY.takes)


def test_the_reference_is_the_generic_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import portable_softmax._generic as generic

    served: list[str] = []

    def spy(original: Any) -> Any:
        def generic_path(call: Any) -> Any:
            served.append(call.function)
            return original(call)

        return generic_path

    for name in ("softmax", "cross_entropy_with_grad"):
        monkeypatch.setattr(generic, name, spy(getattr(generic, name)))
    x = np.ones((4, 8))
    with ps.use_path("numpy"):  # whatever the setting in force
        gpu_check._reference(ps, np, "softmax", (x,), {})
        gpu_check._reference(ps, np, "cross_entropy_with_grad", (x, np.zeros(4, np.int64)), {})
    assert served == ["softmax", "cross_entropy_with_grad"]


def test_described_is_the_call_the_public_function_dispatches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``gpu_check.described`` (what the GPU check hands the kernels) must be exactly the call
    ``portable_softmax.<name>`` hands the dispatcher, for every case of the check."""
    import portable_softmax._cross_entropy
    import portable_softmax._derivatives
    import portable_softmax._forward

    dispatched: list[Any] = []
    for module in (
        portable_softmax._forward,
        portable_softmax._derivatives,
        portable_softmax._cross_entropy,
    ):
        monkeypatch.setattr(module, "dispatch", lambda call: dispatched.append(call))
    for name, _, _, arrays, options in gpu_check.cases(np, (1, 33), ("float32", "float16")):
        getattr(ps, name)(*arrays, **options)
        ours = gpu_check.described(name, arrays, options)
        theirs = dispatched.pop()
        assert type(ours) is type(theirs)
        for field, a, b in zip(ours._fields, ours, theirs, strict=True):
            assert a is b or (type(a) is not np.ndarray and a == b), (name, field, a, b)


def test_compare_catches_wrong_results() -> None:
    want = np.array([[0.25, 0.75, 0.0], [np.nan, np.nan, np.nan]])
    tol = gpu_check.bound("float32", 3)
    assert gpu_check.compare(want.astype(np.float32), want, tol, "relative", "float32") is None
    wrong = want * (1 + 1e-3)
    assert "error" in str(gpu_check.compare(wrong, want, tol, "relative", "float32"))
    no_nan = np.nan_to_num(want)
    assert "NaN" in str(gpu_check.compare(no_nan, want, tol, "relative", "float32"))
    inf = np.array([np.inf, 1.0])
    assert "infinities" in str(gpu_check.compare(-inf, inf, tol, "absolute", "float32"))
    assert "shape" in str(gpu_check.compare(want[0], want, tol, "row", "float32"))


def test_benchmark_arrays_are_256_mib() -> None:
    for dtype, itemsize in gpu_kernels.ITEMSIZE.items():
        for n in gpu_kernels.ROW_LENGTHS:
            rows, length = gpu_kernels.shape_for(n, dtype)
            assert rows * length * itemsize == 256 * 2**20
    assert gpu_kernels.shape_for(2**30, "float32") == (1, 2**30)


def _payload() -> dict[str, Any]:
    rows = []
    for impl, seconds in (("ours kernels", 1e-3), ("torch", 1.5e-3), ("ours generic", 4e-3)):
        row = {"op": "softmax", "dtype": "float32", "rows": 65536, "n": 1024}
        rows.append(gpu_kernels._row(row, impl, [seconds, seconds], 2 * 2**28, 4e12))
    rows.append({"op": "xent", "dtype": "bfloat16", "rows": 8, "n": 1024, "impl": "*"})
    rows[-1]["status"] = "skipped: time budget"
    return {"copy_bandwidth_Bps": 4e12, "rows": rows, "elapsed_s": 1.0}


def test_benchmark_report_files(tmp_path: Path) -> None:
    gpu_kernels.write(_payload(), tmp_path, "Fake GPU 9000")
    text = (tmp_path / "kernels-benchmark.md").read_text()
    assert "Fake GPU 9000" in text
    assert "| ours kernels | 1.000 ms | 537 | 13% | 1.50x |" in text
    assert "skipped: time budget" in text
    saved = json.loads((tmp_path / "kernels-benchmark.json").read_text())
    assert saved["card"] == "Fake GPU 9000"
    assert (tmp_path / "kernels-benchmark.png").stat().st_size > 0


def test_benchmark_rejects_unknown_choices(capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_kernels.main(["--out", "/nonexistent", "--dtypes", "float8"]) == 2
    assert "float8" in capsys.readouterr().err


def test_phase_commands(tmp_path: Path) -> None:
    command, env = gpu.phase_command("check", tmp_path) or ([], {})
    assert command[-1] == "benchmarks.gpu_check"
    assert env == {}
    command, env = gpu.phase_command("suite-generic", tmp_path) or ([], {})
    assert env["PORTABLE_SOFTMAX_PATH"] == "generic"
    assert command[command.index("--backend") + 1] == "cupy"
    command, env = gpu.phase_command("suite-kernels", tmp_path) or ([], {})
    assert env["PORTABLE_SOFTMAX_PATH"] == "cupy"  # the one switch that sends CuPy to them
    assert command[-2:] == ["--impl", "conformance.adapters.cupy_kernels"]
    command, env = gpu.phase_command("scaling", tmp_path) or ([], {})
    assert command[1:3] == ["-m", "benchmarks.scaling_gpu"]
    assert command[-2:] == ["--out", str(tmp_path)]
    with pytest.raises(ValueError, match="bench"):
        gpu.phase_command("bench", tmp_path)
    assert sum(gpu.LIMITS[p] for p in gpu.PHASES) <= 460  # gpu_run.sh stops at 470 s


def test_run_phase_records_the_summary_and_timeouts(tmp_path: Path) -> None:
    done = gpu.run_phase(tmp_path, "demo", [sys.executable, "-c", "print('a'); print('b')"], {}, 60)
    assert (done["returncode"], done["summary"]) == (0, "b")
    assert (tmp_path / "demo.log").read_text().split() == ["a", "b"]
    slow = [sys.executable, "-c", "import time; time.sleep(5)"]
    late = gpu.run_phase(tmp_path, "late", slow, {}, 0.5)
    assert late["returncode"] is None
    assert "TIMED OUT" in late["summary"]


def test_unknown_phase_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        gpu.main(["--only", "everything"])


def test_failed_check_fails_the_session(fake_cupy: Any, tmp_path: Path) -> None:
    # the stand-in CuPy does not reach the subprocess: the check must fail, and say so
    assert gpu.main(["--only", "check", "--out", str(tmp_path)]) == 1
    session = json.loads((tmp_path / "gpu-session.json").read_text())
    assert session["phases"][0]["phase"] == "check"
    assert session["phases"][0]["returncode"] not in (0, None)


def test_gpu_scaling_needs_a_gpu(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Without a usable GPU the Dask-on-CuPy report fails with exit code 2, never skips."""
    monkeypatch.setattr(scaling_gpu, "gpu_available", lambda: "no GPU here")
    assert scaling_gpu.main(["--out", str(tmp_path)]) == 2
    assert "no GPU here" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_gpu_scaling_table_and_chunks() -> None:
    rows = [
        {"dtype": "float32", "configuration": "cupy, one call", "median_s": 0.0002,
         "throughput_GBps": 2684.4, "vs_one_call": 1.0},
        {"dtype": "float32", "configuration": "dask threads 2, split axis, 1 GPU",
         "median_s": 0.004, "throughput_GBps": 134.2, "vs_one_call": 0.05},
    ]  # fmt: skip
    text = scaling_gpu.markdown(rows, 512, 5)
    assert "| float32 | cupy, one call | 0.20 | 2684 | 1.00x |" in text
    assert "| float32 | dask threads 2, split axis, 1 GPU | 4.00 | 134 | 0.05x |" in text
    assert scaling_gpu._chunks(32768, "whole rows") == (4096, 4096)
    assert scaling_gpu._chunks(32768, "split axis") == (8192, 2048)


def test_gpu_scaling_runs_every_configuration(fake_cupy: Any) -> None:
    """``run`` end to end on the stand-in CuPy (NumPy arrays, one device, no dask_cuda):
    every threaded configuration for both dtypes, a write after each dtype."""
    import types

    fake_cupy.dtype = np.dtype
    fake_cupy.ndarray = np.ndarray  # dask asks for it once cupy is imported
    fake_cupy.random = np.random
    device = types.SimpleNamespace(synchronize=lambda: None)
    fake_cupy.cuda.Device = lambda: device
    fake_cupy.cuda.runtime.getDeviceCount = lambda: 1
    written: list[int] = []
    rows = scaling_gpu.run(1, 1, lambda so_far: written.append(len(so_far)))
    assert written == [5, 10]
    names = {r["configuration"] for r in rows}
    assert names == {"cupy, one call"} | {
        f"dask threads {n}, {layout}, 1 GPU"
        for n in (1, 2)
        for layout in ("whole rows", "split axis")
    }
    assert {r["dtype"] for r in rows} == {"float32", "float64"}
    assert all(r["vs_one_call"] == 1.0 for r in rows if r["configuration"] == "cupy, one call")
    assert all(r["median_s"] > 0 for r in rows)
