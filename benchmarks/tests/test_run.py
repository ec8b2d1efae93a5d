"""Implementations and the case loop: correctness before timing, unavailable peers, xent."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import portable_softmax as ps
from benchmarks._cases import Case
from benchmarks._derive import derive
from benchmarks._impls import Naive, Scipy, Torch, build
from benchmarks._ours import Ours
from benchmarks._run import Settings, run_all, run_case

FAST = Settings(repeats=2, min_sample_s=0.0, warmup=1)


def _by_key(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in rows}


def test_xent_rows_are_not_available_without_cross_entropy(without_cross_entropy: None) -> None:
    rows = _by_key(run_case(Case("xent", (8, 10), "float32"), [Ours(), Naive()], None, FAST))
    assert rows["ours [numpy]"]["status"] == "not available"
    assert "no cross_entropy" in rows["ours [numpy]"]["reason"]
    assert rows["naive [numpy]"]["status"] == "ok"


@pytest.mark.parametrize("shape", [(8, 10), (3000,)])
def test_xent_is_timed_once_cross_entropy_exists(
    with_cross_entropy: None, shape: tuple[int, ...]
) -> None:
    impls = [Ours(), Ours(variant="ours-numpy"), Ours(variant="ours-numpy-noedges"), Naive()]
    rows = run_case(Case("xent", shape, "float64"), impls, None, FAST)
    derive(rows)
    by_key = _by_key(rows)
    assert all(r["status"] == "ok" for r in rows), rows
    assert by_key["ours [numpy]"]["median_s"] > 0
    assert "naive" in by_key["ours [numpy]"]["speedup_vs"]
    assert "edge_cost" in by_key["ours-numpy [numpy]"]
    assert "ours-numpy" in by_key["ours [numpy]"]["speedup_vs"]


def test_wrong_result_is_a_failure_not_a_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ps, "softmax", lambda x, axis=-1: np.full_like(x, 0.1))
    rows = _by_key(run_case(Case("forward", (8, 10), "float32"), [Ours(), Naive()], None, FAST))
    assert rows["ours [numpy]"]["status"] == "failed"
    assert "differs from the float64 reference" in rows["ours [numpy]"]["reason"]
    assert "median_s" not in rows["ours [numpy]"]
    assert rows["naive [numpy]"]["status"] == "ok"


def test_a_crash_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(g: Any, y: Any, axis: int = -1) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(ps, "softmax_backward", broken)
    rows = run_case(Case("backward", (8, 10), "float64"), [Ours()], None, FAST)
    assert rows[0]["status"] == "failed"
    assert "RuntimeError: boom" in rows[0]["reason"]


def test_settings_apply_to_the_check_and_each_sample_and_are_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from portable_softmax._config import current_path, edges_enabled

    seen: list[tuple[str, bool, int]] = []
    real = ps.softmax

    def spy(x: Any, axis: int = -1) -> Any:
        seen.append((current_path(), edges_enabled(), ps.get_num_threads()))
        return real(x, axis=axis)

    monkeypatch.setattr(ps, "softmax", spy)
    threads = ps.get_num_threads()
    impls = [
        Ours(variant="ours-numpy-noedges"),
        Ours(variant="ours-1t", numba=None),
        Ours(variant="ours-generic"),
    ]
    rows = run_case(Case("forward", (3, 4), "float64"), impls, None, FAST)
    assert all(r["status"] == "ok" for r in rows), rows
    assert {("numpy", False, threads), ("auto", True, 1), ("generic", True, threads)} == set(seen)
    assert seen[0] == ("numpy", False, threads)  # the correctness check ran under them too
    assert (current_path(), edges_enabled(), ps.get_num_threads()) == ("auto", True, threads)
    assert Ours(variant="ours-noedges", numba=None).unavailable("backward") is not None


def test_numba_rows_say_why_they_are_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import _ours

    monkeypatch.setattr(_ours, "numba_unavailable", lambda: "numba is not installed (test)")
    impls, notes = _ours.build_ours("numpy")
    assert [i.name for i in impls] == [v.name for v in _ours.VARIANTS]
    assert any("numba is not installed (test)" in n for n in notes)
    rows = _by_key(run_case(Case("forward", (8, 10), "float32"), impls, None, FAST))
    for name in ("ours-1t", "ours-noedges"):
        assert rows[f"{name} [numpy]"]["status"] == "not available"
        assert rows[f"{name} [numpy]"]["reason"] == "numba is not installed (test)"
    for name in ("ours", "ours-numpy", "ours-generic", "ours-numpy-noedges"):
        assert rows[f"{name} [numpy]"]["status"] == "ok"
    assert rows["ours [numpy]"]["threads"] == 1  # the NumPy path: one thread


def test_numba_rows_are_timed_when_it_is_there(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import _ours

    monkeypatch.setattr(_ours, "numba_unavailable", lambda: None)
    impls, notes = _ours.build_ours("numpy")
    assert notes == []
    rows = run_case(Case("xent", (8, 10), "float32"), impls, None, FAST)
    derive(rows)
    by_key = _by_key(rows)
    assert all(r["status"] == "ok" for r in rows), rows
    assert by_key["ours-1t [numpy]"]["threads"] == 1
    assert by_key["ours [numpy]"]["threads"] == ps.get_num_threads()
    assert "edge_cost" in by_key["ours [numpy]"]
    assert "edge_cost" in by_key["ours-numpy [numpy]"]
    assert "ours-noedges" not in by_key["ours [numpy]"]["speedup_vs"]


def test_numba_detection() -> None:
    import importlib.util

    from benchmarks._ours import NUMBA_BACKEND, auto_fast_paths, numba_unavailable

    reason = numba_unavailable()
    present = bool(importlib.util.find_spec("numba")) and bool(
        importlib.util.find_spec(NUMBA_BACKEND)
    )
    assert (reason is None) == present
    assert auto_fast_paths()[-1] == "portable_softmax._backends.numpy"
    assert (NUMBA_BACKEND in auto_fast_paths()) == present


def test_scipy_is_forward_only() -> None:
    assert Scipy().function("forward") is not None
    assert Scipy().unavailable("backward") == "not provided by this peer"


def test_torch_threads_are_restored() -> None:
    torch = pytest.importorskip("torch")
    default = torch.get_num_threads()
    one = Torch(1)
    one.enter()
    assert torch.get_num_threads() == 1
    one.leave()
    assert torch.get_num_threads() == default
    assert Torch(None).name == f"torch-{default}t"


def test_all_peers_pass_their_checks(with_cross_entropy: None) -> None:
    impls, _notes = build(("numpy",), ("naive", "scipy", "torch", "jax"))
    rows, floors = run_all(
        [(8, 10)], ["float32", "float64"], ["forward", "backward", "xent"], impls, FAST
    )
    assert [r for r in rows if r["status"] == "failed"] == []
    assert {f["dtype"] for f in floors} == {"float32", "float64"}
    assert all(f["copy_gbps"] > 0 and f["exp"]["median_s"] > 0 for f in floors)
    ok = [r for r in rows if r["status"] == "ok"]
    assert all(r["x_copy_floor"] > 0 and r["x_compute_floor"] > 0 for r in ok)


def test_budget_skips_cases() -> None:
    rows, floors = run_all([(8, 10)], ["float32"], ["forward"], [Ours()], Settings(budget_s=-1.0))
    assert floors == []
    assert rows[0]["status"] == "skipped"


def test_gpu_rows_with_a_stand_in(fake_cupy: Any) -> None:
    impls, _ = build(("numpy", "cupy"), ("naive",))
    assert {i.key for i in impls} >= {"ours [cupy]", "naive [cupy]", "ours [numpy]"}
    rows, floors = run_all([(8, 10)], ["float32"], ["forward", "backward"], impls, FAST)
    gpu = [r for r in rows if r["device"] == "gpu"]
    assert gpu
    assert all(r["status"] == "ok" and "with_transfers" in r for r in gpu)
    assert {f["device"] for f in floors} == {"cpu", "gpu"}
    assert next(f for f in floors if f["device"] == "gpu")["exp"] is None
