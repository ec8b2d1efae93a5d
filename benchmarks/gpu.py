"""The GPU session: ``python -m benchmarks.gpu`` on an NVIDIA machine, no nox, no network.

Phases, in order (``--only`` picks some; each has its own time limit, all fit in 8 minutes):

1. ``check``: ``benchmarks.gpu_check``, every CuPy kernel (family x dtype x variant,
   edges included) against the generic path in float64; this also compiles the kernels.
2. ``memcheck``, ``racecheck``: the same check on small shapes under compute-sanitizer.
3. ``suite-generic``: the conformance suite on CuPy, generic path
   (``PORTABLE_SOFTMAX_PATH=generic``), GPU required: a missing GPU fails, never skips.
4. ``suite-kernels``: the suite on CuPy through the kernels (``PORTABLE_SOFTMAX_PATH=cupy``,
   implementation ``conformance.adapters.cupy_kernels``: the calls the registry gives the
   kernels run on them, the rest on the generic path, and the adapter counts which).
5. ``bench``: ``benchmarks.gpu_kernels``, the kernels against torch on 256 MiB arrays,
   rows of 1K-256K, float32/float16/bfloat16, the copy bandwidth and the CPU numbers.
6. ``scaling``: ``benchmarks.scaling_gpu``, Dask with CuPy chunks against one CuPy call on
   512 MiB (threads on one GPU; ``dask_cuda.LocalCUDACluster`` where there are several).
7. ``grid`` (not by default): the older GPU-vs-CPU grid of ``python -m benchmarks``.

Everything goes to ``benchmarks/results/<card>-<date>/`` (or ``--out``), with
``gpu-session.json`` summing up, and a short table is printed last. Without a GPU it stops
at once with exit code 2; otherwise the exit code is 0 only if every check and suite passed.
UNVERIFIED: the phases other than ``grid`` were written without a GPU and have never run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._cases import CPU_SHAPES, DTYPES, GPU_ONLY_SHAPES, OPS, format_shape
from ._cli import execute
from ._env import gpu_description
from ._impls import gpu_available
from ._report import fmt_time
from ._run import Settings


def card_slug(name: str) -> str:
    """``"NVIDIA H100 80GB HBM3"`` -> ``"nvidia-h100-80gb-hbm3"``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


def default_out(card: str, today: datetime.date | None = None) -> Path:
    day = (today or datetime.datetime.now(datetime.timezone.utc).date()).isoformat()
    return Path("benchmarks/results") / f"{card_slug(card)}-{day}"


PHASES = ("check", "memcheck", "racecheck", "suite-generic", "suite-kernels", "bench", "scaling")
LIMITS = {
    "check": 50.0,
    "memcheck": 40.0,
    "racecheck": 40.0,
    "suite-generic": 105.0,
    "suite-kernels": 105.0,
    "bench": 70.0,
    "scaling": 40.0,
    "grid": 120.0,
}
"""Seconds per phase: 450 in all by default, under gpu_run.sh's 470, so a rerun still fits."""
TESTS = ("check", "memcheck", "racecheck", "suite-generic", "suite-kernels")


def _suite(out: Path, label: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "conformance",
        "--backend",
        "cupy",
        "-q",
        "-p",
        "no:cacheprovider",
        "--report",
        str(out / f"conformance-{label}"),
    ]


def phase_command(name: str, out: Path) -> tuple[list[str], dict[str, str]] | None:
    """The command line and extra environment of a subprocess phase (None: none needed, e.g.
    compute-sanitizer missing, reported by the caller)."""
    check = [sys.executable, "-m", "benchmarks.gpu_check"]
    if name == "check":
        return check, {}
    if name in ("memcheck", "racecheck"):
        sanitizer = shutil.which("compute-sanitizer")
        if sanitizer is None:
            return None
        return [sanitizer, "--tool", name, "--error-exitcode", "9", *check, "--small"], {}
    profile = {"PORTABLE_SOFTMAX_HYPOTHESIS_PROFILE": "gpu"}
    if name == "suite-generic":
        return _suite(out, "generic"), {**profile, "PORTABLE_SOFTMAX_PATH": "generic"}
    if name == "suite-kernels":
        env = {
            **profile,
            "PORTABLE_SOFTMAX_PATH": "cupy",
            "PORTABLE_SOFTMAX_KERNEL_COUNTS": str(out / "kernel-counts.json"),
        }
        return [*_suite(out, "kernels"), "--impl", "conformance.adapters.cupy_kernels"], env
    if name == "scaling":
        return [sys.executable, "-m", "benchmarks.scaling_gpu", "--out", str(out)], {}
    raise ValueError(f"phase {name!r} does not run as a subprocess")


def run_phase(
    out: Path, name: str, command: list[str], env: dict[str, str], timeout: float
) -> dict[str, Any]:
    """Run one phase; its output goes to ``out/<name>.log``; the last line is its summary."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        code: int | None = done.returncode
        log = done.stdout + done.stderr
    except subprocess.TimeoutExpired as error:
        code = None
        log = _text(error.stdout) + _text(error.stderr) + f"\nTIMED OUT after {timeout:.0f} s"
    (out / f"{name}.log").write_text(log)
    lines = [line for line in log.strip().splitlines() if line.strip()]
    return {
        "phase": name,
        "command": " ".join(command[1:]),
        "env": env,
        "returncode": code,
        "summary": lines[-1] if lines else "",
        "seconds": time.monotonic() - started,
    }


def run_conformance(out: Path, timeout: float, label: str = "generic") -> dict[str, Any]:
    """The suite on CuPy (``label`` generic or kernels); log and matrix under ``out``."""
    name = f"suite-{label}"
    command, env = phase_command(name, out) or ([], {})
    result = run_phase(out, name, command, env, timeout)
    shutil.copy(out / f"{name}.log", out / "conformance.log")
    return result


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def short_table(payload: dict[str, Any]) -> list[str]:
    """The lines printed last: one per GPU case, then the GPU targets."""
    rows = [r for r in payload["rows"] if r["key"] == "ours [cupy]"]
    pairs = {(p["op"], tuple(p["shape"]), p["dtype"]): p for p in payload["gpu_vs_cpu"]}
    lines = [
        f"{'case':<30} {'GPU':>10} {'+transfers':>11} {'copy BW':>8} "
        f"{'vs torch':>9} {'vs naive':>9} {'vs CPU':>8}"
    ]
    for r in rows:
        case = f"{r['op']} {format_shape(tuple(r['shape']))} {r['dtype']}"
        if r["status"] != "ok":
            lines.append(f"{case:<30} {r['status']}: {r['reason']}")
            continue
        pair = pairs.get((r["op"], tuple(r["shape"]), r["dtype"]), {})
        vs = r.get("speedup_vs", {})
        cells = [
            fmt_time(r["median_s"]),
            fmt_time(r.get("with_transfers", {}).get("median_s")),
            _pct(1 / r["x_copy_floor"] if r.get("x_copy_floor") else None),
            _x(vs.get("torch")),
            _x(vs.get("naive")),
            _x(pair.get("speedup")),
        ]
        lines.append(
            f"{case:<30} {cells[0]:>10} {cells[1]:>11} {cells[2]:>8} "
            f"{cells[3]:>9} {cells[4]:>9} {cells[5]:>8}"
        )
    for target in payload["targets"]:
        if target["target"].startswith("GPU"):
            lines.append(f"{target['status']}: {target['target']} ({target['detail']})")
    return lines


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu", description=(__doc__ or "").splitlines()[0]
    )
    p.add_argument(
        "--out", type=Path, default=None, help="default: benchmarks/results/<card>-<date>"
    )
    p.add_argument("--copy-to", type=Path, default=None, help="also copy the results folder here")
    p.add_argument(
        "--only",
        default=",".join(PHASES),
        help=f"comma-separated phases (default {','.join(PHASES)}; also: grid)",
    )
    p.add_argument("--skip-conformance", action="store_true", help="leave out both suites")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every phase's time limit")
    args = p.parse_args(argv)
    phases = [x.strip() for x in args.only.split(",") if x.strip()]
    bad = [x for x in phases if x not in (*PHASES, "grid")]
    if bad or not phases:
        p.error(
            f"--only {args.only!r}: unknown {bad or 'empty list'}; choose from "
            f"{','.join((*PHASES, 'grid'))}"
        )
    if args.skip_conformance:
        phases = [x for x in phases if not x.startswith("suite")]
    args.phases = phases
    return args


def _grid(out: Path, argv: Sequence[str] | None, budget: float) -> dict[str, Any]:
    """The older GPU-vs-CPU grid of ``python -m benchmarks`` (ours, naive, torch)."""
    shapes = [*CPU_SHAPES, *GPU_ONLY_SHAPES]
    settings = Settings(
        repeats=10,
        min_sample_s=1e-3,
        warmup=1,
        gpu_max_duration=1.0,
        budget_s=max(10.0, budget),
        cpu_only_ours_shapes=tuple(shapes),
        first_call_runs=(0, 0),  # a CPU figure: the CPU report measures it
    )
    return execute(
        out=out,
        backends=("numpy", "cupy"),
        shapes=shapes,
        dtypes=DTYPES,
        ops=OPS,
        peers=("naive", "torch"),
        settings=settings,
        command=" ".join(
            ["python -m benchmarks.gpu", *(argv if argv is not None else sys.argv[1:])]
        ),
        notes=["GPU session: on the CPU only ours (NumPy) runs, for the GPU/CPU speedups"],
    )


def _run_one(
    name: str, out: Path, card: str, argv: Sequence[str] | None, limit: float
) -> dict[str, Any]:
    """One phase; the grid's payload comes back under "payload" for the short table."""
    begun = time.monotonic()
    if name == "bench":
        from . import gpu_kernels

        bench = gpu_kernels.run(
            lengths=gpu_kernels.ROW_LENGTHS,
            dtypes=gpu_kernels.DTYPES,
            ops=gpu_kernels.OPS,
            repeats=10,
            budget_s=limit,
            cpu=True,
        )
        gpu_kernels.write(bench, out, card)
        summary = f"{len(bench['rows'])} rows in kernels-benchmark.md"
        return {
            "phase": name,
            "returncode": 0,
            "summary": summary,
            "seconds": time.monotonic() - begun,
        }
    if name == "grid":
        payload = _grid(out, argv, limit)
        summary = f"{len(payload['rows'])} rows in benchmark.md"
        return {
            "phase": name,
            "returncode": 0,
            "summary": summary,
            "seconds": time.monotonic() - begun,
            "payload": payload,
        }
    spec = phase_command(name, out)
    if spec is None:
        return {"phase": name, "returncode": None, "summary": "compute-sanitizer not found"}
    return run_phase(out, name, *spec, limit)


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()
    args = _parse(argv)
    reason = gpu_available()
    if reason is not None:
        print(
            "error: python -m benchmarks.gpu needs an NVIDIA GPU on which CuPy runs a kernel "
            f"(cupy.arange(3).sum()); here: {reason}. For the CPU benchmark run "
            "python -m benchmarks.",
            file=sys.stderr,
        )
        return 2
    card = (gpu_description() or {}).get("name", "gpu")
    out: Path = args.out or default_out(card)
    out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    payload = None
    for name in args.phases:
        limit = LIMITS[name] * args.scale
        print(f"{name} (up to {limit:.0f} s) ...", file=sys.stderr)
        try:
            result = _run_one(name, out, card, argv, limit)
        except Exception as error:  # a phase that breaks is a result too: record it, go on
            result = {"phase": name, "returncode": None, "summary": f"failed: {error!r}"}
        payload = result.pop("payload", payload)
        results.append(result)
        print(f"{name}: {result['summary']} (exit code {result['returncode']})", file=sys.stderr)
    session = {"card": card, "phases": results, "seconds": time.monotonic() - started}
    (out / "gpu-session.json").write_text(json.dumps(session, indent=1) + "\n")
    if args.copy_to is not None:
        shutil.copytree(out, args.copy_to / out.name, dirs_exist_ok=True)
    print(f"results: {out}" + (f" (copied to {args.copy_to / out.name})" if args.copy_to else ""))
    for result in results:
        print(f"{result['phase']:<14} exit {result['returncode']}: {result['summary']}")
    if (out / "kernels-benchmark.md").exists() and "bench" in args.phases:
        print((out / "kernels-benchmark.md").read_text())
    if payload is not None:
        print("\n".join(short_table(payload)))
    failed = [r for r in results if r["phase"] in TESTS and r["returncode"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
