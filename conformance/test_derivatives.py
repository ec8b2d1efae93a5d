"""softmax_backward, log_softmax_backward, softmax_jvp and log_softmax_jvp (SPEC sections 1-3).

Three independent references: the SPEC formulas evaluated exactly (mpmath, 50 digits) on the
same rounded ``y`` / ``logp`` and ``g`` the implementation gets, under the SPEC section 3
derivative bound; central finite differences of the exact softmax at 50 digits; and the
explicit Jacobian ``diag(y) - y y^T`` (``I - 1 p^T`` for log_softmax). Then the edge rules:
masked entries get exactly 0, -inf inputs get the true VJP, NaN-free results for finite
``g``, and a shape mismatch is a ValueError naming both shapes.
"""

from __future__ import annotations

import math
import re
from typing import Any

import mpmath
import numpy as np
import pytest

from conformance import _reference as ref
from conformance._framework import convention_difference, require
from conformance._numeric import FLOATS, call, compute, need_dtype, prepare

KINDS = ("softmax_backward", "log_softmax_backward", "softmax_jvp", "log_softmax_jvp")
INF = math.inf
NAN = math.nan


def _is_log(kind: str) -> bool:
    return kind.startswith("log_")


def _forward_output(kind: str, x: np.ndarray, dtype: str, **options: Any) -> np.ndarray:
    """``y = softmax(x)`` or ``logp = log_softmax(x)``, exact then rounded to ``dtype``."""
    fn = ref.log_softmax if _is_log(kind) else ref.softmax
    return ref.round_to(ref.cached(fn, x, **options).hi, dtype)


def _exact(kind: str, g: np.ndarray, y: np.ndarray, **options: Any) -> ref.Ref:
    fn = {
        "softmax_backward": ref.softmax_vjp,
        "softmax_jvp": ref.softmax_vjp,  # the softmax Jacobian is symmetric
        "log_softmax_backward": ref.log_softmax_vjp,
        "log_softmax_jvp": ref.log_softmax_jvp,
    }[kind]
    return ref.cached(fn, g, y, **options)


def _run(
    backend: Any, impl: Any, kind: str, g: np.ndarray, y: np.ndarray, dtype: str, **options: Any
) -> np.ndarray:
    keys = [k for k in ("where", "temperature") if k in options]
    fn = require(impl, kind, *keys)
    shown = ", ".join(
        f"{k}={'array' if isinstance(v, np.ndarray) else v!r}" for k, v in options.items()
    )
    return call(
        backend,
        fn,
        (g, y),
        (dtype, dtype),
        out_dtype=dtype,
        out_shape=g.shape,
        context=f"{kind}({dtype}{g.shape}, {shown})",
        **options,
    )


def _check(
    out: np.ndarray,
    exact: ref.Ref,
    kind: str,
    g: np.ndarray,
    y: np.ndarray,
    dtype: str,
    *,
    context: str,
    extra: float = 0.0,
    **options: Any,
) -> None:
    """SPEC section 3 derivative bound (plus ``extra`` eps of slack for input rounding)."""
    __tracebackhide__ = True
    n = ref.slice_size(g.shape, options.get("axis", -1))
    scale = ref.derivative_scale(kind, g, y, **options)
    base = compute_base(dtype)
    bound = ref.bound_derivative(n) + extra
    # below the normal range the bound cannot be relative: allow it at the smallest normal
    tiny = ref.finfo(base)[1]
    where = options.get("where")
    live = np.ones(g.shape, bool) if where is None else np.broadcast_to(where, g.shape)
    floor = np.where(live, bound * ref.finfo(base)[0] * tiny, 0.0)
    ref.check(out, exact, bound, dtype, relative=False, scale=scale, floor=floor, context=context)


def compute_base(dtype: str) -> str:
    return "float32" if dtype in ref.HALF else dtype


CASES: dict[str, dict[str, Any]] = {
    "plain": {"axis": -1},
    "axis0": {"axis": 0},
    "tuple-axis": {"axis": (0, 2)},
    "temperature": {"axis": -1, "temperature": 0.25},
    "temperature-array": {"axis": -1, "temperature": "array"},
    "where": {"axis": -1, "where": "mask"},
}


def _case_inputs(case: str, dtype: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    rng = np.random.default_rng(sum(map(ord, case)))
    shape = (3, 4, 5) if case == "tuple-axis" else (4, 7)
    x = prepare(rng.normal(0, 2, shape), dtype)
    g = prepare(rng.normal(0, 1, shape), dtype)
    opts = dict(CASES[case])
    if opts.get("temperature") == "array":
        opts["temperature"] = prepare(rng.choice([0.5, 1.0, 4.0], (4, 1)), dtype)
    if opts.get("where") == "mask":
        mask = rng.random(shape) < 0.7
        mask[0] = False
        opts["where"] = mask
    return x, g, opts


def _ref_options(opts: dict[str, Any], backend: Any, dtype: str) -> dict[str, Any]:
    """Options as the reference sees them: a float temperature rounded to the compute dtype."""
    out = dict(opts)
    if "temperature" in out:
        out["temperature"] = ref.round_to(
            np.asarray(out["temperature"], np.float64), compute(backend, dtype)
        )
    return out


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("kind", KINDS)
def test_against_exact_formula(backend: Any, impl: Any, kind: str, case: str, dtype: str) -> None:
    """The SPEC section 1 formula, exact on the same rounded inputs, within the bound."""
    need_dtype(backend, dtype)
    x, g, opts = _case_inputs(case, dtype)
    ropts = _ref_options(opts, backend, dtype)
    y = _forward_output(kind, x, dtype, **ropts)
    out = _run(backend, impl, kind, g, y, dtype, **opts)
    if "where" in opts:
        assert (out[~opts["where"]] == 0).all(), f"masked entries: {out[~opts['where']]}"
    exact = _exact(kind, g, y, **ropts)
    _check(out, exact, kind, g, y, dtype, context=f"{kind}[{case}, {dtype}]", **ropts)


# --- independent references: finite differences and the explicit Jacobian ----------------------


def _slack(kind: str, y: np.ndarray) -> float:
    """Extra eps for comparing with the derivative at x while the call gets rounded y / logp.

    Rounding y costs ~1 eps of the scale; rounding logp moves p by |logp| eps/2 relative.
    """
    return 2.0 + (float(np.max(np.abs(y[np.isfinite(y)]), initial=0.0)) if _is_log(kind) else 0)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_against_finite_differences(
    backend: Any, impl: Any, kind: str, dtype: str, temperature: float
) -> None:
    """Central differences (h = 1e-20, 50 digits) of the exact softmax at x."""
    need_dtype(backend, dtype)
    rng = np.random.default_rng(30)
    x = prepare(rng.normal(0, 1.5, (3, 6)), dtype)
    g = prepare(rng.normal(0, 1, (3, 6)), dtype)
    t = float(ref.round_to(np.array(temperature), dtype))
    y = _forward_output(kind, x, dtype, temperature=t)
    out = _run(backend, impl, kind, g, y, dtype, temperature=temperature)
    log = _is_log(kind)
    hi = np.empty(x.shape)
    for r in range(x.shape[0]):

        def f(v: list[mpmath.mpf]) -> list[mpmath.mpf]:
            return ref.mp_softmax(v, log=log, temperature=t)

        if kind.endswith("_jvp"):
            hi[r] = ref.central_difference(f, x[r].tolist(), g[r].tolist())
        else:  # VJP: d/dx_i of sum_j g_j f_j(x)
            for i in range(x.shape[1]):
                e_i = [1.0 if j == i else 0.0 for j in range(x.shape[1])]
                col = ref.central_difference(f, x[r].tolist(), e_i)
                hi[r, i] = math.fsum(a * b for a, b in zip(g[r], col, strict=True))
    fd = ref.Ref(hi, np.zeros_like(hi))
    _check(
        out,
        fd,
        kind,
        g,
        y,
        dtype,
        context=f"{kind} vs finite differences ({dtype}, T={t})",
        extra=_slack(kind, y),
        temperature=t,
    )


@pytest.mark.parametrize("n", [1, 2, 5])
@pytest.mark.parametrize("kind", KINDS)
def test_against_explicit_jacobian(backend: Any, impl: Any, kind: str, n: int) -> None:
    """J^T g (VJP) or J t (JVP) with J = (diag(y) - y y^T)/T, or (I - 1 p^T)/T for logs."""
    dtype = "float32"
    rng = np.random.default_rng(31 + n)
    x = prepare(rng.normal(0, 2, (2, n)), dtype)
    g = prepare(rng.normal(0, 1, (2, n)), dtype)
    t = 2.0
    y = _forward_output(kind, x, dtype, temperature=t)
    out = _run(backend, impl, kind, g, y, dtype, temperature=t)
    hi = np.empty(x.shape)
    lo = np.empty(x.shape)
    with mpmath.workdps(ref.DPS):
        for r in range(x.shape[0]):
            jac = ref.jacobian(x[r].tolist(), log=_is_log(kind), temperature=t)
            vec = mpmath.matrix([mpmath.mpf(v) for v in g[r]])
            res = jac.T * vec if kind.endswith("_backward") else jac * vec
            for i in range(n):
                hi[r, i] = float(res[i])
                lo[r, i] = float(res[i] - hi[r, i])
    _check(
        out,
        ref.Ref(hi, lo),
        kind,
        g,
        y,
        dtype,
        context=f"{kind} vs Jacobian (n={n})",
        extra=_slack(kind, y),
        temperature=t,
    )


# --- edge rules ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_masked_entries_get_exactly_zero(backend: Any, impl: Any, kind: str, dtype: str) -> None:
    """Masked entries: gradient exactly 0, and their g (or garbage y) never reaches the rest."""
    need_dtype(backend, dtype)
    rng = np.random.default_rng(32)
    x = prepare(rng.normal(0, 2, (3, 6)), dtype)
    where = np.array([[True, False, True, True, False, True]] * 2 + [[False] * 6])
    y = _forward_output(kind, x, dtype, where=where)
    g = prepare(rng.normal(0, 1, (3, 6)), dtype)
    g_big = np.where(where, g, 1e6)  # large finite g at masked entries
    out = _run(backend, impl, kind, g_big, y, dtype, where=where)
    assert (out[~where] == 0).all(), f"masked entries got {out[~where].tolist()}"
    _check(
        out,
        _exact(kind, g, y, where=where),
        kind,
        g,
        y,
        dtype,
        context=f"{kind}(where=..., masked g = 1e6)",
        where=where,
    )
    # NaN and inf in the masked entries of g and of y / logp
    g_bad = np.where(where, g, np.array([NAN, INF, -INF, NAN, INF, -INF]))
    y_bad = np.where(where, y, np.array([NAN, INF, NAN, -INF, INF, NAN]))
    out = _run(backend, impl, kind, g_bad, y_bad, dtype, where=where)
    assert (out[~where] == 0).all(), f"masked entries got {out[~where].tolist()}"
    _check(
        out,
        _exact(kind, g, y, where=where),
        kind,
        g,
        y,
        dtype,
        context=f"{kind}(where=..., NaN/inf at masked entries)",
        where=where,
    )


@pytest.mark.parametrize("temperature", [1.0, 0.5])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.convention("nan_gradient_at_neg_inf")
def test_neg_inf_inputs_get_the_true_derivative(
    backend: Any, impl: Any, kind: str, temperature: float
) -> None:
    """At unmasked -inf inputs: 0 for softmax, g_j / T for the log_softmax VJP."""
    dtype = "float32"
    x = np.array([[-INF, 0.5, -1.0, -INF], [2.0, -INF, 1.0, 0.0]])
    g = np.array([[0.5, -1.0, 2.0, -3.0], [1.0, 4.0, -2.0, 0.25]])
    y = _forward_output(kind, x, dtype, temperature=temperature)
    out = _run(backend, impl, kind, g, y, dtype, temperature=temperature)
    at = np.isinf(x)
    if kind.startswith("softmax"):
        assert (out[at] == 0).all(), f"{kind} at -inf inputs: {out[at].tolist()}"
    elif kind == "log_softmax_backward":
        want = g[at] / temperature
        assert (out[at] == want).all(), f"{kind} at -inf: {out[at].tolist()}, should be {want}"
    assert not np.isnan(out).any(), out.tolist()
    _check(
        out,
        _exact(kind, g, y, temperature=temperature),
        kind,
        g,
        y,
        dtype,
        context=f"{kind} with -inf inputs",
        temperature=temperature,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_nan_free_for_finite_g(backend: Any, impl: Any, kind: str) -> None:
    """NaN-free y / logp (zeros, -inf, +inf-slice shares) and finite g: NaN-free gradients."""
    dtype = "float32"
    x = np.array(
        [
            [-INF, -INF, 0.0, 3.0],
            [INF, INF, 1.0, -INF],
            [-INF] * 4,
            [3e38, -3e38, 0.0, 1e-40],
            [0.0, 0.0, 0.0, 0.0],
        ]
    )
    y = _forward_output(kind, x, dtype)
    assert not np.isnan(y).any()
    g = np.array(
        [
            [1.0, -2.0, 3.0, 1e30],
            [-1e30, 2.0, 0.0, 5.0],
            [1.0, 2.0, 3.0, 4.0],
            [1e-30, 2.0, -1.0, 7.0],
            [0.0, 0.0, 1.0, -1.0],
        ]
    )
    out = _run(backend, impl, kind, g, y, dtype)
    some = [0, 1, 3, 4]
    assert not np.isnan(out[some]).any(), f"NaN in {kind}: {out.tolist()}"
    # the all -inf slice: peers whose forward gives NaN there have no gradient either
    with convention_difference(impl, "nan_for_inf_rows"):
        assert not np.isnan(out[2]).any(), f"NaN in {kind} for an all -inf slice: {out.tolist()}"


@pytest.mark.parametrize(
    ("g_shape", "y_shape"),
    [((2, 5), (5,)), ((2, 3), (3, 2)), ((4,), (2, 4))],
    ids=["broadcastable", "transposed", "fewer-dims"],
)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.convention("own_validation_errors")
def test_shape_mismatch_is_value_error_naming_both(
    backend: Any, impl: Any, kind: str, g_shape: tuple[int, ...], y_shape: tuple[int, ...]
) -> None:
    """grad and y of different shapes (even broadcastable): ValueError naming both shapes."""
    fn = require(impl, kind)
    g = backend.asarray(np.ones(g_shape), "float32")
    y = backend.asarray(np.full(y_shape, 0.2), "float32")
    with pytest.raises(ValueError, match=r"\d") as info:
        fn(g, y)
    text = str(info.value)
    for shape in (g_shape, y_shape):
        pattern = r"[\[(]" + r",\s*".join(map(str, shape)) + r",?[\])]"
        assert re.search(pattern, text), f"{shape} not named in: {text}"
