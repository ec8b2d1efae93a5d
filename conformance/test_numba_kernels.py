"""The compiled CPU kernels (``portable_softmax._backends.numba``), checked on their own.

Every expected value comes from an independent reference: NumPy in float64 or ``longdouble``
(80-bit on x86), ``math.fsum``, or exact values known by construction; never from the code
under test or the package's other paths. The kernels are called as the dispatcher calls
them, on a described call, after checking that the registry gives such a call to numba
(``nb`` below). The module is skipped when numba is not importable, unless
``PORTABLE_SOFTMAX_REQUIRE_NUMBA=1`` (then that is a failure).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

if os.environ.get("PORTABLE_SOFTMAX_REQUIRE_NUMBA") == "1":
    import numba
else:
    pytest.importorskip("numba")

import numba

from conformance._framework.processes import run_python
from portable_softmax import _config, _dispatch
from portable_softmax._backends import numba as kernels
from portable_softmax._backends.numba._exp import vexp
from portable_softmax._lib._call import Call
from portable_softmax._lib._describe import describe, describe_cross_entropy
from portable_softmax._lib._labels import check_labels

_VECTORS = {
    "softmax_backward": ("y", "grad"),
    "softmax_jvp": ("y", "tangent"),
    "log_softmax_backward": ("logp", "grad"),
    "log_softmax_jvp": ("logp", "tangent"),
}


def described(name: str, *arrays: Any, **options: Any) -> Any:
    """The described call of the public function ``name`` (arrays in its order)."""
    if name.startswith("cross_entropy"):
        return check_labels(describe_cross_entropy(name, *arrays, **options))
    if name in _VECTORS:
        vector, primary = arrays
        return describe(name, primary, vector, names=_VECTORS[name], **options)
    keepdims = options.pop("keepdims", False)
    return describe(name, *arrays, temperature=options.pop("temperature", None),
                    keepdims=keepdims, **options)  # fmt: skip


class _Kernels:
    """The numba kernels called with the public functions' arguments: each call described,
    checked to be one the registry gives numba, then run on numba's kernel directly."""

    def __getattr__(self, name: str) -> Any:
        def run(*arrays: Any, **options: Any) -> Any:
            call = described(name, *arrays, **options)
            assert _dispatch.NUMBA.accepts(call), f"the registry gives numba no such {name}"
            return getattr(kernels, name)(call)

        return run


nb = _Kernels()

# One xdist worker compiles the kernels once (with the numba slot, see conftest).
pytestmark = pytest.mark.xdist_group("numba")

F32, F64 = np.float32, np.float64
LONG = np.longdouble
WIDE = np.finfo(LONG).nmant >= 63
"""Whether ``longdouble`` is wide enough to be a float64 reference (80-bit or quad)."""


def _eps(dtype: Any) -> float:
    return float(np.finfo(dtype).eps)


def _log2n(n: int) -> int:
    return math.ceil(math.log2(n)) if n > 1 else 0


@pytest.fixture
def threads() -> Iterator[None]:
    before = _config.get_num_threads()
    yield
    _config.set_num_threads(before)


# ------------------------------------------------------------------------ exp


@numba.njit(cache=False)
def _apply_exp(x: Any, out: Any) -> None:
    for i in range(x.shape[0]):
        out[i] = vexp(x[i])


def _ulp_error(out: np.ndarray, exact: np.ndarray, dtype: Any) -> np.ndarray:
    """|out - exact| in units of the last place of ``exact`` rounded to ``dtype`` (the
    smallest subnormal below the normal range)."""
    with np.errstate(over="ignore", under="ignore"):
        rounded = exact.astype(dtype)
    unit = np.maximum(np.spacing(np.abs(rounded)), np.finfo(dtype).smallest_subnormal)
    error: np.ndarray = np.abs(out.astype(LONG) - exact) / unit.astype(LONG)
    return error


def _float32_sample(stride: int) -> np.ndarray:
    """Every ``stride``-th float32 bit pattern from 0 to 104 in magnitude, both signs."""
    top = np.array(104.0, F32).view(np.uint32)
    bits = np.arange(0, int(top), stride, dtype=np.uint32)
    magnitudes = bits.view(F32)
    return np.concatenate([magnitudes, -magnitudes])


@pytest.mark.parametrize("dtype", [F32, F64])
def test_exp_max_ulp_error_over_the_range(dtype: Any) -> None:
    """Within 1.5 ulp of exp over the whole domain where the result is neither 0 nor inf,
    subnormal results included (float32: a strided sweep of all bit patterns)."""
    if dtype is F64 and not WIDE:
        pytest.skip("longdouble is no wider than float64 here: no float64 reference")
    if dtype is F32:
        x = _float32_sample(997)
        exact = np.exp(x.astype(F64)).astype(LONG)  # float64 exp: far below a float32 ulp
    else:
        rng = np.random.default_rng(0)
        x = np.concatenate([rng.uniform(-746.0, 710.0, 400_000), rng.uniform(-40, 40, 100_000)])
        x = np.concatenate([x, rng.uniform(-745.2, -708.0, 100_000)])  # subnormal results
        exact = np.exp(x.astype(LONG))
    out = np.empty_like(x)
    _apply_exp(x, out)
    finfo = np.finfo(dtype)
    finite = (exact < LONG(finfo.max)) & (exact >= LONG(finfo.smallest_subnormal))
    assert finite.sum() > 0.9 * x.size
    error = _ulp_error(out[finite], exact[finite], dtype)
    assert float(error.max()) <= 1.5, f"max error {float(error.max()):.3f} ulp"
    subnormal = finite & (exact < LONG(finfo.tiny))
    assert subnormal.any()
    assert (out[subnormal] > 0).any()
    with np.errstate(over="ignore"):
        overflow = exact > LONG(finfo.max) * (1 + LONG(finfo.eps))
    assert np.all(np.isinf(out[overflow]))
    underflow = exact < LONG(finfo.smallest_subnormal) / 4
    assert np.all(out[underflow] == 0)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_exp_special_values(dtype: Any) -> None:
    finfo = np.finfo(dtype)
    x = np.array([-np.inf, np.inf, np.nan, 0.0, -0.0, finfo.max, -finfo.max, 1.0], dtype)
    out = np.empty_like(x)
    _apply_exp(x, out)
    assert out[0] == 0
    assert out[1] == np.inf
    assert np.isnan(out[2])
    assert out[3] == 1
    assert out[4] == 1
    assert out[5] == np.inf
    assert out[6] == 0
    assert abs(float(out[7]) - math.e) <= float(np.spacing(dtype(math.e)))
    assert out.dtype == dtype


# ------------------------------------------------------------ forward accuracy


def _reference_forward(x: np.ndarray, temperature: float = 1.0) -> tuple[Any, Any, Any]:
    """softmax, log_softmax and logsumexp per row in longdouble (finite rows only)."""
    wide = x.astype(LONG)
    m = wide.max(axis=-1, keepdims=True)
    shifted = (wide - m) / LONG(temperature)
    e = np.exp(shifted)
    s = e.sum(axis=-1, keepdims=True)
    return e / s, shifted - np.log(s), (m + np.log(s))[..., 0]


def _check_softmax_bound(out: np.ndarray, x: np.ndarray, temperature: float = 1.0) -> float:
    """Largest error over SPEC section 3's softmax bound (<= 1 passes)."""
    dtype = x.dtype
    eps, tiny = _eps(dtype), float(np.finfo(dtype).tiny)
    exact, _, _ = _reference_forward(x, temperature)
    n = x.shape[-1]
    spread = np.abs(x.astype(LONG) - x.astype(LONG).max(axis=-1, keepdims=True)) / temperature
    error = np.abs(out.astype(LONG) - exact)
    # below the normal range the relative bound taken at the smallest normal applies (the
    # rounding of x - m costs |x - m|/T eps there too), as the conformance suite reads SPEC
    bound = (spread + 8 + 2 * _log2n(n)) * eps * np.maximum(exact, LONG(tiny))
    return float((error / bound).max())


@pytest.mark.parametrize("dtype", [F32, F64])
def test_softmax_rows_of_a_million_within_bound(dtype: Any) -> None:
    """Long float32 rows: the blocked, compensated sums keep the error like log n."""
    if dtype is F64 and not WIDE:
        pytest.skip("longdouble is no wider than float64 here")
    rng = np.random.default_rng(1)
    n = 1_000_003
    rows = [
        rng.standard_normal(n) * 3,
        np.zeros(n),  # every entry 1/n: any running-sum drift shows here
        rng.uniform(-1e-3, 0.0, n),  # nearly equal entries, all summed at full weight
    ]
    for row in rows:
        x = row.astype(dtype)
        out = nb.softmax(x, axis=-1, where=None, temperature=None)
        assert _check_softmax_bound(out, x) <= 1.0
        lse = nb.logsumexp(x, axis=-1, where=None, keepdims=False)
        _, _, exact_lse = _reference_forward(x)
        m = abs(float(x.max()))
        lse_bound = (m + math.log(n) + 8 + 2 * _log2n(n)) * _eps(dtype)
        assert abs(LONG(float(lse)) - exact_lse) <= lse_bound


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("temperature", [None, 0.25, 7.0])
def test_forward_within_bounds(dtype: Any, temperature: float | None) -> None:
    if dtype is F64 and not WIDE:
        pytest.skip("longdouble is no wider than float64 here")
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((300, 1000)) * 6).astype(dtype)  # 300 rows: the parallel kernel
    t = 1.0 if temperature is None else temperature
    y = nb.softmax(x, axis=-1, where=None, temperature=temperature)
    assert _check_softmax_bound(y, x, t) <= 1.0
    logp = nb.log_softmax(x, axis=1, where=None, temperature=temperature)
    _, exact_logp, _ = _reference_forward(x, t)
    n = x.shape[-1]
    spread = np.abs(x.astype(LONG) - x.astype(LONG).max(axis=-1, keepdims=True)) / t
    bound = (spread + math.log(n) + 8 + 2 * _log2n(n)) * _eps(dtype)
    assert np.all(np.abs(logp.astype(LONG) - exact_logp) <= bound)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("width", [1, 10, 32, 33])
@pytest.mark.parametrize("temperature", [None, 3.0])
def test_narrow_rows_within_bounds(
    dtype: Any, width: int, temperature: float | None, threads: None
) -> None:
    """Rows on both sides of the narrow kernels' width (``_narrow.NARROW_ENTRIES``), over
    several blocks and both threads, with an edge row in each block, written into ``out``
    and in place as well: every finite row within SPEC section 3's bound."""
    if dtype is F64 and not WIDE:
        pytest.skip("longdouble is no wider than float64 here")
    import portable_softmax as ps

    _config.set_num_threads(2)
    rng = np.random.default_rng(width)
    x = (rng.standard_normal((3000, width)) * 5).astype(dtype)
    edge_rows = np.arange(7, 3000, 500)
    x[edge_rows, 0] = np.inf
    finite = np.setdiff1d(np.arange(3000), edge_rows)
    t = 1.0 if temperature is None else temperature
    y = nb.softmax(x, axis=-1, where=None, temperature=temperature)
    assert _check_softmax_bound(y[finite], x[finite], t) <= 1.0
    edge_y = np.where(x[edge_rows] == np.inf, 1 / (x[edge_rows] == np.inf).sum(-1)[:, None], 0)
    np.testing.assert_array_equal(y[edge_rows], edge_y.astype(dtype))
    logp = nb.log_softmax(x, axis=-1, where=None, temperature=temperature)
    _, exact_logp, exact_lse = _reference_forward(x[finite], t)
    spread = np.abs(x[finite].astype(LONG) - x[finite].astype(LONG).max(-1, keepdims=True)) / t
    bound = (spread + math.log(width) + 8 + 2 * _log2n(width)) * _eps(dtype)
    assert np.all(np.abs(logp[finite].astype(LONG) - exact_logp) <= bound)
    if temperature is None:
        lse = nb.logsumexp(x, axis=-1, where=None, keepdims=False)
        m = np.abs(x[finite].astype(LONG)).max(-1)
        lse_bound = (m + math.log(width) + 8 + 2 * _log2n(width)) * _eps(dtype)
        assert np.all(np.abs(lse[finite].astype(LONG) - exact_lse) <= lse_bound)
        assert np.all(lse[edge_rows] == np.inf)
    into = np.empty_like(x)
    assert ps.softmax(x, temperature=temperature, out=into) is into
    np.testing.assert_array_equal(into, y)
    again = x.copy()
    assert ps.softmax(again, temperature=temperature, out=again) is again
    np.testing.assert_array_equal(again, y)


def test_every_variant_is_a_closure_cell_of_its_kernel() -> None:
    """numba's disk cache tells a builder's variants apart by the closure cells their
    kernel's body reads: an argument the body does not read (``parallel`` in the
    cross-entropy kernel did not) lets one variant's cached code serve another."""
    import inspect

    from portable_softmax._backends.numba import _ce_kernels, _derivatives, _forward, _narrow

    for module in (_forward, _narrow, _derivatives, _ce_kernels):
        builder = module._build
        names = list(inspect.signature(builder).parameters)
        for flag in (False, True):  # (a builder may return another kernel for narrow rows)
            kernel = builder(*[0 if name == "kind" else flag for name in names])
            cells = set(kernel.py_func.__code__.co_freevars)
            assert set(names) <= cells, (module.__name__, flag, set(names) - cells)
            assert "key" in cells, module.__name__


def test_thread_count_does_not_change_results(threads: None) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((512, 700)).astype(F32)  # 1.4 MB: above the serial threshold
    labels = rng.integers(0, 700, 512)
    results = []
    for count in (1, 2):
        _config.set_num_threads(count)
        results.append(
            (
                nb.softmax(x, axis=-1, where=None, temperature=None),
                nb.log_softmax_backward(x, x, axis=-1, where=None, temperature=2.0),
                nb.cross_entropy_backward(x, labels, **_ce_options()),
            )
        )
    for one, two in zip(*results, strict=True):
        np.testing.assert_array_equal(one, two)  # rows are independent: bitwise equal


# ------------------------------------------------------------------ edges


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("width", [4, 40], ids=["narrow", "wide"])
def test_forward_edges(dtype: Any, width: int) -> None:
    """SPEC section 2's table, row by row, and finite extremes, on narrow rows (the block
    kernels of ``_narrow``) and wide ones (the row kernels): rows padded with -inf entries,
    which take no share, to ``width``."""
    big = np.finfo(dtype).max
    inf, nan = np.inf, np.nan
    x = np.full((5, width), -inf, dtype)
    x[:, :4] = np.array(
        [
            [1.0, nan, inf, 2.0],  # NaN wins over +inf
            [inf, 1.0, inf, -inf],  # two +inf: 1/2 each
            [-inf, -inf, -inf, -inf],  # nothing finite
            [big, -big, 0.0, big],  # finite extremes: never NaN
            [0.0, -inf, 0.0, -inf],  # -inf entries: exact zeros
        ],
        dtype,
    )
    y = nb.softmax(x, axis=-1, where=None, temperature=None)
    logp = nb.log_softmax(x, axis=-1, where=None, temperature=None)
    lse = nb.logsumexp(x, axis=-1, where=None, keepdims=False)
    assert np.all(y[1:, 4:] == 0)
    assert np.all(logp[1:, 4:] == -inf)
    y, logp = y[:, :4], logp[:, :4]
    assert np.all(np.isnan(y[0]))
    assert np.all(np.isnan(logp[0]))
    assert np.isnan(lse[0])
    np.testing.assert_array_equal(y[1], np.array([0.5, 0, 0.5, 0], dtype))
    np.testing.assert_array_equal(
        logp[1], np.array([-math.log(2), -inf, -math.log(2), -inf], dtype)
    )
    assert lse[1] == inf
    np.testing.assert_array_equal(y[2], np.zeros(4, dtype))
    assert np.all(logp[2] == -inf)
    assert lse[2] == -inf
    np.testing.assert_array_equal(y[3], np.array([0.5, 0, 0, 0.5], dtype))
    assert lse[3] == inf or lse[3] > big * 0.99  # log(2) + max rounds to max or beyond
    assert not np.isnan(logp[3]).any()
    np.testing.assert_array_equal(y[4], np.array([0.5, 0, 0.5, 0], dtype))
    assert y.dtype == logp.dtype == lse.dtype == dtype


def test_subnormal_outputs_are_kept() -> None:
    x = np.array([0.0, -100.0], F32)  # exp(-100) = 3.7e-44: a float32 subnormal
    y = nb.softmax(x, axis=None, where=None, temperature=None)
    exact = math.exp(-100.0) / (1 + math.exp(-100.0))
    assert y[1] > 0
    assert abs(float(y[1]) - exact) <= 8 * _eps(F32) * float(np.finfo(F32).tiny)
    equal = np.zeros(70_000, F32)
    np.testing.assert_allclose(
        nb.softmax(equal, axis=-1, where=None, temperature=None), 1 / 70_000, rtol=4 * _eps(F32)
    )


def test_temperature_after_the_shift() -> None:
    """Huge logits with a small T stay finite; a spread beyond the range with a huge T is
    a moderate value (the shift is halved, as on the generic path)."""
    x = np.array([[1e30, 0.0], [0.9, -0.9]], F32)
    y = nb.softmax(x[:1], axis=-1, where=None, temperature=1e-3)
    np.testing.assert_array_equal(y, np.array([[1.0, 0.0]], F32))
    big = float(np.finfo(F32).max)
    x = np.array([big * 0.9, -big * 0.9], F32)
    y = nb.softmax(x, axis=-1, where=None, temperature=big / 8)
    exact = 1 / (1 + math.exp(14.4))
    assert abs(float(y[1]) - exact) <= 30 * _eps(F32) * exact


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("temperature", [None, 3.0])
@pytest.mark.parametrize(("rows", "n"), [(40, 777), (600, 10)], ids=["wide", "narrow"])
def test_derivatives_within_bound(dtype: Any, temperature: float | None, rows: int, n: int) -> None:
    """Wide rows (blocked, compensated sums) and narrow ones (the flat narrow kernels)."""
    if dtype is F64 and not WIDE:
        pytest.skip("longdouble is no wider than float64 here")
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((rows, n)) * 4).astype(dtype)
    x[0, :5] = -np.inf  # y = 0 there: gradient 0 (softmax), g/T (log_softmax)
    t = 1.0 if temperature is None else temperature
    wide = x.astype(LONG)
    m = wide.max(axis=-1, keepdims=True)
    e = np.exp((wide - m) / LONG(t))
    p = e / e.sum(axis=-1, keepdims=True)
    y = p.astype(dtype)  # the given forward output; the reference uses the same rounded y
    with np.errstate(divide="ignore"):
        logp = np.log(p).astype(dtype)
    g = rng.standard_normal((rows, n)).astype(dtype)
    yw, gw, pw = y.astype(LONG), g.astype(LONG), np.exp(logp.astype(LONG))
    expected = {
        "softmax_backward": yw * (gw - (gw * yw).sum(-1, keepdims=True)) / LONG(t),
        "softmax_jvp": yw * (gw - (gw * yw).sum(-1, keepdims=True)) / LONG(t),
        "log_softmax_backward": (gw - pw * gw.sum(-1, keepdims=True)) / LONG(t),
        "log_softmax_jvp": (gw - (pw * gw).sum(-1, keepdims=True)) / LONG(t),
    }
    factor = (16 + 2 * _log2n(n)) * _eps(dtype)
    for name, exact in expected.items():
        primary, q = (y, yw) if name.startswith("softmax") else (logp, pw)
        out = getattr(nb, name)(g, primary, axis=-1, where=None, temperature=temperature)
        assert out.dtype == dtype
        assert not np.isnan(out).any()
        # SPEC's y_i (|g_i| + sum_j |g_j| y_j) / T for softmax; log_softmax's products are
        # not scaled by p_i: each term of the output (g_i, p_i sum g, sum p t) bounds it
        if name == "log_softmax_jvp":
            scale = (np.abs(gw) + (np.abs(gw) * q).sum(-1, keepdims=True)) / LONG(t)
        elif name == "log_softmax_backward":
            scale = (np.abs(gw) + q * np.abs(gw).sum(-1, keepdims=True)) / LONG(t)
        else:
            scale = q * (np.abs(gw) + (np.abs(gw) * q).sum(-1, keepdims=True)) / LONG(t)
        assert np.all(np.abs(out.astype(LONG) - exact) <= factor * scale + 1e-300), name
    back = nb.softmax_backward(g, y, axis=-1, where=None, temperature=temperature)
    assert np.all(back[0, :5] == 0)
    log_back = nb.log_softmax_backward(g, logp, axis=-1, where=None, temperature=temperature)
    np.testing.assert_allclose(log_back[0, :5], g[0, :5] / dtype(t), rtol=4 * _eps(dtype))


# ----------------------------------------------------------- cross-entropy


def _ce_options(**changes: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "axis": -1,
        "reduction": "mean",
        "weight": None,
        "ignore_index": None,
        "label_smoothing": 0.0,
        "where": None,
        "validate": None,
    }
    options.update(changes)
    return options


def _ce_reference(
    x: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None,
    smoothing: float,
    ignore: int | None,
) -> tuple[np.ndarray, np.ndarray, LONG, np.ndarray]:
    """Per-sample losses, per-sample gradient (unscaled), D and the size of each gradient
    entry's two terms, in longdouble, written from SPEC section 2 directly (finite
    logits)."""
    n, c = x.shape
    wide = x.astype(LONG)
    m = wide.max(axis=-1, keepdims=True)
    logp = wide - m - np.log(np.exp(wide - m).sum(-1, keepdims=True))
    if target.ndim == 1:
        t = np.zeros((n, c), LONG)
        keep = np.ones(n, bool) if ignore is None else target != ignore
        t[np.arange(n)[keep], target[keep]] = 1
    else:
        t = target.astype(LONG)
        keep = np.ones(n, bool)
    w = np.ones(c, LONG) if weight is None else weight.astype(LONG)
    wt = w * ((1 - LONG(smoothing)) * t + LONG(smoothing) / c)
    loss = -np.where(wt == 0, 0, wt * logp).sum(-1)
    grad = np.exp(logp) * wt.sum(-1, keepdims=True) - wt
    loss[~keep] = 0
    grad[~keep] = 0
    d = (w * t)[keep].sum()
    # the two terms of each gradient entry: their difference cancels where p -> 1, so its
    # rounding error is bounded relative to their sum, not to the difference
    terms = np.abs(np.exp(logp) * wt.sum(-1, keepdims=True)) + np.abs(wt)
    terms[~keep] = 0
    return loss, grad, d, terms


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("shape", [(64, 300), (1000, 10)], ids=["wide", "narrow"])
def test_cross_entropy_against_reference(
    dtype: Any, soft: bool, weighted: bool, smoothing: float, shape: tuple[int, int]
) -> None:
    """Wide rows (the row kernels) and narrow ones (blocks of rows whose exponentials one
    loop computes; 1000 rows make several blocks)."""
    if dtype is F64 and not WIDE:
        pytest.skip("longdouble is no wider than float64 here")
    rng = np.random.default_rng(5)
    n, c = shape
    x = (rng.standard_normal((n, c)) * 3).astype(dtype)
    if soft:
        target = rng.random((n, c)).astype(dtype)
        target /= target.sum(-1, keepdims=True)
        ignore = None
    else:
        target = rng.integers(0, c, n)
        target[:5] = -100
        ignore = -100
    weight = (rng.random(c) + 0.5).astype(dtype) if weighted else None
    loss, grad, d, terms = _ce_reference(x, target, weight, smoothing, ignore)
    options = _ce_options(weight=weight, ignore_index=ignore, label_smoothing=smoothing)
    eps = _eps(dtype)
    bound = (math.log(c) + 8 + 2 * _log2n(c)) * eps * (np.abs(loss) + 1)
    per_sample = nb.cross_entropy(x, target, **{**options, "reduction": "none"})
    assert per_sample.shape == (n,)
    assert per_sample.dtype == dtype
    assert np.all(np.abs(per_sample.astype(LONG) - loss) <= bound)
    total = nb.cross_entropy(x, target, **{**options, "reduction": "sum"})
    assert total.shape == ()
    assert total.dtype == dtype
    assert abs(LONG(float(total)) - loss.sum()) <= bound.sum()
    mean = nb.cross_entropy(x, target, **options)
    assert abs(LONG(float(mean)) - loss.sum() / d) <= 2 * bound.sum() / abs(d)
    scale = rng.random(n).astype(dtype)
    gradient = nb.cross_entropy_backward(x, target, grad=scale, **{**options, "reduction": "none"})
    exact = grad * scale.astype(LONG)[:, None]
    size = terms * scale.astype(LONG)[:, None]
    assert np.all(np.abs(gradient.astype(LONG) - exact) <= 64 * eps * (size + 1e-3))
    mean_gradient = nb.cross_entropy_backward(x, target, grad=None, **options)
    assert np.all(np.abs(mean_gradient.astype(LONG) - grad / d) <= 64 * eps / abs(d))


def test_cross_entropy_edges() -> None:
    x = np.array([[0.0, -np.inf, 1.0], [2.0, 1.0, 0.0], [np.nan, 0.0, 0.0]], F64)
    labels = np.array([0, 1, 2])
    losses = nb.cross_entropy(x, labels, **_ce_options(reduction="none"))
    assert math.isfinite(losses[0])
    assert math.isfinite(losses[1])
    assert np.isnan(losses[2])
    # a -inf logit with target 0 adds nothing (0 log 0 = 0); with smoothing it is +inf
    smoothed = nb.cross_entropy(x, labels, **_ce_options(reduction="none", label_smoothing=0.1))
    assert smoothed[0] == np.inf
    # every sample ignored: D = 0 gives 0, not NaN, for loss and gradient
    ignored = np.array([-1, -1, -1])
    options = _ce_options(ignore_index=-1)
    assert nb.cross_entropy(x[:2], ignored[:2], **options) == 0
    assert np.all(nb.cross_entropy_backward(x[:2], ignored[:2], **options) == 0)
    # D = 0 with an infinite total (smoothing meets a -inf logit, all-zero target): still 0
    zero_target = nb.cross_entropy(x[:1], np.zeros((1, 3)), **_ce_options(label_smoothing=0.1))
    assert zero_target == 0
    # validate=False marks an invalid label NaN instead of raising
    marked = nb.cross_entropy(
        x[:2], np.array([0, 3]), **_ce_options(reduction="none", validate=False)
    )
    assert not np.isnan(marked[0])
    assert np.isnan(marked[1])
    # +inf logits: the limit, p = 1/k at the infinities
    inf_row = np.array([[np.inf, np.inf, 0.0]])
    loss = nb.cross_entropy(inf_row, np.array([0]), **_ce_options())
    assert abs(float(loss) - math.log(2)) <= 4 * _eps(F64)
    grad = nb.cross_entropy_backward(inf_row, np.array([0]), **_ce_options())
    np.testing.assert_allclose(grad, [[-0.5, 0.5, 0.0]])


# ---------------------------------------------------------- what is not taken


def _declined() -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """Valid calls the registry does not give numba (the portable path serves them)."""
    x = np.ones((3, 4))
    fwd = {"axis": -1, "where": None, "temperature": None}
    labels = np.array([0, 1, 2])
    return [
        ("softmax", (x,), {**fwd, "axis": 0}),
        ("softmax", (x,), {**fwd, "axis": (1, 0)}),  # all axes, not in order
        ("softmax", (x,), {**fwd, "where": np.ones((3, 4), bool)}),
        ("softmax", (x,), {**fwd, "temperature": np.array(2.0)}),
        ("softmax", (x.astype(np.float16),), fwd),
        ("softmax", (x.astype(np.int64),), fwd),
        ("softmax", (np.ones((4, 3)).T,), fwd),  # not C-contiguous
        ("softmax", (np.ones((0, 4)),), fwd),
        ("log_softmax", (np.array(1.0),), {**fwd, "axis": None}),
        ("softmax_backward", (np.ones((3, 4), F32), x), fwd),  # dtype mismatch
        ("cross_entropy", (x, labels), _ce_options(where=np.ones((3, 4), bool))),
        ("cross_entropy", (x, np.array([0, 1, 2, 0])), _ce_options(axis=0, weight=np.ones(3))),
        ("cross_entropy", (x, labels.astype(np.uint64)), _ce_options()),
    ]


@pytest.mark.parametrize("case", _declined(), ids=lambda c: c[0])
def test_the_registry_declines_what_numba_does_not_take(
    case: tuple[str, tuple[Any, ...], dict[str, Any]],
) -> None:
    name, arrays, options = case
    assert not _dispatch.NUMBA.accepts(described(name, *arrays, **options))


def _invalid() -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    x = np.ones((3, 4))
    fwd = {"axis": -1, "where": None, "temperature": None}
    labels = np.array([0, 1, 2])
    return [
        ("softmax", (x,), {**fwd, "axis": 5}),
        ("softmax", (x,), {**fwd, "axis": True}),
        ("softmax", (x,), {**fwd, "temperature": -1.0}),
        ("softmax", ([1.0, 2.0],), fwd),
        ("softmax", (np.float64(1.0),), fwd),
        ("logsumexp", (x,), {"axis": -1, "where": None, "keepdims": 1}),
        ("softmax_backward", (np.ones((3, 3)), x), fwd),  # shape mismatch
        ("cross_entropy", (x, np.array([0, 1, 4])), _ce_options()),  # label out of range
        ("cross_entropy", (x, np.array([0, 1, 4])), _ce_options(validate=True)),
        ("cross_entropy", (x, labels), _ce_options(reduction="avg")),
        ("cross_entropy", (x, labels), _ce_options(label_smoothing=1.5)),
        ("cross_entropy", (x, labels), _ce_options(weight=np.ones(3))),
        ("cross_entropy", (x, labels.astype(F64)), _ce_options()),  # labels not integers
        ("cross_entropy", (x, np.array([0, 1])), _ce_options()),  # shape mismatch
        ("cross_entropy", (x, np.full((3, 4), 0.25)), _ce_options(ignore_index=0)),
        ("cross_entropy_backward", (x, labels), {**_ce_options(), "grad": np.ones(3)}),
    ]


@pytest.mark.parametrize("case", _invalid(), ids=lambda c: c[0])
def test_invalid_calls_are_refused_before_any_kernel(
    case: tuple[str, tuple[Any, ...], dict[str, Any]],
) -> None:
    """Validation happens once, when the call is described (with the label check): no
    invalid call reaches a backend, so no backend needs to decide about one."""
    name, arrays, options = case
    with pytest.raises((TypeError, ValueError)):
        described(name, *arrays, **options)


def test_numba_takes_every_trailing_layout() -> None:
    """All axes of a C-contiguous array (``axis=None``) are one row to the kernels."""
    x = np.linspace(-2.0, 2.0, 24).reshape(2, 3, 4)
    y = nb.softmax(x, axis=None, where=None, temperature=None)
    ref = np.exp(x - x.max()) / np.exp(x - x.max()).sum()
    np.testing.assert_allclose(y, ref, rtol=8 * _eps(F64))
    z = nb.log_softmax(x, axis=(1, 2), where=None, temperature=None)
    flat = x.reshape(2, 12)
    ref_z = flat - flat.max(1, keepdims=True)
    ref_z = ref_z - np.log(np.exp(ref_z).sum(1, keepdims=True))
    np.testing.assert_allclose(z, ref_z.reshape(x.shape), atol=16 * _eps(F64))


def test_results_are_fresh_arrays_of_the_input_dtype() -> None:
    x = np.linspace(-1, 1, 12, dtype=F32).reshape(3, 4)
    y = nb.softmax(x, axis=-1, where=None, temperature=None)
    assert type(y) is np.ndarray
    assert y.dtype == F32
    assert y.shape == x.shape
    assert not np.shares_memory(x, y)
    lse = nb.logsumexp(x[0], axis=None, where=None, keepdims=False)
    assert type(lse) is np.ndarray
    assert lse.shape == ()
    assert lse.dtype == F32
    kept = nb.logsumexp(x, axis=-1, where=None, keepdims=True)
    assert kept.shape == (3, 1)


def test_edge_switch_changes_nothing_on_finite_input() -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((50, 60))
    labels = rng.integers(0, 60, 50)
    with_edges = nb.softmax(x, axis=-1, where=None, temperature=None)
    loss = nb.cross_entropy(x, labels, **_ce_options())
    with _config.without_edge_handling():
        np.testing.assert_array_equal(
            nb.softmax(x, axis=-1, where=None, temperature=None), with_edges
        )
        np.testing.assert_array_equal(nb.cross_entropy(x, labels, **_ce_options()), loss)


def test_import_compiles_nothing_and_only_this_module_imports_numba() -> None:
    code = (
        "import sys, numpy as np, portable_softmax as ps\n"
        "from portable_softmax import _config\n"
        "with _config.use_path('numpy'):\n"
        "    ps.softmax(np.ones(3))\n"
        "assert 'numba' not in sys.modules, 'numba imported outside its backend'\n"
        "import portable_softmax._backends.numba as nb\n"
        "from portable_softmax._backends.numba import _forward, _reductions\n"
        "assert not _forward.forward_kernel.cache_info().currsize\n"
        "assert not _reductions.row_max.signatures\n"
    )
    run = run_python(code, set_env={"PORTABLE_SOFTMAX_PATH": "auto"})
    assert run.returncode == 0, run.stderr


def test_kernels_load_from_the_disk_cache_in_a_new_process(tmp_path: Any) -> None:
    """Numba's cache keys the variants by their closure cells: a second process must load
    every kernel it uses, compiling (and saving) nothing."""
    code = (
        "import numpy as np\n"
        "import portable_softmax as ps\n"
        "x = np.ones((4, 5), np.float32)\n"
        "with ps.use_path('numba'):\n"
        "    ps.softmax(x)\n"
        "    ps.softmax_backward(x, x)\n"
        "    ps.cross_entropy_backward(x, np.zeros(4, np.int64))\n"
    )
    cache = {"NUMBA_CACHE_DIR": str(tmp_path), "NUMBA_DEBUG_CACHE": "1"}
    runs = [run_python(code, set_env=cache) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    runs_out = [run.stdout for run in runs]
    assert "data saved" in runs_out[0]
    assert "data saved" not in runs_out[1], runs_out[1]


def _rows_call(
    function: str, rows: np.ndarray, vector: Any, temperature: Any = None, keep: bool = False
) -> Call:
    """A Dask tree block operation on NumPy rows, described as the tree describes it."""
    import array_api_compat.numpy as xp

    return Call(function, xp, "numpy", rows, vector, (1,), None, temperature, keep, rows.dtype,
                rows.dtype)  # fmt: skip


def _block_operation(function: str, rows: np.ndarray, vector: Any, *options: Any) -> Any:
    """The numba kernel of a Dask tree block operation, after checking the registry gives
    numba such a call."""
    call = _rows_call(function, rows, vector, *options)
    assert _dispatch.NUMBA.accepts(call), f"the registry gives numba no such {function}"
    return getattr(kernels, function)(call)


def _tree_rows(layout: str, whole: np.ndarray) -> np.ndarray:
    """Row pieces as a Dask chunk holds them: cut by ``from_array`` (strided), contiguous,
    one row, or rows that overlap in memory (read through a copy)."""
    if layout == "strided":
        return whole[:, 700:]  # unit inner stride, not C-contiguous
    if layout == "contiguous":
        return np.ascontiguousarray(whole[:, 700:])
    if layout == "one row":
        return whole[5:6, 700:]
    if layout == "every other row":
        return whole[::2, 700:]
    if layout == "one column":
        return whole[:, 700:701]
    if layout == "reversed rows":  # read through a copy
        return whole[::-1, 700:]
    if layout == "broadcast row":  # row stride 0: read through a copy
        return np.broadcast_to(whole[3, 700:], (9, 700))
    item = whole.itemsize
    return np.lib.stride_tricks.as_strided(whole, (20, 700), (350 * item, item))  # overlapping


@pytest.mark.parametrize(
    "layout",
    [
        "strided",
        "contiguous",
        "one row",
        "every other row",
        "one column",
        "reversed rows",
        "broadcast row",
        "overlapping",
    ],
)
@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("temperature", [None, 0.5, 3.0])
def test_tree_statistics_match_float64_reference(dtype: Any, temperature: Any, layout: str) -> None:
    """The Dask tree's chunk step (``row_statistics``): per row the maximum, the sum of
    ``exp((x - m)/T)`` and the exponentials, on each layout a chunk's rows can have."""
    rng = np.random.default_rng(7)
    whole = (rng.standard_normal((37, 2 * 700)) * 40).astype(dtype)
    rows = _tree_rows(layout, whole)
    before = rows.copy()
    found = _block_operation("row_statistics", rows, None, temperature, True)
    assert found is not None
    m, s, e = found
    x = rows.astype(F64)
    t = 1.0 if temperature is None else temperature
    ref_m = x.max(axis=1, keepdims=True)
    ref_e = np.exp((x - ref_m) / t)
    eps = np.finfo(dtype).eps
    assert m.dtype == dtype
    assert e.dtype == dtype
    assert s.dtype == dtype
    np.testing.assert_array_equal(m, ref_m.astype(dtype))
    # exp's argument carries the rounding of (x - m)/T: a relative error of |arg| eps
    arg = np.abs((x - ref_m) / t)
    assert np.all(np.abs(e - ref_e) <= (4 + arg) * eps * ref_e + np.finfo(dtype).tiny)
    ref_s = np.array([[math.fsum(row)] for row in ref_e])
    assert np.all(np.abs(s - ref_s) <= 8 * eps * ref_s)  # the largest term is exp(0) = 1
    only = _block_operation("row_statistics", rows, None, temperature, False)
    assert only is not None
    assert only[2] is None
    np.testing.assert_array_equal(only[1], s)
    np.testing.assert_array_equal(rows, before)  # the input is only read


@pytest.mark.parametrize("dtype", [F32, F64])
def test_tree_rescale_matches_float64_reference(dtype: Any) -> None:
    """The output pass of split chunks (``rescale_rows``): ``min(e * f, 1)`` per row, in
    place, within one rounding of the float64 product; other calls are declined."""
    rng = np.random.default_rng(8)
    e = rng.uniform(0, 1, (9, 1500)).astype(dtype)
    e[0, 0] = 1.0
    factor = rng.uniform(0.5, 2, (9, 1)).astype(dtype)
    factor[0] = np.nextafter(dtype(1), dtype(2))  # 1 * (1 + ulp) clamps to 1
    ref = np.minimum(e.astype(F64) * factor.astype(F64), 1.0)
    out = _block_operation("rescale_rows", e, factor)
    assert out is e
    eps = np.finfo(dtype).eps
    assert np.all(np.abs(e - ref) <= eps / 2 * ref)
    assert e.max() <= 1.0
    assert e[0, 0] == 1.0
    nan = np.array([[np.nan, 0.5]], dtype)
    assert _block_operation("rescale_rows", nan, np.ones((1, 1), dtype)) is nan
    assert np.isnan(nan[0, 0])  # NaN stays NaN, as with np.minimum
    strided = _rows_call("rescale_rows", e[:, ::2], factor)
    assert not _dispatch.NUMBA.accepts(strided)  # not C-contiguous: the NumPy path's


@pytest.mark.parametrize("edge", [math.nan, math.inf, -math.inf])
def test_tree_statistics_leave_edge_rows_to_the_general_step(edge: float) -> None:
    """A row whose maximum is not finite (NaN, +inf, all -inf) gives None: the caller's
    general statistics settle SPEC section 2's table for it."""
    rows = np.ones((3, 5))
    rows[1] = -math.inf if edge == -math.inf else rows[1]
    rows[1, 2] = edge
    assert _block_operation("row_statistics", rows, None, None, True) is None
