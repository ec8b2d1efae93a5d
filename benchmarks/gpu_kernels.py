"""The CuPy kernels against ``torch`` on the same card, at the bandwidth limit.

``python -m benchmarks.gpu_kernels --out DIR``: arrays of 256 MiB with rows of 1K, 4K, 16K,
64K and 256K entries, float32, float16 and bfloat16 (where CuPy has it), for softmax,
log_softmax, the softmax backward pass and cross-entropy (loss plus gradient from
``cross_entropy_with_grad``, integer labels, "mean"). Implementations: ours on the kernels
(the public functions under ``use_path("cupy")``), ours on the generic path (under
``use_path("generic")``), and ``torch.softmax`` / ``torch.log_softmax`` /
``torch._softmax_backward_data`` / ``F.cross_entropy`` with its gradient, on the same memory
(zero-copy through DLPack); the device-to-device copy bandwidth of the same bytes; and ours
on NumPy (the CPU) for float32. Times are medians of CUDA-event samples on the default
stream (both libraries use it). Writes ``kernels-benchmark.json``, ``.md`` and ``.png``
under DIR.

UNVERIFIED: written without a GPU; it has never run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROW_LENGTHS = (1024, 4096, 16384, 65536, 262144)
DTYPES = ("float32", "float16", "bfloat16")
OPS = ("softmax", "log_softmax", "backward", "xent")
ARRAY_BYTES = 256 * 2**20
MOVED = {"softmax": 2, "log_softmax": 2, "backward": 3, "xent": 2}
"""Full arrays that must cross memory (SPEC section 4's copy floor)."""
ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2}


def shape_for(n: int, dtype: str, nbytes: int = ARRAY_BYTES) -> tuple[int, int]:
    """(rows, n) holding ``nbytes`` (at least one row)."""
    return max(1, nbytes // (n * ITEMSIZE[dtype])), n


def gpu_time(fn: Callable[[], Any], *, repeats: int, warmup: int = 2) -> list[float]:
    """Seconds per call, one CUDA-event sample per call."""
    import cupy

    for _ in range(warmup):
        fn()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    samples = []
    for _ in range(repeats):
        start.record()
        fn()
        end.record()
        end.synchronize()
        samples.append(cupy.cuda.get_elapsed_time(start, end) / 1e3)
    return samples


def _on(path: str, fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` called under the path setting ``path`` (ours: the kernels, or the generic path)."""
    import portable_softmax as ps

    def call() -> Any:
        with ps.use_path(path):
            return fn()

    return call


def _calls(op: str, dtype: str, rows: int, n: int) -> dict[str, Callable[[], Any]]:
    """Implementation -> a call on prepared inputs (allocated once, outside the timer)."""
    import cupy
    import torch
    import torch.nn.functional as F

    import portable_softmax as ps

    t_dtype = getattr(torch, dtype)
    logits = torch.randn(rows, n, device="cuda", dtype=t_dtype)
    try:
        x = cupy.from_dlpack(logits)  # zero-copy: the same memory for every implementation
    except Exception:  # CuPy without this dtype (bfloat16): torch only
        x = None
    ours: Callable[[], Any] | None = None
    out: dict[str, Callable[[], Any]] = {}
    if op in ("softmax", "log_softmax"):
        torch_fn = torch.softmax if op == "softmax" else torch.log_softmax
        out["torch"] = lambda: torch_fn(logits, -1)
        if x is not None:
            ours = lambda: getattr(ps, op)(x)  # noqa: E731
    elif op == "backward":
        y_t = torch.softmax(logits, -1)
        g_t = torch.randn_like(logits)
        out["torch"] = lambda: torch._softmax_backward_data(g_t, y_t, -1, y_t.dtype)
        if x is not None:
            y, g = cupy.from_dlpack(y_t), cupy.from_dlpack(g_t)
            ours = lambda: ps.softmax_backward(g, y)  # noqa: E731
    else:
        labels_t = torch.randint(0, n, (rows,), device="cuda")
        leaf = logits.detach().requires_grad_(True)

        def torch_xent() -> Any:
            loss = F.cross_entropy(leaf, labels_t)
            return loss, torch.autograd.grad(loss, leaf)[0]

        out["torch"] = torch_xent
        if x is not None:
            labels = cupy.from_dlpack(labels_t)
            ours = lambda: ps.cross_entropy_with_grad(x, labels)  # noqa: E731
    if ours is not None:
        out["ours kernels"] = _on("cupy", ours)
        out["ours generic"] = _on("generic", ours)
    return out


def copy_bandwidth(nbytes: int, repeats: int) -> float:
    """Device-to-device copy, bytes read + written per second."""
    import cupy

    src = cupy.ones(nbytes // 4, dtype=cupy.float32)
    dst = cupy.empty_like(src)
    seconds = statistics.median(gpu_time(lambda: cupy.copyto(dst, src), repeats=repeats))
    return 2 * int(src.nbytes) / seconds


def cpu_seconds(op: str, x: Any) -> float:
    """Ours on NumPy (float32) on the host copy ``x`` of the case: the faster of two calls
    (256 MiB calls take a fraction of a second each on one core)."""
    import numpy as np

    import portable_softmax as ps

    labels = np.random.default_rng(0).integers(0, x.shape[-1], x.shape[0])
    if op == "backward":
        y = ps.softmax(x)
        call: Callable[[], Any] = lambda: ps.softmax_backward(x, y)  # noqa: E731
    elif op == "xent":
        call = lambda: ps.cross_entropy_with_grad(x, labels)  # noqa: E731
    else:
        call = lambda: getattr(ps, op)(x)  # noqa: E731
    samples = []
    for _ in range(2):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return min(samples)


def run(
    *,
    lengths: Sequence[int],
    dtypes: Sequence[str],
    ops: Sequence[str],
    repeats: int,
    budget_s: float,
    cpu: bool,
) -> dict[str, Any]:
    """Every case (skipped once the budget is spent); returns the JSON payload."""
    started = time.monotonic()
    copy = copy_bandwidth(ARRAY_BYTES, repeats)
    rows_out: list[dict[str, Any]] = []
    for dtype in dtypes:
        for n in lengths:
            host = None  # the CPU's input, made once per shape
            for op in ops:
                rows, _ = shape_for(n, dtype)
                base = {"op": op, "dtype": dtype, "rows": rows, "n": n}
                if time.monotonic() - started > budget_s:
                    rows_out.append({**base, "impl": "*", "status": "skipped: time budget"})
                    continue
                moved = MOVED[op] * rows * n * ITEMSIZE[dtype]
                for impl, call in _calls(op, dtype, rows, n).items():
                    try:
                        samples = gpu_time(call, repeats=repeats)
                    except Exception as error:  # a failure is a result: record it, go on
                        rows_out.append({**base, "impl": impl, "status": f"failed: {error}"})
                        continue
                    rows_out.append(_row(base, impl, samples, moved, copy))
                if cpu and dtype == "float32":
                    if host is None:
                        import numpy as np

                        host = np.random.default_rng(1).standard_normal((rows, n), np.float32)
                    seconds = cpu_seconds(op, host)
                    rows_out.append(_row(base, "ours numpy (CPU)", [seconds], moved, copy))
    return {"copy_bandwidth_Bps": copy, "rows": rows_out, "elapsed_s": time.monotonic() - started}


def _row(
    base: dict[str, Any], impl: str, samples: list[float], moved: int, copy: float
) -> dict[str, Any]:
    median = statistics.median(samples)
    return {
        **base,
        "impl": impl,
        "status": "ok",
        "median_s": median,
        "samples_s": samples,
        "gbps": moved / median / 1e9,
        "of_copy": moved / median / copy,
    }


def markdown(payload: dict[str, Any], card: str) -> str:
    """One table: per case, each implementation's time, GB/s and share of the copy bandwidth,
    and ours (kernels) over torch."""
    lines = [
        f"# CuPy kernels vs torch on {card}",
        "",
        f"Device-to-device copy: {payload['copy_bandwidth_Bps'] / 1e9:.0f} GB/s (read + write).",
        "",
        "| op | dtype | rows x n | impl | median | GB/s | of copy | torch / ours |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = payload["rows"]
    for r in rows:
        case = f"| {r['op']} | {r['dtype']} | {r['rows']} x {r['n']} | {r['impl']} |"
        if r["status"] != "ok":
            lines.append(f"{case} {r['status']} | | | |")
            continue
        torch_row = _find(rows, r, "torch")
        ratio = ""
        if r["impl"] == "ours kernels" and torch_row is not None:
            ratio = f"{torch_row['median_s'] / r['median_s']:.2f}x"
        lines.append(
            f"{case} {r['median_s'] * 1e3:.3f} ms | {r['gbps']:.0f} | "
            f"{100 * r['of_copy']:.0f}% | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def _find(rows: list[dict[str, Any]], like: dict[str, Any], impl: str) -> dict[str, Any] | None:
    for r in rows:
        same = all(r[k] == like[k] for k in ("op", "dtype", "n"))
        if same and r["impl"] == impl and r["status"] == "ok":
            return r
    return None


def plot(payload: dict[str, Any], path: Path, card: str) -> None:
    """GB/s against row length, one panel per op and dtype, the copy bandwidth dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in payload["rows"] if r["status"] == "ok" and "CPU" not in r["impl"]]
    ops = sorted({r["op"] for r in ok}) or ["softmax"]
    dtypes = sorted({r["dtype"] for r in ok}) or ["float32"]
    fig, axes = plt.subplots(
        len(ops), len(dtypes), squeeze=False, figsize=(5 * len(dtypes), 3.2 * len(ops))
    )
    for i, op in enumerate(ops):
        for j, dtype in enumerate(dtypes):
            ax = axes[i][j]
            for impl in sorted({r["impl"] for r in ok}):
                series = sorted(
                    (r for r in ok if (r["op"], r["dtype"], r["impl"]) == (op, dtype, impl)),
                    key=lambda r: r["n"],
                )
                if series:
                    ax.plot([r["n"] for r in series], [r["gbps"] for r in series], "o-", label=impl)
            ax.axhline(payload["copy_bandwidth_Bps"] / 1e9, ls="--", color="black", label="copy")
            ax.set_xscale("log", base=2)
            ax.set_title(f"{op} {dtype}", fontsize=9)
            ax.set_xlabel("row length")
            ax.set_ylabel("GB/s")
            ax.legend(fontsize=7)
    fig.suptitle(f"portable_softmax CuPy kernels vs torch, 256 MiB arrays, {card}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(payload: dict[str, Any], out: Path, card: str) -> None:
    """``kernels-benchmark.{json,md,png}`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "kernels-benchmark.json").write_text(json.dumps({"card": card, **payload}, indent=1))
    (out / "kernels-benchmark.md").write_text(markdown(payload, card))
    plot(payload, out / "kernels-benchmark.png", card)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_kernels", description=__doc__)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--card", default="gpu")
    p.add_argument("--lengths", default=",".join(map(str, ROW_LENGTHS)))
    p.add_argument("--dtypes", default=",".join(DTYPES))
    p.add_argument("--ops", default=",".join(OPS))
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--budget", type=float, default=100.0, help="seconds (default 100)")
    p.add_argument("--no-cpu", action="store_true", help="skip the NumPy (CPU) numbers")
    args = p.parse_args(argv)
    lengths = [int(v) for v in args.lengths.split(",") if v]
    dtypes = [v for v in args.dtypes.split(",") if v]
    ops = [v for v in args.ops.split(",") if v]
    bad = [v for v in dtypes if v not in DTYPES] + [v for v in ops if v not in OPS]
    if bad or not lengths or min(lengths) < 1:
        print(f"error: unknown or empty choices {bad or args.lengths!r}", file=sys.stderr)
        return 2
    payload = run(
        lengths=lengths,
        dtypes=dtypes,
        ops=ops,
        repeats=args.repeats,
        budget_s=args.budget,
        cpu=not args.no_cpu,
    )
    write(payload, args.out, args.card)
    print(markdown(payload, args.card))
    return 0


if __name__ == "__main__":
    sys.exit(main())
