"""Accuracy of softmax, log_softmax and logsumexp against mpmath (SPEC section 3).

Every output entry is compared with the exact value of the same rounded input, computed at
50 digits, and must stay within the SPEC section 3 bound for its dtype; the worst error and
its bound are recorded for the conformance matrix. Long slices (100k entries, contiguous and
strided) use an extended-precision reference instead of mpmath.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from conformance import _reference as ref
from conformance._numeric import (
    FLOATS,
    FORWARD,
    as_float,
    call,
    check_forward,
    need_dtype,
    prepare,
    result_dtype,
)

Case = Callable[[np.random.Generator], tuple[np.ndarray, ref.Axis]]


def _normal(shape: tuple[int, ...], scale: float, axis: ref.Axis, shift: float = 0.0) -> Case:
    return lambda rng: (rng.normal(shift, scale, shape), axis)


def _near_ties(rng: np.random.Generator) -> tuple[np.ndarray, ref.Axis]:
    return 1.0 + rng.integers(-3, 4, (4, 9)) * 2.0**-12, -1


def _one_dominant(rng: np.random.Generator) -> tuple[np.ndarray, ref.Axis]:
    x = rng.uniform(-60.0, -20.0, (3, 10))
    x[:, 3] = 0.0
    return x, 1


def _negative_max(rng: np.random.Generator) -> tuple[np.ndarray, ref.Axis]:
    x = rng.uniform(-100.0, -88.0, (4, 7))  # exp underflows here unless shifted
    x[:, 2] = -50.0
    return x, -1


CASES: dict[str, Case] = {
    "normal": _normal((6, 9), 3.0, -1),
    "wide-spread": _normal((4, 12), 12.0, -1),  # spreads up to ~80: outputs near 1e-35
    "offset": _normal((4, 8), 2.0, -1, shift=3000.0),  # large |m| for logsumexp
    "near-ties": _near_ties,
    "one-dominant": _one_dominant,
    "axis0-3d": _normal((5, 4, 3), 2.0, 0),
    "axis-middle": _normal((3, 6, 2), 2.0, -2),
    "axis-tuple": _normal((3, 4, 5), 2.0, (0, 2)),
    "axis-none": _normal((4, 5), 2.0, None),
    "axis-empty-tuple": _normal((3, 4), 2.0, ()),
    "single-entry": _normal((5, 1), 2.0, -1),
    # Around the exp limits, where a fast path may skip the max-shift (float32 exp overflows
    # above ~88.7, float64 above ~709.8): results must not care which way they were computed.
    "maxima-near-64": lambda rng: (rng.uniform(60.0, 64.0, (4, 7)), -1),
    "maxima-near-88": lambda rng: (rng.uniform(87.0, 88.0, (4, 7)), -1),
    "maxima-above-88": lambda rng: (rng.uniform(88.0, 88.7, (4, 7)), -1),
    "maxima-near-709": lambda rng: (rng.uniform(705.0, 709.0, (4, 7)), -1),
    "negative-max": _negative_max,
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", FORWARD)
def test_random_and_adversarial(backend: Any, impl: Any, name: str, case: str, dtype: str) -> None:
    """Every entry within the SPEC section 3 bound, for each axis form and dtype."""
    need_dtype(backend, dtype)
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    raw, axis = CASES[case](rng)
    if dtype == "float16":
        raw = np.clip(raw, -6e4, 6e4)
    check_forward(backend, impl, name, prepare(raw, dtype), dtype, axis=axis)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logsumexp_keepdims(backend: Any, impl: Any, dtype: str) -> None:
    """keepdims=True keeps size-1 reduced axes and the same values."""
    need_dtype(backend, dtype)
    x = prepare(np.random.default_rng(5).normal(0, 4, (3, 4, 5)), dtype)
    check_forward(backend, impl, "logsumexp", x, dtype, axis=(0, 2), keepdims=True)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("temperature", [0.25, 7.5])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_temperature_float(
    backend: Any, impl: Any, name: str, temperature: float, dtype: str
) -> None:
    """A float temperature divides the shifted logits; the bound scales |x - m| by 1/T."""
    need_dtype(backend, dtype)
    x = prepare(np.random.default_rng(6).normal(0, 5, (5, 11)), dtype)
    check_forward(backend, impl, name, x, dtype, axis=-1, temperature=temperature)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_temperature_array(backend: Any, impl: Any, name: str, dtype: str) -> None:
    """An array temperature with size 1 on the reduced axis sets one T per slice."""
    need_dtype(backend, dtype)
    rng = np.random.default_rng(7)
    x = prepare(rng.normal(0, 5, (2, 4, 6)), dtype)
    t = prepare(rng.choice([0.125, 0.5, 1.0, 3.0, 20.0], (2, 4, 1)), dtype)
    check_forward(backend, impl, name, x, dtype, axis=-1, temperature=t)
    # broadcast on a non-last axis: shape (1, 4, 1) for axis=0 of (2, 4, 6)... keepdims (1, 4, 6)
    t0 = prepare(rng.choice([0.5, 2.0], (1, 1, 6)), dtype)
    check_forward(backend, impl, name, x, dtype, axis=(0, 1), temperature=t0)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", FORWARD)
def test_where_mask(backend: Any, impl: Any, name: str, dtype: str) -> None:
    """A random mask (one slice fully masked, one fully kept), broadcast from fewer dims."""
    need_dtype(backend, dtype)
    rng = np.random.default_rng(8)
    x = prepare(rng.normal(0, 4, (5, 7)), dtype)
    where = rng.random((5, 7)) < 0.6
    where[0] = False
    where[1] = True
    check_forward(backend, impl, name, x, dtype, axis=-1, where=where)
    col = rng.random(7) < 0.5
    col[0] = True
    check_forward(backend, impl, name, x, dtype, axis=-1, where=col)


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8", "bool"])
@pytest.mark.parametrize("name", FORWARD)
@pytest.mark.convention("no_integer_promotion")
def test_integer_and_bool_input(backend: Any, impl: Any, name: str, dtype: str) -> None:
    """Integers and bools become the default float first, then the float bound applies."""
    need_dtype(backend, dtype)
    rng = np.random.default_rng(9)
    if dtype == "bool":
        raw = rng.random((4, 6)) < 0.5
    else:
        # spreads below 87 keep float32 outputs normal (subnormals have their own test)
        lo, hi = (0, 80) if dtype == "uint8" else (-40, 40)
        raw = rng.integers(lo, hi, (4, 6), endpoint=True)
    check_forward(backend, impl, name, prepare(raw, dtype), dtype, axis=-1)


# --- long slices: 100k entries, contiguous and strided -----------------------------------

LONG = 100_000


def _long_input(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    # normal(0, 3) makes a one-at-a-time float32 running sum err by ~1000 eps (measured),
    # far beyond the 2*ceil(log2 n) + 8 = 42 eps the SPEC allows
    return prepare(np.random.default_rng(10).normal(0.0, 3.0, shape), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("shape", "axis"), [((2, LONG), -1), ((LONG, 3), 0)], ids=["row", "strided-axis0"]
)
@pytest.mark.parametrize("name", FORWARD)
def test_long_slices(
    backend: Any, impl: Any, name: str, shape: tuple[int, ...], axis: int, dtype: str
) -> None:
    """Sums stay accurate over 100k entries whatever the axis (SPEC section 3)."""
    from conformance._framework import require

    need_dtype(backend, dtype)
    x = _long_input(dtype, shape)
    fn = require(impl, name)
    out_shape = (
        tuple(s for i, s in enumerate(shape) if i != axis % 2) if name == "logsumexp" else shape
    )
    context = f"{name}({dtype}{shape}, axis={axis})"
    out = call(
        backend,
        fn,
        (x,),
        (dtype,),
        out_dtype=result_dtype(backend, dtype),
        out_shape=out_shape,
        context=context,
        axis=axis,
    )
    xf = as_float(x, backend, dtype)
    exact = ref.cached(ref.longdouble_reference, xf, name, axis=axis)
    bound = {
        "softmax": ref.bound_softmax,
        "log_softmax": ref.bound_log_softmax,
        "logsumexp": ref.bound_logsumexp,
    }[name](xf, axis)
    ref.check(out, exact, bound, dtype, relative=name == "softmax", context=context)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_half_long_row(backend: Any, impl: Any, name: str) -> None:
    """float16 rows longer than 65504 accumulate in float32 (values, not just no overflow)."""
    need_dtype(backend, "float16")
    x = prepare(np.random.default_rng(11).normal(0.0, 2.0, (1, 70_000)), "float16")
    from conformance._framework import require

    fn = require(impl, name)
    context = f"{name}(float16(1, 70000))"
    out = call(
        backend,
        fn,
        (x,),
        ("float16",),
        out_dtype="float16",
        out_shape=x.shape,
        context=context,
        axis=-1,
    )
    exact = ref.cached(ref.longdouble_reference, x, name, axis=-1)
    bound = (ref.bound_softmax if name == "softmax" else ref.bound_log_softmax)(x, -1)
    ref.check(out, exact, bound, "float16", relative=name == "softmax", context=context)


def _flushes_subnormals(backend: Any, dtype: str) -> bool:
    """Whether arithmetic on the backend flushes subnormal results of ``dtype`` to zero."""
    tiny = ref.finfo(dtype)[1]
    a = backend.asarray(np.array([tiny]), dtype)
    return bool(backend.to_numpy(a * 0.5)[0] == 0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_subnormal_outputs(
    backend: Any, impl: Any, request: pytest.FixtureRequest, name: str, dtype: str
) -> None:
    """Outputs below the normal range keep their (absolute) accuracy instead of flushing."""
    need_dtype(backend, dtype)
    if name == "softmax" and _flushes_subnormals(backend, dtype):
        request.applymarker(
            pytest.mark.xfail(
                reason=f"{backend.name} flushes {dtype} subnormal results to zero (FTZ), "
                "so outputs below the normal range read 0",
                strict=True,
            )
        )
    edge = -math.log(ref.finfo(dtype)[1])  # exp(-edge) is the smallest normal
    offsets = np.array([0.0, -1.0, -edge + 0.5, -edge - 0.5, -edge - 3.0, -edge - 9.0])
    check_forward(backend, impl, name, prepare(offsets[None, :], dtype), dtype, axis=-1)
