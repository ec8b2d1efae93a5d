"""Properties that hold for every input: Hypothesis draws the inputs, the SPEC bounds the slack.

Each property compares two results whose exact values are related (equal, or one the log of
the other), so the allowed difference is the sum of the SPEC section 3 bounds of both sides,
never a guessed tolerance. Inputs are drawn as float64 and rounded to the dtype under test,
shifts and temperatures are chosen so that ``x + c`` and ``x / T`` are exact in that dtype.
Draws are labelled; every assertion message repeats the (shrunk) input, so the failure that
Hypothesis reports last is the minimal example. Example counts come from the Hypothesis
profile (``--hypothesis-profile default|long|gpu``, see ``_framework/profiles.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conformance import _reference as ref
from conformance._framework import require
from conformance._numeric import FLOATS, call, need_dtype, prepare, reduced_shape

pytestmark = pytest.mark.properties

WIDE = ("float32", "float64")  # properties whose exactness argument needs >= 24 bits
SCALES = (1.0, 8.0, 64.0, 1000.0)


SHAPE_MENU = ((1,), (3,), (7,), (1, 1), (2, 5), (5, 1), (1, 6), (4, 7), (3, 1, 4), (2, 3, 2))
SHAPE_MENU += ((1, 5, 1), (7, 2, 3), (6, 7, 1))
"""Shapes for backends that compile a program per shape (JAX): what the free draw covers (1-3
dims, sides 1-7, length-1 axes, 1-element arrays) in a fixed menu, so that most examples
reuse a compiled program instead of compiling their own; the values stay freely drawn.
Every other backend runs the same generic code on freely drawn shapes."""


def _shapes(backend: Any) -> st.SearchStrategy[tuple[int, ...]]:
    if backend.compiles_per_shape:
        return st.sampled_from(SHAPE_MENU)
    return hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=7)


def _sizes(backend: Any, low: int, high: int) -> st.SearchStrategy[int]:
    """A length in ``[low, high]``: any (free draw), or the ends and the middle where each
    new length is a new compilation."""
    if backend.compiles_per_shape:
        return st.sampled_from(sorted({low, (low + high) // 2, high}))
    return st.integers(low, high)


def _draw_x(data: Any, dtype: str, backend: Any, *, grid: bool = False) -> tuple[np.ndarray, int]:
    """An array of 1-3 dims and an int axis; ``grid`` puts values on multiples of 1/8."""
    shape = data.draw(_shapes(backend), label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    scale = data.draw(st.sampled_from(SCALES), label="scale")
    if grid:  # j/8 with |j| < 2**13: exact in float32, and so are x + c and x / 2**k
        elements = st.integers(-int(8 * scale), int(8 * scale)).map(lambda j: j / 8)
    else:
        elements = st.floats(-scale, scale, allow_nan=False, allow_infinity=False)
    x = data.draw(hnp.arrays(np.float64, shape, elements=elements), label="x")
    return prepare(x, dtype), axis


def _run(
    backend: Any, fn: Callable[..., Any], x: np.ndarray, dtype: str, name: str, **opts: Any
) -> np.ndarray:
    """Call ``fn`` on the backend (kind checked) and return float64 NumPy."""
    __tracebackhide__ = True
    axis = opts.get("axis", -1)
    shape = (
        reduced_shape(x.shape, axis, opts.get("keepdims", False))
        if name == "logsumexp"
        else x.shape
    )
    shown = ", ".join(f"{k}={v!r}" for k, v in opts.items() if not isinstance(v, np.ndarray))
    return call(
        backend,
        fn,
        (x,),
        (dtype,),
        out_dtype=dtype,
        out_shape=shape,
        context=f"{name}({dtype}{x.shape}, {shown})",
        **opts,
    )


def _allowed(
    name: str, x: np.ndarray, out: np.ndarray, dtype: str, axis: int, t: float | None = None
) -> np.ndarray:
    """Absolute error the SPEC allows per output entry (half dtypes: float32 bound + 1 ulp)."""
    base = "float32" if dtype in ref.HALF else dtype
    eps, tiny, _, _ = ref.finfo(base)
    if name == "softmax":
        allowed = ref.bound_softmax(x, axis, temperature=t) * eps * np.maximum(np.abs(out), tiny)
    elif name == "log_softmax":
        allowed = ref.bound_log_softmax(x, axis, temperature=t) * eps
    else:
        allowed = ref.bound_logsumexp(x, axis) * eps
    if dtype in ref.HALF:
        allowed = allowed + ref.ulp(np.where(np.isfinite(out), out, 0.0), dtype)
    return np.asarray(allowed, dtype=np.float64)


def _fail_where(bad: np.ndarray, what: str, **shown: Any) -> None:
    """Raise with the first offending index and every drawn input (the shrunk example)."""
    __tracebackhide__ = True
    if not bad.any():
        return
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    lines = [f"{what} at index {idx}"]
    for key, value in shown.items():
        text = value.tolist() if isinstance(value, np.ndarray) else value
        lines.append(f"  {key} = {text!r}")
    raise AssertionError("\n".join(lines))


# --- softmax is a probability distribution -----------------------------------------------------


@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
def test_softmax_sums_to_one(backend: Any, impl: Any, dtype: str, data: Any) -> None:
    """Each slice sums to 1 within the sum of its entries' bounds."""
    need_dtype(backend, dtype)
    fn = require(impl, "softmax")
    x, axis = _draw_x(data, dtype, backend)
    y = _run(backend, fn, x, dtype, "softmax", axis=axis)
    total = np.apply_along_axis(math.fsum, axis, y)
    slack = np.sum(_allowed("softmax", x, y, dtype, axis), axis=axis)
    _fail_where(
        ~(np.abs(total - 1.0) <= slack),
        f"sum(softmax) != 1: sums {total.tolist()}, allowed {slack.tolist()}",
        x=x,
        axis=axis,
        dtype=dtype,
        y=y,
    )


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data())
def test_within_range(backend: Any, impl: Any, name: str, dtype: str, data: Any) -> None:
    """softmax in [0, 1] and log_softmax in [-inf, 0], exactly (rounding cannot leave them)."""
    need_dtype(backend, dtype)
    fn = require(impl, name)
    x, axis = _draw_x(data, dtype, backend)
    y = _run(backend, fn, x, dtype, name, axis=axis)
    lo = 0.0 if name == "softmax" else -math.inf
    hi = 1.0 if name == "softmax" else 0.0
    _fail_where(
        ~((y >= lo) & (y <= hi)),
        f"{name} outside [{lo}, {hi}]",
        x=x,
        axis=axis,
        dtype=dtype,
        out=y,
    )


@pytest.mark.parametrize("dtype", WIDE)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data())
def test_argmax_kept(backend: Any, impl: Any, name: str, dtype: str, data: Any) -> None:
    """The largest input of each slice gets the largest output (up to the bound)."""
    need_dtype(backend, dtype)
    fn = require(impl, name)
    x, axis = _draw_x(data, dtype, backend)
    y = _run(backend, fn, x, dtype, name, axis=axis)
    i = np.expand_dims(np.argmax(x, axis=axis), axis)
    at_max = np.take_along_axis(y, i, axis)
    slack = np.take_along_axis(_allowed(name, x, y, dtype, axis), i, axis)
    _fail_where(
        ~(at_max >= np.max(y, axis=axis, keepdims=True) - 2 * slack),
        f"{name} at argmax(x) is not the largest output",
        x=x,
        axis=axis,
        dtype=dtype,
        out=y,
    )


# --- invariances -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", WIDE)
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
@given(data=st.data())
def test_shift_invariance(backend: Any, impl: Any, name: str, dtype: str, data: Any) -> None:
    """f(x + c) == f(x) (logsumexp: + c) for an integer c that keeps x + c exact."""
    need_dtype(backend, dtype)
    fn = require(impl, name)
    x, axis = _draw_x(data, dtype, backend, grid=True)
    c = float(data.draw(st.integers(-1000, 1000), label="c"))
    xc = x + c  # exact: multiples of 1/8 below 2**14 fit 24 bits
    a = _run(backend, fn, x, dtype, name, axis=axis)
    b = _run(backend, fn, xc, dtype, name, axis=axis)
    slack = _allowed(name, x, a, dtype, axis) + _allowed(name, xc, b, dtype, axis)
    if name == "logsumexp":
        b = b - c
        slack = slack + 2.0**-52 * np.abs(b) * 2  # the float64 subtraction here
    _fail_where(
        ~(np.abs(a - b) <= slack),
        f"{name}(x + c) differs from {name}(x){' + c' if name == 'logsumexp' else ''}",
        x=x,
        c=c,
        axis=axis,
        dtype=dtype,
        f_x=a,
        f_x_plus_c=b,
    )


# --- log_softmax, softmax and logsumexp agree --------------------------------------------------


@pytest.mark.parametrize("dtype", WIDE)
@given(data=st.data())
def test_log_softmax_is_log_of_softmax(backend: Any, impl: Any, dtype: str, data: Any) -> None:
    """log_softmax == log(softmax) wherever softmax is a normal number."""
    need_dtype(backend, dtype)
    sm, lsm = require(impl, "softmax"), require(impl, "log_softmax")
    x, axis = _draw_x(data, dtype, backend)
    y = _run(backend, sm, x, dtype, "softmax", axis=axis)
    logp = _run(backend, lsm, x, dtype, "log_softmax", axis=axis)
    normal = y >= ref.finfo(dtype)[1]
    with np.errstate(divide="ignore"):
        logy = np.log(y)
    # log(y (1 + d)) = log y + log(1 + d), |log(1 + d)| <= 1.01 |d| for the tiny d here
    rel_y = _allowed("softmax", x, y, dtype, axis) / np.maximum(y, ref.finfo(dtype)[1])
    slack = _allowed("log_softmax", x, logp, dtype, axis) + 1.01 * rel_y + 2.0**-52 * np.abs(logy)
    _fail_where(
        normal & ~(np.abs(logp - logy) <= slack),
        "log_softmax differs from log(softmax)",
        x=x,
        axis=axis,
        dtype=dtype,
        log_softmax=logp,
        softmax=y,
    )


@pytest.mark.parametrize("dtype", WIDE)
@given(data=st.data())
def test_logsumexp_consistency(backend: Any, impl: Any, dtype: str, data: Any) -> None:
    """log_softmax == x - logsumexp(keepdims), and max(x) <= logsumexp <= max(x) + log n."""
    need_dtype(backend, dtype)
    lse_fn = require(impl, "logsumexp", "keepdims")
    lsm = require(impl, "log_softmax")
    x, axis = _draw_x(data, dtype, backend)
    lse = _run(backend, lse_fn, x, dtype, "logsumexp", axis=axis, keepdims=True)
    logp = _run(backend, lsm, x, dtype, "log_softmax", axis=axis)
    lse_slack = _allowed("logsumexp", x, lse, dtype, axis).reshape(lse.shape)
    diff = x - lse
    slack = _allowed("log_softmax", x, logp, dtype, axis) + lse_slack + 2.0**-52 * np.abs(diff)
    shown = {"x": x, "axis": axis, "dtype": dtype, "logsumexp": lse, "log_softmax": logp}
    _fail_where(
        ~(np.abs(logp - diff) <= slack), "log_softmax differs from x - logsumexp(x)", **shown
    )
    m = np.max(x, axis=axis, keepdims=True)
    n = x.shape[axis]
    _fail_where(
        ~((lse >= m - lse_slack) & (lse <= m + math.log(n) + lse_slack)),
        "logsumexp outside [max(x), max(x) + log n]",
        **shown,
    )


# --- temperature -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", WIDE)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data())
def test_temperature_one_is_none(backend: Any, impl: Any, name: str, dtype: str, data: Any) -> None:
    """temperature=1.0 gives the result of temperature=None."""
    need_dtype(backend, dtype)
    fn = require(impl, name, "temperature")
    x, axis = _draw_x(data, dtype, backend)
    a = _run(backend, fn, x, dtype, name, axis=axis)
    b = _run(backend, fn, x, dtype, name, axis=axis, temperature=1.0)
    slack = 2 * _allowed(name, x, a, dtype, axis)
    _fail_where(
        ~(np.abs(a - b) <= slack),
        f"{name}(temperature=1.0) differs from {name}(temperature=None)",
        x=x,
        axis=axis,
        dtype=dtype,
        none=a,
        one=b,
    )


@pytest.mark.parametrize("dtype", WIDE)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data())
def test_temperature_scales_logits(
    backend: Any, impl: Any, name: str, dtype: str, data: Any
) -> None:
    """f(x, temperature=T) == f(x / T) for T a power of two (so x / T is exact)."""
    need_dtype(backend, dtype)
    fn = require(impl, name, "temperature")
    x, axis = _draw_x(data, dtype, backend, grid=True)
    t = 2.0 ** data.draw(st.integers(-3, 3), label="log2(T)")
    a = _run(backend, fn, x, dtype, name, axis=axis, temperature=t)
    b = _run(backend, fn, x / t, dtype, name, axis=axis)
    slack = _allowed(name, x, a, dtype, axis, t) + _allowed(name, x / t, b, dtype, axis)
    _fail_where(
        ~(np.abs(a - b) <= slack),
        f"{name}(x, temperature=T) differs from {name}(x / T)",
        x=x,
        T=t,
        axis=axis,
        dtype=dtype,
        with_T=a,
        scaled=b,
    )


@pytest.mark.parametrize("dtype", WIDE)
@given(data=st.data())
def test_large_temperature_is_near_uniform(backend: Any, impl: Any, dtype: str, data: Any) -> None:
    """As T grows softmax tends to 1/n: |n y_i - 1| <= expm1(spread / T) + bound."""
    need_dtype(backend, dtype)
    fn = require(impl, "softmax", "temperature")
    x, axis = _draw_x(data, dtype, backend)
    t = data.draw(st.sampled_from([1e2, 1e4, 1e6]), label="T")
    y = _run(backend, fn, x, dtype, "softmax", axis=axis, temperature=t)
    n = x.shape[axis]
    spread = np.ptp(x, axis=axis, keepdims=True)
    slack = np.expm1(spread / t) + n * _allowed("softmax", x, y, dtype, axis, t)
    _fail_where(
        ~(np.abs(n * y - 1.0) <= slack),
        f"softmax(temperature={t}) is not near 1/n",
        x=x,
        axis=axis,
        dtype=dtype,
        out=y,
    )


# --- cross-entropy: the weighted mean --------------------------------------------------------


@pytest.mark.parametrize("dtype", WIDE)
@given(data=st.data())
def test_cross_entropy_mean_is_sum_over_weights(
    backend: Any, impl: Any, dtype: str, data: Any
) -> None:
    """reduction="mean" == "sum" / D, with D the summed class weights of unignored samples."""
    need_dtype(backend, dtype)
    fn = require(impl, "cross_entropy", "reduction", "weight", "ignore_index")
    n = data.draw(_sizes(backend, 1, 8), label="N")
    c = data.draw(_sizes(backend, 2, 6), label="C")
    logits = prepare(
        data.draw(hnp.arrays(np.float64, (n, c), elements=st.floats(-8, 8)), label="logits"),
        dtype,
    )
    labels = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(-1, c - 1)), label="labels")
    labels[0] = max(int(labels[0]), 0)  # at least one sample counts, so D > 0
    weight = prepare(
        data.draw(hnp.arrays(np.float64, (c,), elements=st.floats(0.25, 4.0)), label="weight"),
        dtype,
    )
    args = (backend.asarray(logits, dtype), backend.asarray(labels, backend.int_dtype()))
    opts = {"weight": backend.asarray(weight, dtype), "ignore_index": -1, "axis": -1}
    mean = backend.to_numpy(fn(*args, reduction="mean", **opts)).astype(np.float64)
    total = backend.to_numpy(fn(*args, reduction="sum", **opts)).astype(np.float64)
    kept = labels != -1
    d = math.fsum(weight[labels[kept]])
    per_sample = backend.to_numpy(fn(*args, reduction="none", **opts)).astype(np.float64)
    eps = ref.finfo(dtype)[0]
    terms = math.log(c) + 8 + 2 * math.ceil(math.log2(c))
    # both reductions carry the per-sample bounds, plus the summation of N terms
    slack = 2 * (terms + 2 * n) * eps * math.fsum(np.abs(per_sample) + weight.max()) / d
    if not abs(mean - total / d) <= slack:
        raise AssertionError(
            f"cross_entropy mean={float(mean)!r}, but sum / D = {float(total / d)!r} "
            f"(D = {d!r}, the weights of the {int(kept.sum())} unignored samples)\n"
            f"  logits = {logits.tolist()!r}\n  labels = {labels.tolist()!r}\n"
            f"  weight = {weight.tolist()!r}\n  dtype = {dtype!r}"
        )
