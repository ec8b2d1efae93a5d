"""Every edge of SPEC section 2 for softmax, log_softmax and logsumexp.

One test per row of the precedence table (so a broken row fails its own test), then the
edge list: extremes, long half-precision rows, empty axes, 0-d input, ``axis=()``, strided
and transposed views, integer and bool promotion, temperature edges, NaN-freedom and
floating-point warnings. Results are compared with the stated values and, entry by entry,
with the mpmath reference (which encodes the same table independently).
"""

from __future__ import annotations

import contextlib
import math
import re
import warnings
from typing import Any

import numpy as np
import pytest

from conformance import _reference as ref
from conformance._framework import assert_array_like, convention_difference, require
from conformance._framework.provided import accepts_keyword
from conformance._numeric import (
    FLOATS,
    FORWARD,
    call,
    check_forward,
    need_dtype,
    prepare,
    reduced_shape,
    result_dtype,
)

INF = math.inf
NAN = math.nan
MASKED = {"softmax": 0.0, "log_softmax": -INF}


def _expect(out: np.ndarray, expected: np.ndarray, context: str, rtol: float = 0.0) -> None:
    """Entries equal (NaN matches NaN), or within ``rtol`` where ``expected`` is finite."""
    __tracebackhide__ = True
    expected = np.broadcast_to(np.asarray(expected, dtype=np.float64), out.shape)
    finite = np.isfinite(expected)
    with np.errstate(invalid="ignore", over="ignore"):
        ok = np.where(
            finite,
            np.abs(out - expected) <= rtol * np.abs(expected),
            (out == expected) | (np.isnan(out) & np.isnan(expected)),
        )
    if not ok.all():
        i = tuple(int(j) for j in np.argwhere(~ok)[0])
        raise AssertionError(
            f"out[{i}]={out[i]!r}, but should be {expected[i]!r} [{context}]\n"
            f"out={out.tolist()}\nexpected={expected.tolist()}"
        )


def _rtol(backend: Any, dtype: str) -> float:
    """A loose relative tolerance for stated values (exact checks are the reference's job)."""
    eps = ref.finfo(result_dtype(backend, dtype))[0]
    return 64 * eps


# --- precedence table, one test per row ------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", FORWARD)
def test_row1_masked_entries_take_no_part(backend: Any, impl: Any, name: str, dtype: str) -> None:
    """Masked entries give 0 / -inf / are left out, even when they hold NaN, +-inf or max."""
    need_dtype(backend, dtype)
    big = ref.finfo(dtype)[2]
    x = prepare(
        [[NAN, 1.0, 2.0, INF], [-INF, 0.5, big, 3.0], [NAN, INF, -INF, 0.0], [1.0, 2.0, 3.0, NAN]],
        dtype,
    )
    where = np.array(
        [
            [False, True, True, False],
            [False, True, False, True],
            [False, False, False, True],
            [True, True, True, False],
        ]
    )
    out = check_forward(backend, impl, name, x, dtype, axis=-1, where=where)
    clean = np.where(where, x, 0.0)
    if name == "logsumexp":
        expected = [
            math.log(math.e + math.e**2),
            math.log(math.exp(0.5) + math.exp(3)),
            0.0,
            math.log(math.e + math.e**2 + math.e**3),
        ]
        _expect(out, np.array(expected), f"{name} row 1", _rtol(backend, dtype))
    else:
        _expect(out[~where], np.full((~where).sum(), MASKED[name]), f"{name} row 1 masked")
        assert not np.isnan(out).any(), f"NaN leaked from a masked entry: {out.tolist()}"
        assert clean.shape == out.shape


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", FORWARD)
def test_row2_unmasked_nan_gives_nan_slice(backend: Any, impl: Any, name: str, dtype: str) -> None:
    """Any unmasked NaN makes its slice NaN (masked entries still 0 / -inf); others untouched."""
    need_dtype(backend, dtype)
    x = prepare(
        [[1.0, NAN, 2.0], [NAN, INF, -INF], [INF, NAN, 0.0], [-INF, -INF, NAN], [1.0, 2.0, 3.0]],
        dtype,
    )
    where = np.array([[True] * 3, [True] * 3, [True] * 3, [False, True, True], [True] * 3])
    out = check_forward(backend, impl, name, x, dtype, axis=-1, where=where)
    if name == "logsumexp":
        assert np.isnan(out[:4]).all(), f"slices with NaN: {out[:4].tolist()}, should be NaN"
        assert np.isfinite(out[4]), f"clean slice gave {out[4]!r}"
    else:
        assert np.isnan(out[:3]).all(), out.tolist()
        assert np.isnan(out[3, 1:]).all(), out.tolist()
        assert out[3, 0] == MASKED[name], f"masked entry gave {out[3, 0]!r} in a NaN slice"
        assert np.isfinite(out[4]).all(), f"clean slice gave {out[4].tolist()}"


@pytest.mark.parametrize("masked", [True, False], ids=["where", "no-where"])
@pytest.mark.parametrize("temperature", [None, 0.5])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", FORWARD)
def test_row3_posinf_entries_share_the_mass(
    backend: Any, impl: Any, name: str, dtype: str, temperature: float | None, masked: bool
) -> None:
    """k unmasked +inf entries: 1/k there and 0 elsewhere; -log k / -inf; logsumexp +inf."""
    need_dtype(backend, dtype)
    if temperature is not None and name == "logsumexp":
        pytest.skip("logsumexp takes no temperature")
    big = ref.finfo(dtype)[2]
    x = prepare(
        [[INF, 1.0, INF, -INF], [INF, 0.0, 0.0, big], [INF, INF, INF, -INF], [INF, INF, 5.0, 5.0]],
        dtype,
    )
    where = np.array([[True] * 4, [True] * 4, [True] * 4, [False, True, True, True]])
    opts: dict[str, Any] = {"where": where} if masked else {}
    where = where if masked else np.ones(x.shape, bool)
    if temperature is not None:
        opts["temperature"] = temperature
    with convention_difference(impl, "nan_for_inf_rows"):
        out = check_forward(backend, impl, name, x, dtype, axis=-1, **opts)
        if name == "logsumexp":
            _expect(out, np.full(4, INF), "logsumexp row 3")
            return
        k = np.sum((x == INF) & where, axis=1, keepdims=True)
        share = -np.log(k) if name == "log_softmax" else 1.0 / k
        expected = np.where((x == INF) & where, share, MASKED[name])
        _expect(out, expected, f"{name} row 3", _rtol(backend, dtype))


@pytest.mark.parametrize("masked", [True, False], ids=["where", "no-where"])
@pytest.mark.parametrize("temperature", [None, 2.0])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", FORWARD)
def test_row4_no_finite_entry(
    backend: Any, impl: Any, name: str, dtype: str, temperature: float | None, masked: bool
) -> None:
    """All -inf or all masked slices give 0 / -inf / -inf (never NaN)."""
    need_dtype(backend, dtype)
    if temperature is not None and name == "logsumexp":
        pytest.skip("logsumexp takes no temperature")
    opts: dict[str, Any] = {} if temperature is None else {"temperature": temperature}
    fill = -INF if name != "softmax" else 0.0
    if masked:
        x = prepare(
            [[-INF, -INF, -INF], [NAN, INF, 1.0], [-INF, 2.0, -INF], [1.0, 2.0, 3.0]], dtype
        )
        where = np.array([[True] * 3, [False] * 3, [True, False, True], [True] * 3])
        with convention_difference(impl, "nan_for_inf_rows"):
            out = check_forward(backend, impl, name, x, dtype, axis=-1, where=where, **opts)
            _expect(out[:3], np.full(out[:3].shape, fill), f"{name} row 4")
        return
    # the plain all -inf slice, without a mask
    x2 = prepare([[-INF, -INF], [0.0, -INF]], dtype)
    with convention_difference(impl, "nan_for_inf_rows"):
        out2 = check_forward(backend, impl, name, x2, dtype, axis=-1, **opts)
        _expect(out2[0], np.full(out2[0].shape, fill), f"{name} row 4 (no mask)")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", FORWARD)
def test_row5_finite_extremes_never_nan(backend: Any, impl: Any, name: str, dtype: str) -> None:
    """The largest finite floats, huge spreads and subnormals: formula values, never NaN."""
    need_dtype(backend, dtype)
    _, tiny, big, bits = ref.finfo(dtype)
    sub = tiny * 2.0 ** -(bits - 1)  # smallest subnormal
    x = prepare(
        [
            [big, big, big],
            [big, -big, 0.0],
            [-big, -big, -big],
            [big, big / 2, -big / 2],
            [sub, 0.0, -sub],
            [tiny, -tiny, 0.0],
            [1e4, -1e4, 0.0] if dtype != "float16" else [6e4, -6e4, 0.0],
        ],
        dtype,
    )
    out = check_forward(backend, impl, name, x, dtype, axis=-1)
    assert not np.isnan(out).any(), f"NaN from finite input: {out.tolist()}"
    if name == "softmax":
        _expect(out[0], np.full(3, 1 / 3), "softmax of equal max floats", _rtol(backend, dtype))
        _expect(out[1], np.array([1.0, 0.0, 0.0]), "softmax of max, -max, 0")


# --- half precision ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_row_of_70000_equal_entries(backend: Any, impl: Any, dtype: str) -> None:
    """softmax of 70,000 equal half entries is 1/70000 in that dtype (subnormal in float16)."""
    need_dtype(backend, dtype)
    fn = require(impl, "softmax")
    x = np.zeros((1, 70_000))
    out = call(
        backend,
        fn,
        (x,),
        (dtype,),
        out_dtype=dtype,
        out_shape=x.shape,
        context=f"softmax({dtype}(1, 70000))",
        axis=-1,
    )
    want = float(ref.round_to(np.array(1 / 70_000), dtype))
    assert want > 0
    assert (out != 0).all(), f"{(out == 0).sum()} entries flushed to 0, should be {want!r}"
    _expect(out, np.full(x.shape, want), f"softmax({dtype} row of 70000)")
    # log_softmax and logsumexp of the same row
    lsm = call(
        backend,
        require(impl, "log_softmax"),
        (x,),
        (dtype,),
        out_dtype=dtype,
        out_shape=x.shape,
        context=f"log_softmax({dtype}(1, 70000))",
        axis=-1,
    )
    ulp = float(ref.ulp(np.array(math.log(70_000)), dtype))
    assert np.abs(lsm + math.log(70_000)).max() <= ulp, lsm[0, :3]
    lse = call(
        backend,
        require(impl, "logsumexp"),
        (x + 1.0,),
        (dtype,),
        out_dtype=dtype,
        out_shape=(1,),
        context=f"logsumexp({dtype}(1, 70000))",
        axis=-1,
    )
    assert abs(lse[0] - (1 + math.log(70_000))) <= ulp, lse


# --- shapes: empty axes, 0-d, axis=() ----------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "axis"),
    [((3, 0), -1), ((0, 4), -1), ((0, 4), 0), ((2, 0, 3), (1, 2)), ((0,), None)],
    ids=["3x0-last", "0x4-last", "0x4-axis0", "2x0x3-tuple", "0-none"],
)
@pytest.mark.parametrize("name", FORWARD)
@pytest.mark.convention("error_on_empty_axis")
def test_empty_reduction_axis(
    backend: Any, impl: Any, name: str, shape: tuple[int, ...], axis: ref.Axis
) -> None:
    """A zero-length axis gives an empty result of the right shape; logsumexp -inf per slice."""
    dtype = "float32"
    fn = require(impl, name)
    x = np.zeros(shape)
    out_shape = reduced_shape(shape, axis) if name == "logsumexp" else shape
    out = call(
        backend,
        fn,
        (x,),
        (dtype,),
        out_dtype=dtype,
        out_shape=out_shape,
        context=f"{name}({shape}, axis={axis})",
        axis=axis,
    )
    if name == "logsumexp":
        _expect(out, np.full(out_shape, -INF), f"logsumexp over an empty axis {shape}")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2.5, (1.0, 0.0, 2.5)),
        (-INF, (0.0, -INF, -INF)),
        (INF, (1.0, 0.0, INF)),
        (NAN, (NAN, NAN, NAN)),
        (-3e38, (1.0, 0.0, -3e38)),
    ],
    ids=["finite", "-inf", "+inf", "nan", "huge-negative"],
)
@pytest.mark.parametrize("axis", [None, ()], ids=["None", "()"])
@pytest.mark.parametrize("name", FORWARD)
def test_zero_d_input(
    backend: Any,
    impl: Any,
    name: str,
    axis: ref.Axis,
    value: float,
    expected: tuple[float, float, float],
) -> None:
    """0-d input with axis=None or () applies the table to the single element."""
    dtype = backend.default_float
    fn = require(impl, name)
    x = prepare(np.array(value), dtype)
    # a peer's NaN for +-inf is its convention; for finite values it is a failure
    infinite = math.isinf(value)
    with convention_difference(impl, "nan_for_inf_rows") if infinite else contextlib.nullcontext():
        out = call(
            backend,
            fn,
            (x,),
            (dtype,),
            out_dtype=dtype,
            out_shape=(),
            context=f"{name}(0-d {value}, axis={axis})",
            axis=axis,
        )
        want = float(ref.round_to(np.array(expected[FORWARD.index(name)]), dtype))
        _expect(out, np.array(want), f"{name}(0-d {value})")


@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("name", FORWARD)
@pytest.mark.convention("own_validation_errors")
def test_zero_d_int_axis_is_value_error(backend: Any, impl: Any, name: str, axis: int) -> None:
    """An int axis on 0-d input is a ValueError that suggests axis=None."""
    fn = require(impl, name)
    x = backend.asarray(np.array(1.0), backend.default_float)
    with pytest.raises(ValueError, match=re.escape("axis=None")):
        fn(x, axis=axis)


@pytest.mark.parametrize("name", FORWARD)
def test_axis_empty_tuple_makes_every_element_a_slice(backend: Any, impl: Any, name: str) -> None:
    """axis=() : softmax 1 (0 at -inf, NaN at NaN), log_softmax 0, logsumexp the value."""
    dtype = backend.default_float
    finite = prepare([[1.0, 0.0, -5.0]], dtype)
    out = check_forward(backend, impl, name, finite, dtype, axis=())
    alone = {"softmax": np.ones_like(finite), "log_softmax": np.zeros_like(finite)}
    _expect(out, alone.get(name, finite), f"{name}(finite, axis=())")
    x = prepare([[1.0, -INF, INF], [NAN, 0.0, -5.0]], dtype)
    expected = {
        "softmax": [[1.0, 0.0, 1.0], [NAN, 1.0, 1.0]],
        "log_softmax": [[0.0, -INF, 0.0], [NAN, 0.0, 0.0]],
        "logsumexp": x,
    }[name]
    with convention_difference(impl, "nan_for_inf_rows"):  # the +-inf one-element slices
        out = check_forward(backend, impl, name, x, dtype, axis=())
        _expect(out, np.array(expected), f"{name}(axis=())")


# --- memory layout -----------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("name", FORWARD)
def test_transposed_and_strided_views(backend: Any, impl: Any, name: str, axis: int) -> None:
    """Transposed and step-sliced backend arrays give the values of their contents."""
    dtype = "float32"
    fn = require(impl, name)
    xp = backend.xp
    base = prepare(np.random.default_rng(20).normal(0, 4, (6, 10)), dtype)
    a = backend.asarray(base, dtype)
    for label, view, data in [
        ("transposed", xp.permute_dims(a, (1, 0)), base.T),
        ("every-other-column", a[:, ::2], base[:, ::2]),
        (
            "reversed-rows-strided",
            a[::-2, 1::3] if _negative_steps(backend) else a[::2, 1::3],
            base[::-2, 1::3] if _negative_steps(backend) else base[::2, 1::3],
        ),
    ]:
        context = f"{name}({label}, axis={axis})"
        out = fn(view, axis=axis)
        shape = reduced_shape(data.shape, axis) if name == "logsumexp" else data.shape
        assert_array_like(out, xp=xp, dtype=dtype, shape=shape, context=context)
        got = np.asarray(backend.to_numpy(out), dtype=np.float64)
        exact = {
            "softmax": ref.softmax,
            "log_softmax": ref.log_softmax,
            "logsumexp": ref.logsumexp,
        }[name](np.ascontiguousarray(data), axis=axis)
        bound = {
            "softmax": ref.bound_softmax,
            "log_softmax": ref.bound_log_softmax,
            "logsumexp": ref.bound_logsumexp,
        }[name](data, axis)
        ref.check(got, exact, bound, dtype, relative=name == "softmax", context=context)


def _negative_steps(backend: Any) -> bool:
    # PyTorch tensors cannot be sliced with a negative step
    return backend.name != "torch"


# --- integer and bool inputs -------------------------------------------------------------------


@pytest.mark.parametrize("name", FORWARD)
@pytest.mark.convention("no_integer_promotion")
def test_uint8_no_wraparound(backend: Any, impl: Any, name: str) -> None:
    """uint8 [0, 255] is promoted before x - m: no wrap-around (255 dominates)."""
    need_dtype(backend, "uint8")
    x = np.array([[0, 255], [255, 0], [128, 255]], dtype=np.uint8)
    out = check_forward(backend, impl, name, x, "uint8", axis=-1)
    if name == "softmax":
        assert out[0, 1] == 1.0, out.tolist()
        assert out[1, 0] == 1.0, out.tolist()


@pytest.mark.parametrize("name", FORWARD)
@pytest.mark.convention("no_integer_promotion")
def test_int64_near_2_62_no_overflow(backend: Any, impl: Any, name: str) -> None:
    """int64 entries near +-2**62: x - m would overflow int64; promoted first, it does not."""
    need_dtype(backend, "int64")
    x = np.array([[2**62, -(2**62), -(2**62) - 2**61], [2**62, 2**62 - 1, 0]], dtype=np.int64)
    out = check_forward(backend, impl, name, x, "int64", axis=-1)
    if name == "softmax":
        _expect(out[0], np.array([1.0, 0.0, 0.0]), "softmax int64 near 2**62")


@pytest.mark.parametrize("name", FORWARD)
@pytest.mark.convention("no_integer_promotion")
def test_bool_input(backend: Any, impl: Any, name: str) -> None:
    """bool input becomes 0.0 / 1.0 in the default float dtype."""
    x = np.array([[True, False, True], [False, False, False]])
    check_forward(backend, impl, name, x, "bool", axis=-1)


# --- temperature -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_temperature_applied_after_the_max_shift(
    backend: Any, impl: Any, name: str, dtype: str
) -> None:
    """(x - m)/T, not x/T - max(x/T): extreme logits with tiny or huge T stay finite."""
    need_dtype(backend, dtype)
    big = ref.finfo(dtype)[2]
    tiny_t = 2e-38 if dtype == "float32" else 1e-300
    x = prepare([[big * 0.9, big * 0.85, big * 0.1], [10.0, 9.0, 8.0]], dtype)
    for t in (0.5, tiny_t, big / 8):
        out = check_forward(backend, impl, name, x, dtype, axis=-1, temperature=t)
        assert not np.isnan(out).any(), f"T={t}: {out.tolist()}"
    # T tiny: x/T would overflow to +inf (a 1/2-1/2 split); (x - m)/T gives a one-hot
    out = check_forward(backend, impl, "softmax", x, dtype, axis=-1, temperature=tiny_t)
    _expect(out[1], np.array([1.0, 0.0, 0.0]), f"softmax(T={tiny_t})")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_temperature_huge_with_spread_beyond_range(
    backend: Any, impl: Any, name: str, dtype: str
) -> None:
    """x - m beyond the float range, divided by a huge T, is a moderate in-range value.

    [0.9 max, -0.9 max] with T = max/8: (x - m)/T = -14.4, so softmax is [1 - 5.6e-7, 5.6e-7];
    rounding x - m to -inf first would give an exact 0 (and log_softmax -inf).
    """
    need_dtype(backend, dtype)
    big = ref.finfo(dtype)[2]
    x = prepare([[big * 0.9, -big * 0.9]], dtype)
    check_forward(backend, impl, name, x, dtype, axis=-1, temperature=big / 8)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_temperature_array_bad_entry_makes_its_slice_nan(
    backend: Any, impl: Any, name: str
) -> None:
    """Non-positive or NaN temperature entries make their slice NaN; other slices are normal."""
    dtype = "float32"
    fn = require(impl, name, "temperature")
    x = prepare(np.random.default_rng(21).normal(0, 2, (4, 5)), dtype)
    t = np.array([[1.5], [0.0], [-2.0], [NAN]])
    out = call(
        backend,
        fn,
        (x,),
        (dtype,),
        out_dtype=dtype,
        out_shape=x.shape,
        context=f"{name}(temperature=[1.5, 0, -2, nan])",
        axis=-1,
        temperature=t,
    )
    assert np.isnan(out[1:]).all(), f"slices with a bad temperature: {out[1:].tolist()}"
    exact = (ref.softmax if name == "softmax" else ref.log_softmax)(x[:1], temperature=1.5)
    bound = (ref.bound_softmax if name == "softmax" else ref.bound_log_softmax)(
        x[:1], -1, None, 1.5
    )
    ref.check(
        out[:1],
        exact,
        bound,
        dtype,
        relative=name == "softmax",
        context=f"{name}(T=1.5 slice next to bad ones)",
    )


# --- NaN-freedom and warnings ------------------------------------------------------------------


def _adversarial(dtype: str) -> np.ndarray:
    _, tiny, big, _ = ref.finfo(dtype)
    rows = [
        [INF, -INF, 0.0, big],
        [-INF, -INF, -INF, -INF],
        [INF, INF, INF, INF],
        [big, big, -big, -big],
        [tiny, -tiny, 0.0, -INF],
        [INF, big, -big, -INF],
        [-big, -INF, -big, -INF],
        [0.0, 0.0, 0.0, 0.0],
    ]
    return prepare(rows, dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", FORWARD)
def test_nan_free_input_gives_nan_free_output(
    backend: Any, impl: Any, name: str, dtype: str
) -> None:
    """Any NaN-free input (infinities, extremes, masks) gives a NaN-free output."""
    need_dtype(backend, dtype)
    x = _adversarial(dtype)
    where = np.ones(x.shape, bool)
    where[::3, 1] = False
    finite = np.isfinite(x).all(axis=1)  # the finite extremes: no peer convention applies
    for opts in ({}, {"where": where}, {"axis": 0}, {"axis": None}):
        part = {k: v[finite] if k == "where" else v for k, v in opts.items()}
        out = check_forward(backend, impl, name, x[finite], dtype, **{"axis": -1, **part})
        assert not np.isnan(out).any(), f"NaN for finite input with {list(opts)}"
        with convention_difference(impl, "nan_for_inf_rows"):
            out = check_forward(backend, impl, name, x, dtype, **{"axis": -1, **opts})
            assert not np.isnan(out).any(), f"NaN for NaN-free input with {list(opts)}"


@pytest.mark.parametrize("name", FORWARD)
def test_no_floating_point_warnings(backend: Any, impl: Any, name: str) -> None:
    """No floating-point warning (overflow, invalid, divide) for any documented input."""
    dtype = "float32"
    fn = require(impl, name)
    x = _adversarial(dtype)
    x[0, 2] = NAN
    where = np.ones(x.shape, bool)
    where[1::2, 0] = False
    calls: list[dict[str, Any]] = [{}, {"where": where}, {"axis": None}, {"axis": ()}]
    if name != "logsumexp":
        calls.append(
            {"temperature": np.array([[0.0], [-1.0], [NAN], [1e-30], [1e30], [1.0], [2.0], [0.5]])}
        )
    # options the implementation lacks are left out (not provided), the rest still checked
    calls = [opts for opts in calls if all(accepts_keyword(fn, key) for key in opts)]
    with warnings.catch_warnings(), np.errstate(all="warn"):
        warnings.simplefilter("error")
        for opts in calls:
            shape = reduced_shape(x.shape, opts.get("axis", -1)) if name == "logsumexp" else x.shape
            call(
                backend,
                fn,
                (x,),
                (dtype,),
                out_dtype=dtype,
                out_shape=shape,
                context=f"{name}({list(opts)})",
                **opts,
            )
