"""Forward + backward through PyTorch's autograd, torch.compile and JAX, against the frameworks.

SPEC section 4's autodiff targets: on the CPU, float32, default threads, the step
``f(x)`` then ``backward()`` for softmax and log_softmax (of ``(f(x) * w).sum()``) and the
mean cross-entropy with integer labels, ours against ``torch.softmax`` / ``torch.log_softmax``
/ ``F.cross_entropy`` at (256, 1000) and (4096, 4096), eager and compiled; and
``jax.jit(jax.value_and_grad(cross_entropy))`` at (256, 1000) against the same transform of
``jax.nn.log_softmax`` plus a gather. Each pair is timed in interleaved rounds in one run
(medians); the report gives the ratios and each target's verdict.

Run ``python -m benchmarks.autodiff --out DIR`` (JSON and Markdown written there), or with
``--quick`` for fewer rounds.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import portable_softmax as ps
from benchmarks._env import environment
from benchmarks._timing import Entry, time_cpu

Step = Callable[[], Any]


def _median_pair(ours: Step, theirs: Step, rounds: int) -> tuple[float, float]:
    """Median seconds a call of ``ours`` and of ``theirs``, timed in ``rounds`` interleaved
    rounds by the harness's timer (samples of at least 10 ms)."""
    entries = [Entry("ours", ours, [()]), Entry("peer", theirs, [()])]
    stats = time_cpu(entries, repeats=rounds, min_sample_s=0.01)
    return stats["ours"].median, stats["peer"].median


def _torch_rows(shapes: list[tuple[int, int]], rounds: int, compiled: bool) -> list[dict[str, Any]]:
    import torch

    torch.manual_seed(0)
    return [row for shape in shapes for row in _torch_shape(shape, rounds, compiled)]


def _torch_shape(shape: tuple[int, int], rounds: int, compiled: bool) -> list[dict[str, Any]]:
    import torch
    import torch.nn.functional as F

    x = torch.randn(*shape, requires_grad=True)
    w = torch.randn(*shape)
    labels = torch.randint(0, shape[1], (shape[0],))
    pairs: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
        "softmax": (lambda t: (ps.softmax(t) * w).sum(), lambda t: (t.softmax(-1) * w).sum()),
        "log_softmax": (
            lambda t: (ps.log_softmax(t) * w).sum(),
            lambda t: (t.log_softmax(-1) * w).sum(),
        ),
        "cross_entropy": (
            lambda t: ps.cross_entropy(t, labels),
            lambda t: F.cross_entropy(t, labels),
        ),
    }
    rows = []
    for op, (ours, theirs) in pairs.items():
        if compiled:
            ours, theirs = torch.compile(ours, fullgraph=True), torch.compile(theirs)
        mine, other = _median_pair(_backward_step(ours, x), _backward_step(theirs, x), rounds)
        rows.append({
            "framework": "torch.compile" if compiled else "torch autograd",
            "op": op, "shape": list(shape), "ours_s": mine, "peer_s": other,
            "peer_over_ours": other / mine, "target": "peer_over_ours >= 1",
            "met": other / mine >= 1.0,
        })  # fmt: skip
    return rows


def _backward_step(f: Callable[[Any], Any], x: Any) -> Step:
    def step() -> None:
        f(x).backward()

    return step


def _jax_rows(rounds: int) -> list[dict[str, Any]]:
    import jax
    import jax.numpy as jnp

    x = jax.random.normal(jax.random.PRNGKey(0), (256, 1000), dtype=jnp.float32)
    labels = jax.random.randint(jax.random.PRNGKey(1), (256,), 0, 1000)

    def reference(t: Any) -> Any:
        picked = jnp.take_along_axis(jax.nn.log_softmax(t), labels[:, None], axis=1)
        return -jnp.mean(picked)

    ours = jax.jit(jax.value_and_grad(lambda t: ps.cross_entropy(t, labels)))
    theirs = jax.jit(jax.value_and_grad(reference))
    mine, other = _median_pair(
        lambda: ours(x)[1].block_until_ready(), lambda: theirs(x)[1].block_until_ready(), rounds
    )
    return [{
        "framework": "jax jit(value_and_grad)", "op": "cross_entropy", "shape": [256, 1000],
        "ours_s": mine, "peer_s": other, "ours_over_peer": mine / other,
        "target": "ours_over_peer <= 1.25", "met": mine / other <= 1.25,
    }]  # fmt: skip


def _markdown(rows: list[dict[str, Any]], env: dict[str, Any]) -> str:
    lines = [
        "# Autodiff: forward + backward against the frameworks",
        "",
        f"CPU: {env.get('cpu_model')}, {env.get('isa')}; threads: default; float32; "
        f"commit {env.get('git_commit')}.",
        "",
        "| framework | op | shape | ours | peer | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = row.get("peer_over_ours", row.get("ours_over_peer"))
        lines.append(
            f"| {row['framework']} | {row['op']} | {tuple(row['shape'])} | "
            f"{row['ours_s'] * 1e6:.0f} us | {row['peer_s'] * 1e6:.0f} us | {ratio:.2f} | "
            f"{row['target']} | {'yes' if row['met'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, (256, 1000) only")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 7
    shapes = [(256, 1000)] if args.quick else [(256, 1000), (4096, 4096)]
    rows = _torch_rows(shapes, rounds, compiled=False)
    rows += _torch_rows(shapes, rounds, compiled=True)
    rows += _jax_rows(rounds)
    env = environment("python -m benchmarks.autodiff", with_gpu=False)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "autodiff.json").write_text(json.dumps({"env": env, "rows": rows}, indent=1))
    (args.out / "autodiff.md").write_text(_markdown(rows, env))
    print(_markdown(rows, env))


if __name__ == "__main__":
    main()
