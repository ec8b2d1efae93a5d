"""The benchmark loop: floors, correctness checks and interleaved timings, case by case."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._cases import Case, check, format_shape, make_inputs, reference
from ._impl_base import Impl
from ._progress import Progress
from ._timing import Entry, Stats, copies_for, time_cpu, time_gpu


@dataclass(frozen=True)
class Settings:
    """How hard to time: ``repeats`` samples per implementation and case."""

    repeats: int = 15
    min_sample_s: float = 5e-3
    warmup: int = 2
    gpu_max_duration: float = 2.0
    budget_s: float = float("inf")
    cpu_only_ours_shapes: tuple[tuple[int, ...], ...] = ()
    """Shapes on which the CPU runs only ``ours`` (GPU-sized cases, for GPU/CPU speedups)."""
    first_call_runs: tuple[int, int] = (3, 5)
    """Fresh processes timing import + first call: (cold cache, warm cache); (0, 0): none."""


Row = dict[str, Any]

COOLDOWN_S = 2e-3
"""Pause after each sample of a multi-threaded CPU peer, before the next sample starts."""

SMALL_BYTES = 16 * 2**20
SMALL_REPEATS = 2
"""Cases moving under SMALL_BYTES take SMALL_REPEATS times the samples: they are cheap, and
on a shared machine their medians need more samples to settle."""


def _floors_cpu(shape: tuple[int, ...], dtype: str, settings: Settings) -> Row:
    """The copy floors, interleaved on one thread (SPEC section 4): ``np.copyto`` into an
    existing buffer (for ``out=`` calls), ``np.copy`` (a fresh output: allocation and first
    touch, for calls that return a new array, as the forward and cross-entropy do) and
    ``a + b`` into a fresh array (the backward's two inputs and fresh output); one
    ``np.exp`` pass for reference."""
    case = Case("forward", shape, dtype)
    copies = [make_inputs(case, i)[0] for i in range(copies_for(case.nbytes))]
    pairs = [(c, copies[(i + 1) % len(copies)]) for i, c in enumerate(copies)]
    dst = np.empty_like(copies[0])
    entries = [
        Entry("copy", lambda x: np.copyto(dst, x), [(c,) for c in copies]),
        Entry("fresh", np.copy, [(c,) for c in copies]),
        Entry("fresh-add", np.add, pairs),
        Entry("exp", lambda x: np.exp(x, out=dst), [(c,) for c in copies]),
    ]
    stats = time_cpu(
        entries, repeats=settings.repeats, min_sample_s=settings.min_sample_s, warmup=2
    )
    row = _floor_row("cpu", case, stats["copy"], stats["exp"])
    row["fresh"] = stats["fresh"].as_dict()
    row["fresh_gbps"] = 2 * case.nbytes / stats["fresh"].median / 1e9
    row["fresh_add"] = stats["fresh-add"].as_dict()
    row["fresh_add_gbps"] = 3 * case.nbytes / stats["fresh-add"].median / 1e9
    return row


def _floors_gpu(shape: tuple[int, ...], dtype: str, settings: Settings) -> Row:
    """Device-to-device copy bandwidth (cupy.copyto of the same bytes)."""
    import cupy

    case = Case("forward", shape, dtype)
    src = cupy.asarray(make_inputs(case, 0)[0])
    dst = cupy.empty_like(src)
    entry = Entry("copy", lambda x: cupy.copyto(dst, x), [(src,)])
    stats = time_gpu([entry], repeats=settings.repeats, max_duration=settings.gpu_max_duration)
    return _floor_row("gpu", case, stats["copy"], None)


def _floor_row(device: str, case: Case, copy: Stats, exp: Stats | None) -> Row:
    return {
        "device": device,
        "shape": list(case.shape),
        "dtype": case.dtype,
        "nbytes": case.nbytes,
        "copy": copy.as_dict(),
        "copy_gbps": 2 * case.nbytes / copy.median / 1e9,
        "exp": None if exp is None else exp.as_dict(),
    }


def _row(case: Case, impl: Impl, status: str, reason: str = "") -> Row:
    return {
        "op": case.op,
        "shape": list(case.shape),
        "dtype": case.dtype,
        "nbytes": case.nbytes,
        "moved_bytes": case.moved_bytes,
        "impl": impl.name,
        "backend": impl.backend,
        "device": impl.device,
        "threads": impl.threads,
        "key": impl.key,
        "into_out": bool(getattr(impl, "into_out", False)),
        "status": status,
        "reason": reason,
    }


def floor_gbps(floors: Row, op: str, into_out: bool) -> float:
    """The copy bandwidth a call is held to (SPEC section 4): ``np.copyto``'s for ``out=``
    calls (and on GPUs), else the fresh-output copy's (``y + g`` for the backward)."""
    if into_out or "fresh_gbps" not in floors:
        return float(floors["copy_gbps"])
    return float(floors["fresh_add_gbps" if op == "backward" else "fresh_gbps"])


def _with_floors(row: Row, stats: Stats, floors: Row | None) -> Row:
    row.update(stats.as_dict())
    row["gbps"] = row["moved_bytes"] / stats.median / 1e9
    if floors is not None:
        gbps = floor_gbps(floors, row["op"], bool(row.get("into_out")))
        row["x_copy_floor"] = stats.median / (row["moved_bytes"] / (gbps * 1e9))
        row["x_copyto_floor"] = stats.median / (row["moved_bytes"] / (floors["copy_gbps"] * 1e9))
        exp = floors.get("exp")
        row["x_compute_floor"] = None if exp is None else stats.median / exp["median_s"]
    return row


def run_case(
    case: Case, impls: Sequence[Impl], floors: Row | None, settings: Settings
) -> list[Row]:
    """Check, then time, every implementation of one case (all on one device kind)."""
    rows: list[Row] = []
    gpu = bool(impls) and impls[0].device == "gpu"
    count = 1 if gpu else copies_for(case.nbytes * (2 if case.op == "backward" else 1))
    host = [make_inputs(case, i) for i in range(count)]
    want = reference(case, host[0])
    entries: list[Entry] = []
    timed: list[tuple[Impl, Entry]] = []
    kernels: dict[str, str | None] = {}
    for impl in impls:
        reason = impl.unavailable(case.op)
        function = impl.function(case.op)
        if reason is not None or function is None:
            rows.append(_row(case, impl, "not available", reason or "not provided"))
            continue
        try:
            argsets = [tuple(impl.convert(a) for a in args) for args in host]
            impl.enter()  # the settings of the sample (a path, a thread count) apply
            try:
                out = function(*argsets[0])
                impl.sync()
            finally:
                impl.leave()
            problem = check(case, impl.to_numpy(out), want, host[0])
            served = impl.served_by(case.op, argsets[0])
        except Exception as error:  # a crash is a reported failure, like a wrong result
            problem = f"raised {type(error).__name__}: {error}"
        if problem is not None:
            rows.append(_row(case, impl, "failed", problem))
            continue
        entry = Entry(impl.key, function, argsets, impl.enter, impl.leave, prime=impl.prime)
        kernels[impl.key] = served
        if impl.device == "cpu" and impl.threads != 1:
            entry.cooldown_s = COOLDOWN_S
        entries.append(entry)
        timed.append((impl, entry))
        if gpu:
            entries.append(_with_transfers(impl, function, host[0]))
    if not entries:
        return rows
    if gpu:
        stats = time_gpu(entries, repeats=settings.repeats, max_duration=settings.gpu_max_duration)
    else:
        stats = time_cpu(
            entries,
            repeats=settings.repeats * (SMALL_REPEATS if case.moved_bytes < SMALL_BYTES else 1),
            min_sample_s=settings.min_sample_s,
            warmup=settings.warmup,
        )
    for impl, entry in timed:
        row = _with_floors(_row(case, impl, "ok"), stats[entry.key], floors)
        if kernels.get(impl.key):
            row["kernel"] = kernels[impl.key]
        transfers = stats.get(entry.key + " +transfers")
        if transfers is not None:
            row["with_transfers"] = transfers.as_dict()
        rows.append(row)
    return rows


def _with_transfers(impl: Impl, function: Callable[..., Any], host: tuple[Any, ...]) -> Entry:
    """The same call from host inputs to host outputs (host->device, call, device->host)."""

    def call(*arrays: Any) -> Any:
        return impl.to_numpy(function(*(impl.convert(a) for a in arrays)))

    return Entry(impl.key + " +transfers", call, [host], impl.enter, impl.leave)


def run_all(
    shapes: Sequence[tuple[int, ...]],
    dtypes: Sequence[str],
    ops: Sequence[str],
    impls: Sequence[Impl],
    settings: Settings,
    progress: Progress | None = None,
) -> tuple[list[Row], list[Row]]:
    """Every case on every device kind; returns (rows, floor rows)."""
    deadline = time.monotonic() + settings.budget_s
    rows: list[Row] = []
    floor_rows: list[Row] = []
    by_device = {d: [i for i in impls if i.device == d] for d in ("cpu", "gpu")}
    for shape in shapes:
        for dtype in dtypes:
            for device, group in by_device.items():
                if device == "cpu" and shape in settings.cpu_only_ours_shapes:
                    group = [i for i in group if i.name == "ours"]
                if not group:
                    continue
                label = f"{device} {format_shape(shape)} {dtype}"
                if time.monotonic() > deadline:
                    for op in ops:
                        rows += [
                            _row(Case(op, shape, dtype), i, "skipped", "time budget spent")
                            for i in group
                        ]
                        if progress is not None:
                            progress.step(f"{label} {op}: skipped (time budget)")
                    continue
                measure = _floors_gpu if device == "gpu" else _floors_cpu
                floors = measure(shape, dtype, settings)
                floor_rows.append(floors)
                for op in ops:
                    if progress is not None:
                        progress.step(f"{label} {op}")
                    rows += run_case(Case(op, shape, dtype), group, floors, settings)
    return rows, floor_rows


def case_count(
    shapes: Sequence[tuple[int, ...]],
    dtypes: Sequence[str],
    ops: Sequence[str],
    impls: Sequence[Impl],
) -> int:
    """Progress steps that ``run_all`` will make."""
    kinds = len({i.device for i in impls})
    return len(shapes) * len(dtypes) * len(ops) * kinds
