"""Scale-out on Dask: NumPy in one thread against Dask with 1 and 2 workers (SPEC section 4).

``python -m benchmarks.scaling`` times one float64 softmax over the last axis of an array of
``--mib`` MiB (default 512) in one run, interleaved: the public function on a NumPy array on
one thread (the numba kernels when numba is installed, else the pure NumPy path), and on Dask
arrays (each block on that same kernel, one thread per block) with whole-row chunks and with
chunks that split the axis in two, on the threaded scheduler (1 and 2 threads) and on
``distributed.LocalCluster`` (1 and 2 single-threaded worker processes, loopback). It runs in
three phases, threads, then a cluster of 1 worker, then one of 2 (each cluster up only in its
own phase), each with the NumPy row; in each round of a phase every configuration takes one
sample, in a fresh random order, so the neighbours' load hits all alike; the median over
rounds is reported, each Dask row against the NumPy row of its phase, with ``uptime``'s load
before and after.

Dask results are timed as ``persist`` (the result stays in the workers' memory, as a user
would keep it for the next step), inputs already in memory (NumPy: the array; threads: the
same array in chunks; processes: generated on the workers). Throughput is input bytes per
second. Chunks are Dask's configured ``array.chunk-size`` (128 MiB unless configured: what
``chunks="auto"`` aims at), or ``--chunk-mib``: smaller chunks mean more tasks, and each task
has a fixed cost on a ``distributed`` cluster. Writes ``scaling.json`` and ``scaling.md``
under ``benchmarks/results/<name>/``.

Examples
--------
``python -m benchmarks.scaling --quick`` (64 MiB, 3 rounds) or
``python -m benchmarks.scaling --mib 512 --rounds 15 --chunk-mib 32 --name scaling-2cpu``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ._env import cpu_model, environment

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = 4096
TARGET_WORKERS = 1.6
"""SPEC: 2 workers at least 1.6x the throughput of 1 worker ..."""
TARGET_NUMPY = 1.4
"""... and at least 1.4x the single-thread NumPy call."""


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _shape(mib: int) -> tuple[int, int]:
    rows = max(16, mib * 2**20 // (8 * COLUMNS))
    return rows - rows % 16, COLUMNS


def _dask_chunk_mib() -> int:
    """Dask's configured chunk size (``array.chunk-size``, what ``chunks="auto"`` aims at)."""
    import dask
    from dask.utils import parse_bytes

    return max(1, parse_bytes(dask.config.get("array.chunk-size")) // 2**20)


def _chunks(shape: tuple[int, int], layout: str, chunk_mib: int) -> tuple[int, int]:
    """Chunks of ``chunk_mib`` MiB where possible (128: 4 per 512 MiB; 32: 16), at least 4
    per array: whole rows, or half rows (the axis split in two)."""
    rows, n = shape
    per_chunk = max(1, min(rows // 4, chunk_mib * 2**20 // (8 * n)))
    if layout == "whole rows":
        return per_chunk, n
    return 2 * per_chunk, n // 2


@contextmanager
def _cluster(workers: int) -> Iterator[Any]:
    """A LocalCluster of ``workers`` single-threaded processes that find this checkout."""
    import distributed

    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), saved) if p)
    try:
        cluster = distributed.LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        )
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    with (
        cluster,
        distributed.Client(  # type: ignore[no-untyped-call]
            cluster, set_as_default=False
        ) as client,
    ):
        yield client


NUMPY_ROW = "numpy, 1 thread"
LAYOUTS = ("whole rows", "split axis")


def _one_thread(x: np.ndarray) -> Callable[[], None]:
    """The NumPy call on one thread: numba's kernels (if installed), as NumPy runs."""
    import portable_softmax as ps

    def one_thread() -> None:
        before = ps.get_num_threads()
        ps.set_num_threads(1)
        try:
            _drop(ps.softmax(x))
        finally:
            ps.set_num_threads(before)

    return one_thread


def _threaded(x: np.ndarray, chunk_mib: int) -> dict[str, Callable[[], Any]]:
    """The threads phase: name -> one timed call (no cluster alive in this process)."""
    import dask.array as da

    import portable_softmax as ps

    configs: dict[str, Callable[[], Any]] = {NUMPY_ROW: _one_thread(x)}
    for layout in LAYOUTS:
        chunks = _chunks(x.shape, layout, chunk_mib)
        xd = da.from_array(x, chunks=chunks)  # type: ignore[no-untyped-call]
        for workers in (1, 2):

            def threaded(xd: Any = xd, workers: int = workers) -> None:
                _drop(ps.softmax(xd).persist(scheduler="threads", num_workers=workers))

            configs[f"dask threads {workers}, {layout}"] = threaded
    return configs


def _processes(
    stack: ExitStack, x: np.ndarray, workers: int, chunk_mib: int
) -> tuple[dict[str, Callable[[], Any]], Any]:
    """One processes phase: a cluster of ``workers`` and its inputs, set up outside the
    timing (one cluster at a time: an idle one beside it would load the samples too);
    returns the configurations and the cluster's client."""
    import dask.array as da
    import distributed

    import portable_softmax as ps

    configs: dict[str, Callable[[], Any]] = {NUMPY_ROW: _one_thread(x)}
    client = stack.enter_context(_cluster(workers))
    for layout in LAYOUTS:
        chunks = _chunks(x.shape, layout, chunk_mib)
        rng = da.random.default_rng(0)  # type: ignore[no-untyped-call]
        xd = client.persist(rng.standard_normal(x.shape, chunks=chunks))
        _wait(client, xd)

        def processes(xd: Any = xd) -> Callable[[], None]:
            y = client.persist(ps.softmax(xd))
            _wait(client, y)
            keys = [f.key for f in distributed.futures_of(y)]  # type: ignore[no-untyped-call]
            del y
            return lambda: _released(client, keys)

        configs[f"dask processes {workers}, {layout}"] = processes
    return configs, client


def _held(keys: list[Any], dask_worker: Any = None) -> int:
    """On a worker (``client.run`` passes ``dask_worker``): how many of ``keys`` it holds."""
    return sum(key in dask_worker.data for key in keys)


def _released(client: Any, keys: list[Any], timeout: float = 5.0) -> None:
    """Until the workers have dropped ``keys`` (a result let go is freed asynchronously:
    the freeing would otherwise overlap the next sample, whichever configuration it is).
    The workers are asked, not the scheduler, which forgets a key before they free it."""
    deadline = time.monotonic() + timeout
    while any(client.run(_held, keys).values()):
        if time.monotonic() > deadline:
            print(f"warning: results still held after {timeout:.0f} s", file=sys.stderr)
            return
        time.sleep(0.01)


def _warm_free_pages(nbytes: int) -> None:
    """Touch and free ``nbytes`` (the caller passes 4x the input here, and as much again
    split among a cluster's workers: more than any configuration allocates in a sample), so
    that the next sample's fresh arrays get pages the machine has just used.

    On the VMs this runs on (virtio-balloon free page reporting), memory freed and left idle
    goes back to the host, and touching it again costs a host page fault: a fresh 512 MiB
    array took 0.056 s to first-touch right after a free, 0.18 s after 1 s idle, 0.44 s after
    4 s and 0.79 s after 8 s (AMD EPYC VM, 2026-12-03). Without this, whichever sample
    follows an idle gap (a cluster's round trips, the wait for a result to be freed) paid it,
    which made the process rows and their NumPy row up to 1.6x slower than the threaded ones.
    """
    import numpy as np

    scratch = np.empty(nbytes // 8)
    scratch[:: 4096 // 8] = 0.0  # one write per 4 KiB page
    del scratch


def interleaved(
    configs: dict[str, Callable[[], Any]], rounds: int, before: Callable[[], None]
) -> dict[str, list[float]]:
    """``rounds`` samples of every configuration, each round in a fresh random order, with
    ``before()`` run ahead of each sample, outside the timing (here :func:`_warm_free_pages`,
    in the workers too; the GPU report synchronises the device); a call may return a
    function that settles its aftermath, also run outside the timing."""
    for call in configs.values():  # warm-up: imports, pools, first-touch of the pages
        settle = call()
        if settle is not None:
            settle()
    samples: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(rounds):
        order = list(configs)
        random.shuffle(order)
        for name in order:
            before()
            start = time.perf_counter()
            settle = configs[name]()
            samples[name].append(time.perf_counter() - start)
            if settle is not None:
                settle()
    return samples


def _kernels(x: np.ndarray) -> str:
    """Which fast path serves the NumPy call (and each Dask block): numba or numpy."""
    from portable_softmax import _dispatch
    from portable_softmax._lib._describe import describe

    backend = _dispatch.serving(describe("softmax", x, axis=-1, where=None, temperature=None))
    return "generic" if backend is None else backend.name


def _wait(client: Any, collection: Any) -> None:
    """Until ``collection``'s blocks are in the workers' memory (none comes back here)."""
    import distributed

    with client.as_current():
        distributed.wait(collection)  # type: ignore[no-untyped-call]


def _drop(result: Any) -> None:
    del result


def _graph_build_seconds() -> dict[str, float]:
    """CPU seconds to build (not compute) the graph of a softmax over 10^4 chunks."""
    import dask.array as da

    import portable_softmax as ps

    out = {}
    for name, shape, chunks, axis in (
        ("whole rows", (10_000, 100), (1, 100), -1),
        ("split axis", (100, 10_000), (100, 1), -1),
        ("axis=None", (100, 100), (1, 1), None),
    ):
        x = da.zeros(shape, chunks=chunks)
        start = time.process_time()  # this process's CPU time: the neighbours' load aside
        ps.softmax(x, axis=axis)
        out[name] = time.process_time() - start
    return out


def run(mib: int, rounds: int, chunk_mib: int, command: str = "") -> dict[str, Any]:
    """Time every configuration ``rounds`` times, interleaved; return the report."""
    shape = _shape(mib)
    x = np.random.default_rng(0).standard_normal(shape)
    load_before = _load()
    # Phases, each interleaved on its own: a LocalCluster runs its scheduler in this process
    # (an event loop thread with periodic callbacks) and its workers beside it, which slowed
    # the threaded runs timed while the clusters were up (whole rows, one thread: 0.47 s
    # there, 0.33 s with no cluster alive); so one cluster at a time, after the threads.
    # Each phase times the NumPy row again, and its Dask rows are compared with that row.
    nbytes = x.nbytes

    def warm() -> None:
        _warm_free_pages(4 * nbytes)

    phases = {"threads": interleaved(_threaded(x, chunk_mib), rounds, warm)}
    for workers in (1, 2):
        with ExitStack() as stack:
            configs, client = _processes(stack, x, workers, chunk_mib)

            def warm_everywhere(client: Any = client, workers: int = workers) -> None:
                # the workers allocate the Dask rows' results (and kept exponentials):
                # their free pages need the same warming as this process's
                warm()
                client.run(_warm_free_pages, 4 * nbytes // workers)

            phases[f"{workers} process(es)"] = interleaved(configs, rounds, warm_everywhere)
    rows: list[dict[str, Any]] = []
    for phase, samples in phases.items():
        numpy_time = statistics.median(samples[NUMPY_ROW])
        for name, values in samples.items():
            median = statistics.median(values)
            rows.append(
                {
                    "configuration": f"{name} ({phase})" if name == NUMPY_ROW else name,
                    "phase": phase,
                    "median_s": median,
                    "samples_s": values,
                    "throughput_GBps": nbytes / median / 1e9,
                    "vs_numpy": numpy_time / median,
                }
            )
    by_name = {r["configuration"]: r for r in rows}
    targets = []
    for mode in ("threads", "processes"):
        for layout in LAYOUTS:
            one = by_name[f"dask {mode} 1, {layout}"]
            two = by_name[f"dask {mode} 2, {layout}"]
            per_worker = one["median_s"] / two["median_s"]
            targets.append(
                {
                    "mode": mode,
                    "layout": layout,
                    "two_vs_one": per_worker,
                    "two_vs_numpy": two["vs_numpy"],
                    "meets": per_worker >= TARGET_WORKERS and two["vs_numpy"] >= TARGET_NUMPY,
                }
            )
    return {
        "shape": shape,
        "dtype": "float64",
        "mib": nbytes / 2**20,
        "chunks": {layout: _chunks(shape, layout, chunk_mib) for layout in LAYOUTS},
        "rounds": rounds,
        "cpu": cpu_model(),
        "numpy_kernels": _kernels(x),
        "cores": os.cpu_count(),
        "load_before": load_before,
        "load_after": _load(),
        "environment": environment(command, with_gpu=False),
        "graph_build_s_10k_chunks": _graph_build_seconds(),
        "rows": rows,
        "targets": targets,
    }


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables."""
    lines = [
        f"float64 softmax over the last axis of {report['shape']} ({report['mib']:.0f} MiB), "
        f"median of {report['rounds']} interleaved rounds per phase (threads; then 1, then 2 "
        f"worker processes, each with its cluster up); {report['cpu']}, "
        f"{report['cores']} cores; load (uptime) before {report['load_before']}, after "
        f"{report['load_after']}. NumPy row and Dask blocks on the "
        f"{report.get('numpy_kernels', 'numpy')} kernels, one thread each. "
        "Dask timed as `persist`; throughput = input bytes / time."
        + "".join(
            f" Chunks, {layout}: {tuple(chunks)}."
            for layout, chunks in report.get("chunks", {}).items()
        ),
        "",
        "| configuration | median s | GB/s | vs NumPy 1 thread (same phase) |",
        "|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['configuration']} | {r['median_s']:.3f} | {r['throughput_GBps']:.2f} "
            f"| {r['vs_numpy']:.2f}x |"
        )
    lines += [
        "",
        f"| mode | layout | 2 workers vs 1 (target {TARGET_WORKERS}x) "
        f"| 2 workers vs NumPy (target {TARGET_NUMPY}x) | met |",
        "|---|---|---|---|---|",
    ]
    for t in report["targets"]:
        lines.append(
            f"| {t['mode']} | {t['layout']} | {t['two_vs_one']:.2f}x | {t['two_vs_numpy']:.2f}x "
            f"| {'yes' if t['meets'] else 'no'} |"
        )
    build = report["graph_build_s_10k_chunks"]
    lines += [
        "",
        "Graph building for 10^4 chunks (the call, nothing computed; CPU time): "
        + ", ".join(f"{k} {v:.3f} s" for k, v in build.items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


def _one_thread_libraries() -> None:
    """Native thread pools of one thread (unless the caller set them) in the cluster's
    workers, which inherit this environment: the workers are the parallelism. (This
    process's pools were sized when NumPy loaded; the softmax calls no BLAS.) Set in
    ``main``, not on import: the GPU report imports this module."""
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(variable, "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__)
    parser.add_argument("--mib", type=int, default=512, help="array size in MiB (float64)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument(
        "--chunk-mib",
        type=int,
        default=None,
        help="chunk size in MiB (default: Dask's array.chunk-size, 128 MiB unless configured); "
        "at most a quarter of the array",
    )
    parser.add_argument("--quick", action="store_true", help="64 MiB, 3 rounds")
    parser.add_argument("--name", default="scaling-latest", help="folder under results/")
    args = parser.parse_args(argv)
    mib, rounds = (64, 3) if args.quick else (args.mib, args.rounds)
    _one_thread_libraries()
    if args.chunk_mib is not None and args.chunk_mib <= 0:
        parser.error(f"--chunk-mib must be a positive number of MiB, got {args.chunk_mib}")
    chunk_mib = _dask_chunk_mib() if args.chunk_mib is None else args.chunk_mib
    command = " ".join(["python -m benchmarks.scaling", *(sys.argv[1:] if argv is None else argv)])
    report = run(mib, rounds, chunk_mib, command)
    out = ROOT / "benchmarks" / "results" / args.name
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (out / "scaling.md").write_text(text)
    print(text)
    print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
