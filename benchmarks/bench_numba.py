"""Side-by-side timings of the numba kernels (SPEC section 4), one process, interleaved.

    PYTHONPATH=. python benchmarks/bench_numba.py [--rounds 7] [--quick]

For each case every candidate runs once per round, rounds interleaved, and the median is
reported, with ratios to the copy floor (``np.copyto`` into a preallocated array, times 1.5
for the backward's three arrays) and to PyTorch. Ours are timed as users call them: the public
functions, fresh outputs, with the path forced by ``use_path``. Also prints the first-call
compile times (cold cache in a fresh cache directory, then warm) from subprocesses.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import portable_softmax as ps
from portable_softmax import _config

Case = dict[str, Callable[[], Any]]


def _torch_cases(x: np.ndarray, g: np.ndarray, labels: np.ndarray, op: str) -> Case:
    import torch
    import torch.nn.functional as F

    xt, gt, lt = torch.from_numpy(x), torch.from_numpy(g), torch.from_numpy(labels)
    yt = torch.softmax(xt, -1)
    default = torch.get_num_threads()

    def threads(n: int, fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            torch.set_num_threads(n)
            return fn()

        return run

    if op == "forward":
        fn: Callable[[], Any] = lambda: torch.softmax(xt, -1)  # noqa: E731
    elif op == "backward":
        fn = lambda: torch._softmax_backward_data(gt, yt, -1, xt.dtype)  # noqa: E731
    else:
        leaf = xt.clone().requires_grad_()

        def fn() -> Any:
            leaf.grad = None
            loss: Any = F.cross_entropy(leaf, lt)
            loss.backward()
            return leaf.grad

    return {"torch 1 thread": threads(1, fn), f"torch {default} threads": threads(default, fn)}


def _ours(x: np.ndarray, g: np.ndarray, labels: np.ndarray, op: str) -> Callable[[], Any]:
    if op == "forward":
        return lambda: ps.softmax(x)
    if op == "backward":
        y = ps.softmax(x)
        return lambda: ps.softmax_backward(g, y)
    return lambda: (ps.cross_entropy(x, labels), ps.cross_entropy_backward(x, labels))


def _with(path: str, threads: int | None, fn: Callable[[], Any], edges: bool = True) -> Any:
    def run() -> Any:
        if threads is not None:
            _config.set_num_threads(threads)
        with _config.use_path(path):
            if edges:
                return fn()
            with _config.without_edge_handling():
                return fn()

    return run


def cases(shape: tuple[int, int], dtype: Any, op: str) -> tuple[Case, float]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    labels = rng.integers(0, shape[1], shape[0])
    default = _config.get_num_threads()
    ours = _ours(x, g, labels, op)
    pre = np.empty_like(x)
    out: Case = {"copy floor": lambda: np.copyto(pre, x)}
    out["ours numba 1 thread"] = _with("numba", 1, ours)
    out["ours numba 1 thread, edges off"] = _with("numba", 1, ours, edges=False)
    out[f"ours numba {default} threads"] = _with("numba", default, ours)
    out["ours NumPy path"] = _with("numpy", None, ours)
    if shape == (8, 10) and op == "forward":
        out["naive chain"] = lambda: (lambda e: e / e.sum(-1, keepdims=True))(
            np.exp(x - x.max(-1, keepdims=True))
        )
    out.update(_torch_cases(x, g, labels, op))
    _config.set_num_threads(default)
    return out, 1.5 if op == "backward" else 1.0


def measure(case: Case, rounds: int, inner: int) -> dict[str, float]:
    for fn in case.values():  # warm-up: compilation, page cache, thread pools
        fn()
    times: dict[str, list[float]] = {name: [] for name in case}
    for _ in range(rounds):
        for name, fn in case.items():
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            times[name].append((time.perf_counter() - start) / inner)
    return {name: statistics.median(t) for name, t in times.items()}


_FIRST_CALL = (
    "import time; t = time.perf_counter(); import numpy as np; import portable_softmax as ps;"
    "from portable_softmax import _config\n"
    "with _config.use_path('numba'): ps.softmax(np.ones((8, 10), np.float32))\n"
    "print(time.perf_counter() - t)"
)


def first_call_times() -> tuple[float, float]:
    """Import plus first softmax call: with an empty cache directory, then warm."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        times = [
            float(subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env, check=True,
                                 capture_output=True, text=True).stdout)
            for _ in range(2)
        ]  # fmt: skip
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="(4096, 4096) float32 only")
    args = parser.parse_args()
    print("load:", os.getloadavg(), "threads:", _config.get_num_threads())
    grid = [((4096, 4096), np.float32), ((4096, 4096), np.float64)]
    if not args.quick:
        grid += [((256, 1000), np.float32), ((8, 10), np.float32)]
    for shape, dtype in grid:
        inner = 1 if shape[0] * shape[1] > 10**6 else (20 if shape[0] > 8 else 2000)
        for op in ("forward", "backward", "cross-entropy"):
            case, floor_factor = cases(shape, dtype, op)
            medians = measure(case, args.rounds, inner)
            floor = medians.pop("copy floor") * floor_factor
            torch1 = medians["torch 1 thread"]
            torchn = next(
                v for k, v in medians.items() if k.startswith("torch") and k != "torch 1 thread"
            )
            print(f"\n{shape} {np.dtype(dtype).name} {op}: copy floor {floor * 1e3:.3f} ms")
            for name, t in medians.items():
                print(
                    f"  {name:32s} {t * 1e3:9.3f} ms  x floor {t / floor:6.2f}"
                    f"  vs torch1 {torch1 / t:5.2f}x  vs torch-default {torchn / t:5.2f}x"
                )
    cold, warm = first_call_times()
    print(f"\nimport + first call: cold cache {cold:.2f} s, warm cache {warm:.2f} s")


if __name__ == "__main__":
    main()
