"""Command line of ``python -m benchmarks`` (and the shared driver of ``benchmarks.gpu``)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import _first_call
from ._cases import (
    CPU_SHAPES,
    DTYPES,
    GPU_ONLY_SHAPES,
    OPS,
    QUICK_SHAPES,
    format_shape,
    parse_shape,
)
from ._derive import crossovers, derive, gpu_vs_cpu
from ._env import environment
from ._impls import PEERS, build, gpu_available
from ._ours import auto_fast_paths, numba_unavailable
from ._plot import plot
from ._progress import Progress
from ._report import markdown, summary_table, write_json
from ._run import Settings, case_count, run_all
from ._targets import targets

DEFAULT_OUT = Path("benchmarks/results/latest")
QUICK = Settings(
    repeats=5, min_sample_s=5e-4, warmup=1, gpu_max_duration=0.5, first_call_runs=(1, 1)
)
FULL = Settings()


def _choices(text: str, allowed: Sequence[str], option: str) -> tuple[str, ...]:
    items = tuple(part.strip() for part in text.split(",") if part.strip())
    if items == ("none",) and option == "--peers":
        return ()
    bad = [item for item in items if item not in allowed]
    if bad or not items:
        raise SystemExit(
            f"error: {option} {text!r}: unknown {bad or 'empty list'}; "
            f"choose a comma-separated subset of {','.join(allowed)}"
        )
    return items


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Time portable_softmax (forward, backward, cross-entropy) against the naive "
            "array-API chain, SciPy, PyTorch and JAX, next to the copy and compute floors, "
            "and write benchmark.json, benchmark.md, benchmark.png and benchmark-variants.png."
        ),
    )
    p.add_argument("--quick", action="store_true", help="small grid, few repeats (< 1 minute)")
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output folder (default: {DEFAULT_OUT}, relative to the working directory)",
    )
    p.add_argument(
        "--backends",
        default="auto",
        help="numpy,cupy (default auto: numpy, plus cupy when a CuPy kernel runs here; "
        "asking for cupy without a GPU is an error)",
    )
    p.add_argument(
        "--sizes",
        default=None,
        help="shapes, e.g. 8x10,4096x4096,1000000 (default: "
        + ",".join(format_shape(s) for s in CPU_SHAPES)
        + "; plus "
        + ",".join(format_shape(s) for s in GPU_ONLY_SHAPES)
        + " with a GPU; --quick: "
        + ",".join(format_shape(s) for s in QUICK_SHAPES)
        + ")",
    )
    p.add_argument("--dtypes", default=",".join(DTYPES), help="default: float32,float64")
    p.add_argument("--ops", default=",".join(OPS), help="default: forward,backward,xent")
    p.add_argument(
        "--peers",
        default=",".join(PEERS),
        help="default: direct,naive,scipy,torch,jax ('none': no peers)",
    )
    p.add_argument("--repeats", type=int, default=None, help="samples per implementation")
    p.add_argument(
        "--no-first-call",
        action="store_true",
        help="skip the first-call (import + compile) timing in fresh processes",
    )
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds; cases not started by then are reported as skipped",
    )
    return p


def resolve_backends(text: str) -> tuple[tuple[str, ...], str | None]:
    """The backends to run and, for auto, why CuPy was left out."""
    if text == "auto":
        reason = gpu_available()
        return (("numpy", "cupy") if reason is None else ("numpy",)), reason
    backends = _choices(text, ("numpy", "cupy"), "--backends")
    if "cupy" in backends:
        reason = gpu_available()
        if reason is not None:
            raise SystemExit(
                f"error: --backends cupy asked for, but no GPU runs CuPy here: {reason}"
            )
    return backends, None


def execute(
    *,
    out: Path,
    backends: tuple[str, ...],
    shapes: Sequence[tuple[int, ...]],
    dtypes: Sequence[str],
    ops: Sequence[str],
    peers: tuple[str, ...],
    settings: Settings,
    command: str,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """Run the grid and write benchmark.json / .md / .png under ``out``; return the payload."""
    started = time.monotonic()
    impls, peer_notes = build(backends, peers)
    env = environment(command, with_gpu="cupy" in backends)
    numba = numba_unavailable()
    first_call = None
    if "numpy" in backends:
        import portable_softmax as ps

        env["auto_fast_paths"] = auto_fast_paths()
        env["portable_softmax_threads"] = ps.get_num_threads()
        # before the grid: the fresh processes must not share the cores with timings
        first_call = _first_call.measure(*settings.first_call_runs, numba)
    progress = Progress(case_count(shapes, dtypes, ops, impls))
    try:
        rows, floors = run_all(shapes, dtypes, ops, impls, settings, progress)
    finally:
        progress.close()
    derive(rows)
    if hasattr(os, "getloadavg"):
        env["load_average_at_end"] = list(os.getloadavg())
    pairs = gpu_vs_cpu(rows)
    payload: dict[str, Any] = {
        "environment": env,
        "settings": {
            "repeats": settings.repeats,
            "min_sample_s": settings.min_sample_s,
            "warmup": settings.warmup,
            "backends": list(backends),
            "shapes": [list(s) for s in shapes],
            "dtypes": list(dtypes),
            "ops": list(ops),
            "peers": list(peers),
            "first_call_runs": list(settings.first_call_runs),
        },
        "notes": [*notes, *peer_notes],
        "floors": floors,
        "rows": rows,
        "first_call": first_call,
        "gpu_vs_cpu": pairs,
        "crossovers": crossovers(pairs),
        "targets": targets(rows, first_call, numba),
        "elapsed_s": time.monotonic() - started,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "benchmark.json", payload)
    (out / "benchmark.md").write_text(markdown(payload))
    plot(payload, out / "benchmark.png")
    return payload


def print_summary(payload: dict[str, Any], out: Path) -> None:
    """The summary table, the targets and where the files are, on stdout."""
    print("\n".join(summary_table(payload["rows"])))
    print()
    for target in payload["targets"]:
        print(f"{target['status']:>12}  {target['target']}")
        print(f"{'':>12}  {target['detail']}")
    print(
        f"wrote {out}/benchmark.json, benchmark.md, benchmark.png, benchmark-variants.png "
        f"({payload['elapsed_s']:.0f} s)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    backends, why_no_gpu = resolve_backends(args.backends)
    if args.sizes is not None:
        try:
            shapes = [parse_shape(part) for part in args.sizes.split(",") if part.strip()]
        except ValueError as error:
            raise SystemExit(f"error: {error}") from None
    elif args.quick:
        shapes = list(QUICK_SHAPES)
    else:
        shapes = list(CPU_SHAPES) + (list(GPU_ONLY_SHAPES) if "cupy" in backends else [])
    settings = QUICK if args.quick else FULL
    overrides: dict[str, Any] = {}
    if args.repeats is not None:
        if args.repeats < 1:
            raise SystemExit(f"error: --repeats {args.repeats}: give a positive count, e.g. 5")
        overrides["repeats"] = args.repeats
    if args.budget is not None:
        overrides["budget_s"] = args.budget
    if args.no_first_call:
        overrides["first_call_runs"] = (0, 0)
    if "cupy" in backends:
        overrides["cpu_only_ours_shapes"] = tuple(GPU_ONLY_SHAPES)
    settings = Settings(**{**settings.__dict__, **overrides})
    notes = [f"CuPy not benchmarked: {why_no_gpu}"] if why_no_gpu else []
    payload = execute(
        out=args.out,
        backends=backends,
        shapes=shapes,
        dtypes=_choices(args.dtypes, DTYPES, "--dtypes"),
        ops=_choices(args.ops, OPS, "--ops"),
        peers=_choices(args.peers, PEERS, "--peers"),
        settings=settings,
        command=" ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])]),
        notes=notes,
    )
    print_summary(payload, args.out)
    return 0
