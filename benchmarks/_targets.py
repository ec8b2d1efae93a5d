"""SPEC section 4's targets, each judged met / NOT met / not measured, with by how much.

A target is a list of checks (one ratio against its limit each); it is met when every check
is, and its detail names the missed checks (or, when met, the tightest) with their margins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ._cases import OPS, format_shape

Row = dict[str, Any]

BIG_BYTES = 64 * 2**20
"""SPEC section 4: "arrays of 64 MiB and more" ((4096, 4096) float32 is exactly 64 MiB)."""
MB = 10**6
GPU_BIG_BYTES = 256 * 2**20
BIG_SHAPE = [4096, 4096]
SMALL_SHAPE = [8, 10]
CLASSIFIER_SHAPE = [256, 1000]
DEFAULT_VS_NUMPY = 1 / 1.05
"""SPEC: the default path at most 5% slower than the pure NumPy path, on every case."""
GPU_LONG_ROW = 16 * 1024
"""GPU rows longer than this have the lower bandwidth target (SPEC: 85% up to 16K, 70%)."""


@dataclass(frozen=True)
class Check:
    """``value`` against ``limit``: at least (``at_least``) or at most."""

    name: str
    value: float
    limit: float
    at_least: bool
    unit: str = "x"

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    @property
    def margin(self) -> float:
        """How far inside the limit, relative to it (negative: outside)."""
        if self.unit == "%":
            return self.limit - self.value
        ratio = self.value / self.limit
        return ratio - 1 if self.at_least else 1 - ratio

    def text(self) -> str:
        show = {"x": "{:.2f}x", "%": "{:.1%}", "s": "{:.3f} s"}[self.unit]
        bound = "needs >=" if self.at_least else "at most"
        if self.unit == "%":
            by = f"{abs(self.margin) * 100:.1f} points"
        else:
            by = f"{abs(self.margin):.0%}"
        side = "to spare" if self.met else ("short" if self.at_least else "over")
        limit = show.format(self.limit).replace(".00x", "x")
        return f"{self.name}: {show.format(self.value)} ({bound} {limit}; {by} {side})"


def judge(ident: str, text: str, checks: Sequence[Check], missing: str = "") -> Row:
    """The target's row; ``missing`` says why it was not measured, if it was not."""
    row: Row = {"id": ident, "target": text, "checks": [asdict(c) for c in checks]}
    if missing or not checks:
        return {**row, "status": "not measured", "detail": missing or "no such case in this run"}
    missed = [c for c in checks if not c.met]
    if missed:
        missed.sort(key=lambda c: c.margin)
        shown = "; ".join(c.text() for c in missed[:4])
        more = f"; {len(missed) - 4} more" if len(missed) > 4 else ""
        detail = f"{len(missed)} of {len(checks)} missed: {shown}{more}"
        return {**row, "status": "NOT met", "detail": detail}
    tightest = min(checks, key=lambda c: c.margin)
    return {**row, "status": "met", "detail": f"{len(checks)} checks; tightest {tightest.text()}"}


def _ok(rows: Iterable[Row], **match: Any) -> list[Row]:
    return [r for r in rows if r["status"] == "ok" and all(r.get(k) == v for k, v in match.items())]


def _label(row: Row) -> str:
    return f"{row['op']} {format_shape(tuple(row['shape']))} {row['dtype']}"


def _versus(
    rows: Iterable[Row], impl: str, peers: Sequence[str], limit: float, **match: Any
) -> list[Check]:
    """``impl``'s speedup over each of ``peers`` on the matching CPU rows, against ``limit``."""
    checks = []
    for row in _ok(rows, impl=impl, device="cpu", **match):
        for peer in peers:
            value = row.get("speedup_vs", {}).get(peer)
            if value is not None:
                checks.append(Check(f"{_label(row)} {impl} vs {peer}", value, limit, True))
    return checks


def _torch_default(rows: Iterable[Row]) -> str | None:
    """The name of PyTorch's default-threads CPU row (``torch-Nt``), if one was timed."""
    names = {r["impl"] for r in rows if r["backend"] == "torch-cpu" and r["impl"] != "torch-1t"}
    return min(names) if names else None


def _copy_floor(rows: Iterable[Row], impl: str, limit: float, **match: Any) -> list[Check]:
    return [
        Check(f"{_label(r)} {impl} x copy floor", r["x_copy_floor"], limit, False)
        for r in _ok(rows, impl=impl, device="cpu", shape=BIG_SHAPE, **match)
        if r.get("x_copy_floor") is not None
    ]


def _torch_or_floor(rows: Iterable[Row], impl: str, torch: str) -> list[Check]:
    """SPEC: at least 2x PyTorch, or within 1.2x of the copy floor where that is looser:
    one check per (4096, 4096) row, on whichever of the two is nearer to being met."""
    checks = []
    for row in _ok(rows, impl=impl, device="cpu", shape=BIG_SHAPE):
        speedup = row.get("speedup_vs", {}).get(torch)
        if speedup is None:
            continue
        versus = Check(f"{_label(row)} {impl} vs {torch}", speedup, 2, True)
        floor = row.get("x_copy_floor")
        if floor is not None:
            near = Check(f"{_label(row)} {impl} x copy floor", floor, 1.2, False)
            versus = versus if versus.margin >= near.margin else near
        checks.append(versus)
    return checks


def _edges(rows: Iterable[Row], impl: str) -> list[Check]:
    return [
        Check(f"{_label(r)} {impl}", r["edge_cost"], 0.10, False, "%")
        for r in _ok(rows, impl=impl, device="cpu")
        if "edge_cost" in r
    ]


def _big(rows: Sequence[Row], least: int) -> list[Row]:
    return [r for r in rows if r["nbytes"] >= least]


def targets(
    rows: Sequence[Row], first_call: Row | None = None, numba: str | None = None
) -> list[Row]:
    """SPEC section 4's targets. ``numba`` is why the compiled kernels could not be timed
    (None: they were); ``first_call`` is ``_first_call.measure``'s result."""
    no_numba = f"numba not available: {numba}" if numba else ""
    torch_n = _torch_default(rows)
    big = _torch_or_floor(rows, "ours-1t", "torch-1t")
    classifier = [r for r in rows if r["shape"] == CLASSIFIER_SHAPE]
    beat_classifier = _versus(classifier, "ours-1t", ["torch-1t"], 1.5)
    if torch_n is not None:
        big += _torch_or_floor(rows, "ours", torch_n)
        beat_classifier += _versus(classifier, "ours", [torch_n], 1.5)
    small = [r for r in rows if r["shape"] == SMALL_SHAPE]
    out = [
        judge(
            "numba-torch",
            "CPU, numba: (4096, 4096) float32/float64 forward, backward, xent >= 2x faster than "
            "PyTorch like for like (ours-1t vs torch-1t, ours vs torch at its default threads), "
            "or within 1.2x of the copy floor where that is looser",
            big,
            no_numba,
        ),
        judge(
            "numba-copy-1t",
            "CPU, numba: (4096, 4096) at most 1.5x the fresh-output copy floor on one thread "
            "(ours-1t)",
            _copy_floor(rows, "ours-1t", 1.5),
            no_numba,
        ),
        judge(
            "numba-copy-all",
            "CPU, numba: (4096, 4096) at most 1.0x the one-thread fresh-output copy floor on "
            "all cores (ours)",
            _copy_floor(rows, "ours", 1.0),
            no_numba,
        ),
        judge(
            "classifier-torch",
            "CPU, numba: (256, 1000) float32/float64 forward, backward, xent >= 1.5x faster "
            "than PyTorch at one thread and at its default",
            beat_classifier,
            no_numba,
        ),
        judge(
            "out-copyto",
            "CPU, numba: softmax (4096, 4096) float32 into a preallocated output (out=) at "
            "most 1.5x the np.copyto floor on one thread (ours-out-1t)",
            _copy_floor(rows, "ours-out-1t", 1.5, op="forward", dtype="float32"),
            no_numba,
        ),
        judge(
            "numpy-forward",
            "CPU, pure NumPy (ours-numpy): forward >= 2x faster than the naive chain and SciPy, "
            "arrays >= 64 MiB",
            _versus(_big(rows, BIG_BYTES), "ours-numpy", ["naive", "scipy"], 2, op="forward"),
        ),
        judge(
            "numpy-xent",
            "CPU, pure NumPy (ours-numpy): cross-entropy >= 2x faster than the naive chain "
            "(SciPy has none), arrays >= 64 MiB",
            _versus(_big(rows, BIG_BYTES), "ours-numpy", ["naive", "scipy"], 2, op="xent"),
        ),
        judge(
            "numpy-backward",
            "CPU, pure NumPy (ours-numpy): backward >= 1.5x faster than the naive chain, "
            "arrays >= 64 MiB",
            _versus(_big(rows, BIG_BYTES), "ours-numpy", ["naive"], 1.5, op="backward"),
        ),
        judge(
            "numpy-1mb",
            "CPU, pure NumPy (ours-numpy): arrays >= 1 MB never slower than the naive chain "
            "or SciPy",
            _versus(_big(rows, MB), "ours-numpy", ["naive", "scipy"], 1),
        ),
        judge(
            "default-vs-numpy",
            "CPU: the default path (ours) at most 5% slower than the pure NumPy path "
            "(ours-numpy), every case",
            _versus(rows, "ours", ["ours-numpy"], DEFAULT_VS_NUMPY),
        ),
        judge(
            "small-numba",
            "CPU, numba: (8, 10) no slower than the direct NumPy chain (ours, the whole call)",
            [c for op in OPS for c in _versus(small, "ours", ["direct"], 1, op=op)],
            no_numba,
        ),
        judge(
            "small-numpy",
            "CPU, pure NumPy: (8, 10) no slower than the naive chain (ours-numpy, the whole call)",
            [c for op in OPS for c in _versus(small, "ours-numpy", ["naive"], 1, op=op)],
        ),
        _first_call_target(first_call, no_numba),
        judge(
            "edges-numba",
            "CPU, numba fast path: edge handling costs at most 10% (ours / ours-noedges - 1)",
            _edges(rows, "ours"),
            no_numba,
        ),
        judge(
            "edges-numpy",
            "CPU, NumPy fast path: edge handling costs at most 10% "
            "(ours-numpy / ours-numpy-noedges - 1)",
            _edges(rows, "ours-numpy"),
        ),
    ]
    return out + _gpu_targets(rows)


def _first_call_target(first_call: Row | None, no_numba: str) -> Row:
    text = "Compiled kernels: warm-cache import + first call under 1 s (cold reported)"
    if first_call is None or not first_call["measured"]:
        return judge("first-call", text, [], "first call not measured in this run")
    if first_call["error"]:
        return judge("first-call", text, [], f"measurement failed: {first_call['error']}")
    numpy_s = first_call["numpy_path"]["median_s"]
    if no_numba:
        return judge("first-call", text, [], f"{no_numba}; the NumPy path took {numpy_s:.3f} s")
    warm = first_call["warm"]["median_s"]
    if warm is None:
        return judge("first-call", text, [], "no warm run in this run")
    row = judge("first-call", text, [Check("warm import + first call", warm, 1.0, False, "s")])
    row["detail"] += f"; cold {first_call['cold']['median_s']:.3f} s, NumPy path {numpy_s:.3f} s"
    return row


def _gpu_targets(rows: Sequence[Row]) -> list[Row]:
    bandwidth = [
        Check(
            f"{_label(r)} copy-bandwidth fraction",
            1 / r["x_copy_floor"],
            0.85 if r["shape"][-1] <= GPU_LONG_ROW else 0.70,
            True,
        )
        for r in _ok(rows, key="ours [cupy]", dtype="float32")
        if r["op"] in ("forward", "backward") and r["nbytes"] >= GPU_BIG_BYTES
    ]
    versus_torch = [
        Check(f"{_label(r)} vs torch", r["speedup_vs"]["torch"], 1, True)
        for r in _ok(rows, key="ours [cupy]")
        if r["nbytes"] >= GPU_BIG_BYTES and "torch" in r.get("speedup_vs", {})
    ]
    return [
        judge(
            "gpu-bandwidth",
            "GPU: float32 >= 256 MiB forward/backward at >= 85% of the copy bandwidth "
            "(rows up to 16K entries; 70% beyond)",
            bandwidth,
        ),
        judge("gpu-torch", "GPU: no slower than torch on the same card, >= 256 MiB", versus_torch),
    ]
