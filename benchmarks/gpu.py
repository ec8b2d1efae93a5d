"""The GPU session: ``python -m benchmarks.gpu`` on an NVIDIA machine, no nox, no network.

1. The conformance suite on CuPy with the GPU required (``pytest conformance --backend
   cupy``, Hypothesis profile ``gpu``): a missing GPU is an error there, never a skip.
2. The GPU-vs-CPU benchmark: ours, the naive chain and ``torch`` on the card, ours on the
   CPU, on the CPU grid plus (16384, 4096) (256 MiB in float32).

Everything goes to ``benchmarks/results/<card>-<date>/`` (or ``--out``), and a short table
is printed last. Without a GPU it stops at once with exit code 2 and the reason.
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

TOTAL_SECONDS = 360.0
"""The whole session (suite and benchmark) must fit in six minutes, so that a rerun fits."""


def card_slug(name: str) -> str:
    """``"NVIDIA H100 80GB HBM3"`` -> ``"nvidia-h100-80gb-hbm3"``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


def default_out(card: str, today: datetime.date | None = None) -> Path:
    day = (today or datetime.datetime.now(datetime.timezone.utc).date()).isoformat()
    return Path("benchmarks/results") / f"{card_slug(card)}-{day}"


def run_conformance(out: Path, timeout: float) -> dict[str, Any]:
    """``pytest conformance --backend cupy`` with the gpu profile; log and matrix under out."""
    command = [
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
        str(out / "conformance"),
    ]
    env = {**os.environ, "PORTABLE_SOFTMAX_HYPOTHESIS_PROFILE": "gpu"}
    started = time.monotonic()
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        code: int | None = done.returncode
        log = done.stdout + done.stderr
    except subprocess.TimeoutExpired as error:
        code = None
        log = _text(error.stdout) + _text(error.stderr) + f"\nTIMED OUT after {timeout:.0f} s"
    (out / "conformance.log").write_text(log)
    lines = [line for line in log.strip().splitlines() if line.strip()]
    return {
        "command": " ".join(command[1:]),
        "returncode": code,
        "summary": lines[-1] if lines else "",
        "seconds": time.monotonic() - started,
    }


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


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "--out", type=Path, default=None, help="default: benchmarks/results/<card>-<date>"
    )
    p.add_argument("--copy-to", type=Path, default=None, help="also copy the results folder here")
    p.add_argument("--skip-conformance", action="store_true", help="benchmark only")
    p.add_argument("--conformance-timeout", type=float, default=200.0, help="seconds (200)")
    args = p.parse_args(argv)
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
    conformance = None
    if not args.skip_conformance:
        print(
            f"conformance suite on cupy (up to {args.conformance_timeout:.0f} s) ...",
            file=sys.stderr,
        )
        conformance = run_conformance(out, args.conformance_timeout)
        print(f"conformance: {conformance['summary']}", file=sys.stderr)
    shapes = [*CPU_SHAPES, *GPU_ONLY_SHAPES]
    settings = Settings(
        repeats=10,
        min_sample_s=1e-3,
        warmup=1,
        gpu_max_duration=1.0,
        budget_s=max(30.0, TOTAL_SECONDS - 30 - (time.monotonic() - started)),
        cpu_only_ours_shapes=tuple(shapes),
        first_call_runs=(0, 0),  # a CPU figure: the CPU report measures it
    )
    payload = execute(
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
    session = {"card": card, "conformance": conformance, "seconds": time.monotonic() - started}
    (out / "gpu-session.json").write_text(json.dumps(session, indent=1) + "\n")
    if args.copy_to is not None:
        shutil.copytree(out, args.copy_to / out.name, dirs_exist_ok=True)
    print(f"results: {out}" + (f" (copied to {args.copy_to / out.name})" if args.copy_to else ""))
    if conformance is not None:
        print(
            f"conformance on cupy: {conformance['summary']} (exit code {conformance['returncode']})"
        )
    print("\n".join(short_table(payload)))
    return 0 if conformance is None or conformance["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
