"""The CuPy kernels against the generic path, on a GPU: every family, dtype and variant.

``python -m benchmarks.gpu_check [--small]`` describes each call as the public function does
(:func:`described`: validated, labels checked where the ``validate`` rule says), checks that
the registry hands it to the CuPy kernels under the path setting ``cupy``, runs it on
``portable_softmax._backends.cupy.<name>`` and compares the result with the generic path
(``use_path("generic")``, in float64 for the reference) on the same CuPy arrays: row lengths
that select the warp, block and online variants, aligned and unaligned rows, and rows holding
the edges of SPEC section 2 (+inf, all -inf, NaN, huge spreads). It fails when the registry
leaves a call to the generic path or no launch fits the device (the backend would then run
it on the generic path, unchecked here), when a value differs from the reference by more
than the dtype's bound, or when a variant was never launched. ``--small`` keeps the shapes
small enough for compute-sanitizer.

UNVERIFIED: written without a GPU; it has never run. Exit code 0 = all agree, 1 = not.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

LENGTHS = (1, 7, 33, 256, 1000, 1024, 1025, 4096, 4099, 16384, 16390, 40000)
SMALL_LENGTHS = (1, 7, 33, 1000, 1025, 4096, 4099, 16390, 20000)
DTYPES = ("float32", "float64", "float16")
TOLERANCE_EPS = {"float64": 2.0**-52, "float32": 2.0**-23, "float16": 2.0**-10}


def rows_with_edges(n: int, dtype: str, rng: np.random.Generator) -> np.ndarray:
    """Six rows: random, random with two +inf, all -inf, one NaN, a huge spread, equal."""
    x = rng.standard_normal((6, n)) * 4
    x[1, : min(2, n)] = np.inf
    x[2] = -np.inf
    x[3, n // 2] = np.nan
    big = float(np.finfo(dtype).max) / 2
    x[4, ::2] = big
    x[4, 1::2] = -big
    x[5] = 3.0
    return x.astype(dtype)


def bound(dtype: str, n: int) -> float:
    """Relative tolerance against the float64 reference: the float32 (float64) sums of SPEC
    section 3 with room for |x - m| up to ~40, plus the rounding of the output dtype."""
    acc = 2.0**-52 if dtype == "float64" else 2.0**-23
    return (80 + 2 * math.ceil(math.log2(max(n, 2)))) * acc + TOLERANCE_EPS[dtype]


MODES = {
    "softmax": "relative",
    "log_softmax": "absolute",
    "logsumexp": "absolute",
    "cross_entropy": "absolute",
}
"""How errors scale: ``relative`` to the value, ``absolute`` to ``|value| + 1``, and (the
rest: derivatives, gradients) to ``|value|`` plus the row's largest ``|value|`` (at least
``1/N`` for N rows, the size of one term of a mean's gradient)."""


def compare(got: np.ndarray, want: np.ndarray, tol: float, mode: str, dtype: str) -> str | None:
    """None when ``got`` matches ``want`` (NaN and inf where it has them), else why not."""
    got = got.astype(np.float64)
    if got.shape != want.shape:
        return f"shape {got.shape} != {want.shape}"
    nan = np.isnan(want)
    if not np.array_equal(np.isnan(got), nan):
        return f"NaN differs at {np.argwhere(np.isnan(got) != nan)[:3].tolist()}"
    finite = np.isfinite(want)
    if not np.array_equal(got[~finite & ~nan], want[~finite & ~nan]):
        return "infinities differ"
    clean = np.where(finite, want, 0.0)
    if mode == "relative":
        info = np.finfo(dtype)
        limit = tol * np.abs(clean) + 2 * float(info.smallest_subnormal) + tol * float(info.tiny)
    elif mode == "absolute":
        limit = tol * (np.abs(clean) + 1)
    else:
        row = np.max(np.abs(clean), axis=-1, keepdims=True) if clean.ndim else np.abs(clean)
        # rows whose terms cancel to exactly 0 (one class with smoothing: w - eps w - (1-eps) w)
        # keep the rounding of the terms, about 1/N each under "mean": that is the floor
        floor = 1.0 / clean.shape[0] if clean.ndim and clean.shape[0] else 1.0
        limit = tol * (np.abs(clean) + np.maximum(row, floor))
    err = np.where(finite, np.abs(got - clean), 0.0)
    if np.any(err > limit):
        i = np.unravel_index(int(np.argmax(err - limit)), err.shape)
        return (
            f"error {err[i]:.3g} above {limit[i]:.3g} at {tuple(map(int, i))} (want {want[i]:.6g})"
        )
    return None


def problem(name: str, got: Any, want: Any, dtype: str, n: int) -> str | None:
    """:func:`compare` with the function's mode and bound; ``cross_entropy_with_grad``'s
    pair compared part by part (the loss as ``cross_entropy``'s, the gradient as a row)."""
    tol = bound(dtype, n)
    if name == "cross_entropy_with_grad":
        for part, mode, g, w in (
            ("loss", MODES["cross_entropy"], got[0], want[0]),
            ("gradient", "row", got[1], want[1]),
        ):
            found = compare(np.asarray(g), np.asarray(w, dtype=np.float64), tol, mode, dtype)
            if found is not None:
                return f"{part}: {found}"
        return None
    mode = MODES.get(name, "row")
    return compare(np.asarray(got), np.asarray(want, dtype=np.float64), tol, mode, dtype)


KERNELS = {"cross_entropy_with_grad": ("xent", 1)}
"""(family, operation code) of what ``_launch.FUNCTIONS`` does not list: the pair's variant
is the gradient kernel's (the loss kernel's row lengths select the same)."""

Case = tuple[str, str, int, tuple[Any, ...], dict[str, Any]]


def cases(cp: Any, lengths: Sequence[int], dtypes: Sequence[str], seed: int = 0) -> list[Case]:
    """(function, dtype, n, arrays, options) for every call of the check."""
    rng = np.random.default_rng(seed)
    out: list[Case] = []
    for dtype in dtypes:
        for n in lengths:
            x = cp.asarray(rows_with_edges(n, dtype, rng))
            finite = cp.asarray((rng.standard_normal((6, n)) * 3).astype(dtype))
            # a softmax output that is not uniform: with p = 1/n the two log_softmax
            # derivatives (g - p sum g, t - sum p t) coincide and could not tell apart
            z = rng.standard_normal((6, n))
            p = np.exp(z - z.max(axis=-1, keepdims=True))
            y = cp.asarray((p / p.sum(axis=-1, keepdims=True)).astype(dtype))
            g = cp.asarray(rng.standard_normal((6, n)).astype(dtype))
            for name in ("softmax", "log_softmax"):
                out.append((name, dtype, n, (x,), {}))
                out.append((name, dtype, n, (finite,), {"temperature": 2.5}))
            out.append(("logsumexp", dtype, n, (x,), {}))
            for name in ("softmax_backward", "softmax_jvp"):
                out.append((name, dtype, n, (g, y), {"temperature": 0.5}))
            for name in ("log_softmax_backward", "log_softmax_jvp"):
                out.append((name, dtype, n, (g, cp.log(y)), {}))
            weight = cp.asarray(rng.uniform(0.5, 2.0, n).astype(dtype))
            valid = cp.asarray(rng.integers(0, n, size=6))
            edges = cp.asarray([-1, n, 0, n - 1, -1, 0])  # ignored or invalid: 0 or NaN
            ignored = cp.asarray([-1, 0, n - 1, -1, 0, 0])
            for labels, options in (
                (edges, {"reduction": "none", "validate": False}),
                (
                    edges,
                    {
                        "reduction": "none",
                        "ignore_index": -1,
                        "label_smoothing": 0.3,
                        "validate": False,
                    },
                ),
                (ignored, {"reduction": "mean", "ignore_index": -1, "weight": weight}),
                (valid, {"reduction": "sum", "label_smoothing": 0.1}),
                (valid, {"reduction": "mean", "label_smoothing": 0.2, "weight": weight}),
            ):
                for name in ("cross_entropy", "cross_entropy_backward", "cross_entropy_with_grad"):
                    out.append((name, dtype, n, (finite, labels), options))
    return out


_VECTOR_NAMES = {
    "softmax_backward": ("y", "grad"),
    "softmax_jvp": ("y", "tangent"),
    "log_softmax_backward": ("logp", "grad"),
    "log_softmax_jvp": ("logp", "tangent"),
}


def described(name: str, arrays: tuple[Any, ...], options: dict[str, Any]) -> Any:
    """The described call that ``portable_softmax.<name>(*arrays, **options)`` hands to the
    dispatcher (``_lib._describe``, then ``_lib._labels.check_labels`` for cross-entropy),
    for the cases of :func:`cases` (the last axis, no ``where``)."""
    from portable_softmax._lib._describe import describe, describe_cross_entropy
    from portable_softmax._lib._labels import check_labels

    if name.startswith("cross_entropy"):
        logits, target = arrays
        call = describe_cross_entropy(
            name,
            logits,
            target,
            grad=options.get("grad"),
            axis=-1,
            reduction=options.get("reduction", "mean"),
            weight=options.get("weight"),
            ignore_index=options.get("ignore_index"),
            label_smoothing=options.get("label_smoothing", 0.0),
            where=None,
            validate=options.get("validate"),
        )
        return check_labels(call)
    temperature = options.get("temperature")
    if name in _VECTOR_NAMES:
        vector, primal = arrays  # the public order: (grad or tangent, y or logp)
        return describe(
            name, primal, vector, names=_VECTOR_NAMES[name], axis=-1, where=None,
            temperature=temperature,
        )  # fmt: skip
    keepdims = {"keepdims": options.get("keepdims", False)} if name == "logsumexp" else {}
    return describe(name, arrays[0], axis=-1, where=None, temperature=temperature, **keepdims)


def _reference(
    ps: Any, cp: Any, name: str, arrays: tuple[Any, ...], options: dict[str, Any]
) -> Any:
    """The generic path in float64 (labels stay integers), whatever the path setting."""
    wide = tuple(a.astype(cp.float64) if a.dtype.kind == "f" else a for a in arrays)
    wide_options = {
        k: (v.astype(cp.float64) if hasattr(v, "astype") else v) for k, v in options.items()
    }
    with ps.use_path("generic"):
        return getattr(ps, name)(*wide, **wide_options)


def _host(cp: Any, result: Any) -> Any:
    if isinstance(result, tuple):
        return tuple(cp.asnumpy(r) for r in result)
    return cp.asnumpy(result)


def run(lengths: Sequence[int], dtypes: Sequence[str]) -> tuple[list[str], set[str]]:
    """Failures (one line each) and the (family, variant, dtype) launches seen."""
    import cupy as cp

    import portable_softmax as ps
    import portable_softmax._backends.cupy as kernels
    from portable_softmax import _dispatch
    from portable_softmax._backends.cupy import _kernels, _launch

    device_id = cp.cuda.Device().id
    device = _kernels.properties(device_id)
    started = time.monotonic()
    _kernels._function(device_id, _launch.name_expressions()[0])  # compiles (or loads) all
    print(f"kernels compiled or loaded from CuPy's cache in {time.monotonic() - started:.1f} s")
    failures: list[str] = []
    seen: set[str] = set()
    for name, dtype, n, arrays, options in cases(cp, lengths, dtypes):
        label = f"{name} n={n} {dtype} {sorted(options)}"
        family, op = KERNELS.get(name) or _launch.FUNCTIONS[name]
        launch = _launch.plan(family, op, dtype, 6, n, device, [a.data.ptr for a in arrays])
        if launch is None:
            failures.append(f"{label}: no launch fits this device (the generic path would run)")
            continue
        seen.add(f"{family}/{launch.variant}/{dtype}")
        try:
            call = described(name, arrays, options)
            if _dispatch.serving(call, "cupy") is not _dispatch.CUPY:
                failures.append(f"{label}: the registry leaves the call to the generic path")
                continue
            got = getattr(kernels, name)(call)
        except Exception as error:  # report every failure, keep checking the rest
            failures.append(f"{label}: {type(error).__name__}: {error}")
            continue
        want = _host(cp, _reference(ps, cp, name, arrays, options))
        found = problem(name, _host(cp, got), want, dtype, n)
        if found is not None:
            failures.append(f"{label}: {found}")
    expected = {
        f"{family}/{variant}/{dtype}"
        for family in _launch.FAMILIES
        for variant in _launch.VARIANTS
        for dtype in dtypes
    }
    failures += [f"never launched: {key}" for key in sorted(expected - seen)]
    return failures, seen


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__)
    p.add_argument("--small", action="store_true", help="small shapes (for compute-sanitizer)")
    args = p.parse_args(argv)
    failures, seen = run(SMALL_LENGTHS if args.small else LENGTHS, DTYPES)
    for line in failures:
        print(f"FAIL {line}")
    print(f"gpu_check: {len(failures)} failures; launched {len(seen)} family/variant/dtype kinds")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
