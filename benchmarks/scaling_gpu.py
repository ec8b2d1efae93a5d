"""Scale-out on Dask with CuPy chunks (the GPU variant of ``benchmarks.scaling``).

``python -m benchmarks.scaling_gpu`` times one softmax over the last axis of a 512 MiB CuPy
array (float32 and float64), interleaved over rounds: the public function on the CuPy array
in one call, and on Dask arrays of CuPy chunks (whole rows, and the axis split in two) on
the threaded scheduler with 1 and 2 threads on one GPU. Where ``dask_cuda`` is installed and
several GPUs are visible, it adds ``dask_cuda.LocalCUDACluster`` with one worker on one GPU
and one worker per GPU, inputs generated on the workers. Each sample synchronises the
device before it starts and after the result is there, and is timed on the host clock: a
Dask call is host work (graph, scheduling) around the kernels, which CUDA events alone would
miss. Writes ``scaling-gpu.json`` and ``scaling-gpu.md`` into ``--out``. Without a usable
GPU it exits with code 2.

UNVERIFIED: written without a GPU; it has never run on one.

Examples
--------
``python -m benchmarks.scaling_gpu --out benchmarks/results/h200 --rounds 5``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from ._impls import gpu_available
from .scaling import interleaved

COLUMNS = 4096


def _chunks(rows: int, layout: str) -> tuple[int, int]:
    """Eight chunks: whole rows, or half rows in twice as many row blocks' height."""
    if layout == "whole rows":
        return rows // 8, COLUMNS
    return rows // 4, COLUMNS // 2


def _synchronised(call: Callable[[], Any]) -> Callable[[], None]:
    import cupy

    def timed() -> None:
        result = call()
        cupy.cuda.Device().synchronize()
        del result

    return timed


def _configurations(stack: ExitStack, x: Any) -> dict[str, Callable[[], None]]:
    import dask.array as da

    import portable_softmax as ps

    configs = {"cupy, one call": _synchronised(lambda: ps.softmax(x))}
    for layout in ("whole rows", "split axis"):
        # name=False: no token from hashing 512 MiB (which would copy it to the host)
        chunks = _chunks(x.shape[0], layout)
        xd = da.from_array(x, chunks=chunks, asarray=False, name=False)  # type: ignore[no-untyped-call]
        for threads in (1, 2):

            def threaded(xd: Any = xd, threads: int = threads) -> Any:
                return ps.softmax(xd).persist(scheduler="threads", num_workers=threads)

            configs[f"dask threads {threads}, {layout}, 1 GPU"] = _synchronised(threaded)
    configs.update(_cuda_clusters(stack, x))
    return configs


def _cuda_clusters(stack: ExitStack, x: Any) -> dict[str, Callable[[], None]]:
    """LocalCUDACluster rows, where dask_cuda is installed and there are several GPUs."""
    import cupy

    if importlib.util.find_spec("dask_cuda") is None:
        return {}
    gpus = cupy.cuda.runtime.getDeviceCount()
    if gpus < 2:
        return {}
    import dask.array as da
    import distributed

    import portable_softmax as ps

    configs: dict[str, Callable[[], None]] = {}
    for workers in (1, gpus):
        client = stack.enter_context(_cuda_cluster(workers))
        for layout in ("whole rows", "split axis"):
            state = da.random.RandomState(0, RandomState=cupy.random.RandomState)  # type: ignore[no-untyped-call]
            chunks = _chunks(x.shape[0], layout)
            xd = client.persist(state.standard_normal(x.shape, chunks=chunks).astype(x.dtype))
            distributed.wait(xd)  # type: ignore[no-untyped-call]

            def processes(xd: Any = xd, client: Any = client) -> None:
                y = client.persist(ps.softmax(xd))
                distributed.wait(y)  # type: ignore[no-untyped-call]
                client.run(_synchronise_device)  # the tasks return before their kernels end
                del y

            configs[f"LocalCUDACluster {workers} GPU(s), {layout}"] = processes
    return configs


def _synchronise_device() -> None:
    """On a worker: wait for its GPU's queued work."""
    import cupy

    cupy.cuda.Device().synchronize()


@contextmanager
def _cuda_cluster(gpus: int) -> Iterator[Any]:
    import distributed
    from dask_cuda import LocalCUDACluster  # type: ignore[import-not-found]

    visible = ",".join(str(i) for i in range(gpus))
    with (
        LocalCUDACluster(CUDA_VISIBLE_DEVICES=visible, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        yield client


def run(
    mib: int, rounds: int, done: Callable[[list[dict[str, Any]]], None] = lambda rows: None
) -> list[dict[str, Any]]:
    """Every configuration for float32 and float64, ``rounds`` interleaved samples each;
    ``done(rows so far)`` after each dtype (a time limit then still leaves results)."""
    import cupy

    rows_out: list[dict[str, Any]] = []
    for dtype in ("float32", "float64"):
        itemsize = cupy.dtype(dtype).itemsize
        rows = max(16, mib * 2**20 // (itemsize * COLUMNS)) // 16 * 16
        x = cupy.random.default_rng(0).standard_normal((rows, COLUMNS), dtype=dtype)
        with ExitStack() as stack:
            device = cupy.cuda.Device()
            samples = interleaved(_configurations(stack, x), rounds, device.synchronize)
        one_call = statistics.median(samples["cupy, one call"])
        for name, values in samples.items():
            median = statistics.median(values)
            rows_out.append(
                {
                    "dtype": dtype,
                    "configuration": name,
                    "median_s": median,
                    "samples_s": values,
                    "throughput_GBps": x.nbytes / median / 1e9,
                    "vs_one_call": one_call / median,
                }
            )
        done(rows_out)
    return rows_out


def markdown(rows: list[dict[str, Any]], mib: int, rounds: int) -> str:
    lines = [
        f"softmax over the last axis of {mib} MiB CuPy arrays, median of {rounds} interleaved "
        "rounds, host clock around synchronised calls; throughput = input bytes / time.",
        "",
        "| dtype | configuration | median ms | GB/s | vs one CuPy call |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dtype']} | {r['configuration']} | {r['median_s'] * 1e3:.2f} "
            f"| {r['throughput_GBps']:.0f} | {r['vs_one_call']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling_gpu", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--mib", type=int, default=512, help="array size in MiB")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    args = parser.parse_args(argv)
    reason = gpu_available()
    if reason is not None:
        print(
            f"error: python -m benchmarks.scaling_gpu needs an NVIDIA GPU; here: {reason}. "
            "The CPU scaling report is python -m benchmarks.scaling.",
            file=sys.stderr,
        )
        return 2
    args.out.mkdir(parents=True, exist_ok=True)

    def write(rows: list[dict[str, Any]]) -> None:
        (args.out / "scaling-gpu.json").write_text(json.dumps(rows, indent=1) + "\n")
        text = markdown(rows, args.mib, args.rounds)
        (args.out / "scaling-gpu.md").write_text(text)
        print(text, flush=True)

    run(args.mib, args.rounds, write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
