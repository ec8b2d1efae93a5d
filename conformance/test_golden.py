"""Frozen golden values (mpmath, 50 digits; ``golden/make_golden.py``) on every backend.

The values were computed once by a script that shares no code with the live references of
``_reference.py``; each output entry must be within the SPEC section 3 bound of its dtype, and
the worst error is recorded for the matrix. ``test_golden_matches_live_reference`` checks
the two independent references against each other.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import mpmath
import numpy as np
import pytest

from conformance import _reference as ref
from conformance._framework import require
from conformance._numeric import FORWARD, call, forward_bound, need_dtype, prepare

pytestmark = pytest.mark.values

GOLDEN = Path(__file__).with_name("golden") / "golden.json"


@cache
def _golden() -> dict[str, Any]:
    return dict(json.loads(GOLDEN.read_text()))


def _ref(values: list[str]) -> ref.Ref:
    """Double-double pairs of 50-digit decimal strings."""
    with mpmath.workdps(60):
        exact = [mpmath.mpf(v) for v in values]
        hi = np.array([float(v) for v in exact])
        lo = np.array(
            [float(v - h) if np.isfinite(h) else 0.0 for v, h in zip(exact, hi, strict=True)]
        )
    return ref.Ref(hi, lo)


def _long_input() -> tuple[np.ndarray, dict[str, Any]]:
    """The long slice, built from its integer rule, and its golden values by distinct value."""
    long = _golden()["long"]
    rule = long["rule"]
    j = (np.arange(rule["n"], dtype=np.int64) * rule["mult"]) % rule["mod"]
    return j / rule["scale"] + rule["offset"], long["by_value"]


def _cases() -> list[tuple[str, str, int]]:
    out = []
    for name, case in _golden()["cases"].items():
        out += [(name, dtype, r) for dtype in case["dtypes"] for r in range(len(case["rows"]))]
    out += [("long-row", dtype, 0) for dtype in _golden()["long"]["dtypes"]]
    out += [("long-column", dtype, 0) for dtype in _golden()["long"]["dtypes"]]
    return out


def _expected(case: str, row: int, fn: str) -> tuple[np.ndarray, ref.Ref, int]:
    """(input slice, golden values of fn, axis) for one golden case."""
    if case.startswith("long"):
        x, by_value = _long_input()
        idx = {v: i for i, v in enumerate(by_value["x"])}
        pick = np.array([idx[v] for v in x.tolist()])
        if fn == "logsumexp":
            r = _ref([by_value["logsumexp"]])
        else:
            r = _ref(by_value[fn])
            r = ref.Ref(r.hi[pick], r.lo[pick])
        return x, r, -1
    data = _golden()["cases"][case]["rows"][row]
    values = [data["logsumexp"]] if fn == "logsumexp" else data[fn]
    return np.array(data["x"], dtype=np.float64), _ref(values), -1


@pytest.mark.parametrize("fn", FORWARD)
@pytest.mark.parametrize(
    ("case", "dtype", "row"), _cases(), ids=[f"{c}-{d}-{r}" for c, d, r in _cases()]
)
def test_golden_values(backend: Any, impl: Any, fn: str, case: str, dtype: str, row: int) -> None:
    """Every entry within the SPEC section 3 bound of the stored 50-digit value."""
    need_dtype(backend, dtype)
    f = require(impl, fn)
    x, exact, axis = _expected(case, row, fn)
    xd = prepare(x, dtype)
    assert np.array_equal(xd, x), f"golden input of {case} is not exact in {dtype}"
    shape = (1, x.size)
    if case == "long-column":  # the same slice along a strided axis 0
        shape, axis = (x.size, 1), 0
        exact = ref.Ref(exact.hi.reshape(-1, 1), exact.lo.reshape(-1, 1))
    else:
        exact = ref.Ref(exact.hi.reshape(1, -1), exact.lo.reshape(1, -1))
    out_shape = (1,) if fn == "logsumexp" else shape
    if fn == "logsumexp":
        exact = ref.Ref(exact.hi.reshape(1), exact.lo.reshape(1))
    context = f"{fn}(golden {case}[{row}], {dtype}{shape}, axis={axis})"
    out = call(
        backend,
        f,
        (xd.reshape(shape),),
        (dtype,),
        out_dtype=dtype,
        out_shape=out_shape,
        context=context,
        axis=axis,
    )
    bound = forward_bound(fn, xd.reshape(shape), axis=axis)
    ref.check(out, exact, bound, dtype, relative=fn == "softmax", context=context)


@pytest.mark.parametrize("fn", FORWARD)
def test_golden_matches_live_reference(fn: str) -> None:
    """The stored values and ``_reference.py`` (computed independently) agree to 1e-30."""
    live = {"softmax": ref.softmax, "log_softmax": ref.log_softmax, "logsumexp": ref.logsumexp}[fn]
    for name, case in _golden()["cases"].items():
        for r, data in enumerate(case["rows"]):
            x = np.array([data["x"]], dtype=np.float64)
            got = live(x, axis=-1)
            want = _ref([data["logsumexp"]] if fn == "logsumexp" else data[fn])
            hi, lo = got.hi.ravel(), got.lo.ravel()
            special = ~np.isfinite(want.hi)
            assert np.array_equal(hi[special], want.hi[special]), f"{fn} {name}[{r}]: specials"
            finite = np.isfinite(want.hi)
            gap = np.abs((hi[finite] - want.hi[finite]) + (lo[finite] - want.lo[finite]))
            scale = np.maximum(np.abs(want.hi[finite]), 1e-300)
            assert (gap <= 1e-30 * scale).all(), f"{fn} {name}[{r}]: live and golden differ"
