"""The source document's example, on every backend, and its two flaws as tests.

The document (a Q&A page: three NumPy snippets and a unittest) trains a classifier with a
softmax layer. Its expected values are kept here, checked both against its 8-digit figures
and against mpmath at 50 digits; its two mistakes (a backward that keeps only the
Jacobian's diagonal, and a test that calls backward before forward) become tests of what
the right behaviour is.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np
import pytest

from conformance._framework import (
    assert_array_like,
    assert_within_bound,
    convention_difference,
    require,
)
from conformance._framework.backends import Backend
from conformance._framework.reference import mp_log_softmax, mp_softmax, mp_softmax_vjp_fd

pytestmark = pytest.mark.document

X = [[1, 2, 3], [4, 5, 6]]
ONE_HOT = [[0, 1, 0], [1, 0, 0]]
# The document's printed figures (8 decimals, so within 5e-9 of the truth).
DOC_SOFTMAX = [[0.09003057, 0.24472847, 0.66524096], [0.09003057, 0.24472847, 0.66524096]]
DOC_CE_GRAD = [[0.09003057, -0.75527153, 0.66524096], [-0.90996943, 0.24472847, 0.66524096]]
FIGURE_TOL = 5e-9
# An upstream gradient with distinct entries of both signs, so a wrong VJP cannot hide.
G = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
N_LOG = 2 * math.ceil(math.log2(3))  # the 2*ceil(log2 n) term of SPEC section 3, n = 3

# float16/bfloat16 results: one unit in the last place on top of the float32 bound.
_HALF = ("float16", "bfloat16")


def _input_dtypes() -> list[str]:
    return ["int", "float16", "bfloat16", "float32", "float64"]


def _make_x(backend: Backend, kind: str) -> tuple[Any, str]:
    """The document's x in dtype ``kind`` and the dtype the result must have."""
    if kind == "int":
        return backend.asarray(np.array(X), backend.int_dtype()), backend.default_float
    backend.require_dtype(kind)
    return backend.asarray(np.array(X, dtype=np.float64), kind), kind


def _eps(dtype: str) -> float:
    return {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}[
        dtype
    ]


def _relative_error_vs_bound(
    out: np.ndarray, ref: np.ndarray, bound_eps32: np.ndarray, dtype: str, context: str
) -> None:
    """Check relative error per entry against its SPEC bound (in eps of ``dtype``)."""
    eps = _eps(dtype)
    bound = bound_eps32 if dtype not in _HALF else 1.0 + bound_eps32 * _eps("float32") / eps
    err = np.abs(out.astype(np.float64) - ref) / np.abs(ref) / eps
    k = int(np.argmax(err / bound))
    assert_within_bound(float(err.flat[k]), float(bound.flat[k]), context)


def _integer_input(impl: Any, integer: bool = True) -> contextlib.AbstractContextManager[None]:
    """The document's x is integer: a peer that refuses integers follows its convention."""
    if not integer:
        return contextlib.nullcontext()
    return convention_difference(impl, "no_integer_promotion")


@pytest.mark.parametrize("kind", _input_dtypes())
def test_softmax_figures(backend: Backend, impl: Any, kind: str) -> None:
    """softmax(x, axis=1) reproduces the document's figures and mpmath."""
    softmax = require(impl, "softmax")
    x, want_dtype = _make_x(backend, kind)
    with _integer_input(impl, kind == "int"):
        out = softmax(x, axis=1)
    context = f"softmax(x: {kind}, axis=1)"
    assert_array_like(
        out, xp=backend.xp, dtype=want_dtype, shape=(2, 3), device=backend.device, context=context
    )
    got = backend.to_numpy(out)
    xs = backend.to_numpy(x).astype(np.float64)
    ref = mp_softmax(xs, axis=1)
    bound = np.abs(xs - xs.max(axis=1, keepdims=True)) + 8 + N_LOG
    _relative_error_vs_bound(got, ref, bound, want_dtype, context)
    if want_dtype == "float64":
        np.testing.assert_allclose(got, DOC_SOFTMAX, rtol=0, atol=FIGURE_TOL, err_msg=context)


def test_log_softmax_matches_log_of_figures(backend: Backend, impl: Any) -> None:
    """log_softmax(x, axis=1) on the document's integer x is log of its figures."""
    log_softmax = require(impl, "log_softmax")
    x, want_dtype = _make_x(backend, "int")
    with _integer_input(impl):
        out = log_softmax(x, axis=1)
    context = "log_softmax(x: int, axis=1)"
    assert_array_like(
        out, xp=backend.xp, dtype=want_dtype, shape=(2, 3), device=backend.device, context=context
    )
    xs = backend.to_numpy(x).astype(np.float64)
    ref = mp_log_softmax(xs, axis=1)
    err = np.abs(backend.to_numpy(out) - ref) / _eps(want_dtype)
    bound = np.abs(xs - xs.max(axis=1, keepdims=True)) + math.log(3) + 8 + N_LOG
    k = int(np.argmax(err / bound))
    assert_within_bound(float(err.flat[k]), float(bound.flat[k]), context)


def _ce_reference(xs: np.ndarray) -> tuple[np.ndarray, float]:
    """Gradient p - y and summed loss of the document's one-hot example, from mpmath."""
    p = mp_softmax(xs, axis=1)
    logp = mp_log_softmax(xs, axis=1)
    onehot = np.array(ONE_HOT, dtype=np.float64)
    return p - onehot, float(-(onehot * logp).sum())


def _check_ce_grad(backend: Backend, out: Any, xs: np.ndarray, dtype: str, context: str) -> None:
    assert_array_like(
        out, xp=backend.xp, dtype=dtype, shape=(2, 3), device=backend.device, context=context
    )
    got = backend.to_numpy(out).astype(np.float64)
    ref, _ = _ce_reference(xs)
    p = mp_softmax(xs, axis=1)
    # p carries the softmax bound; subtracting the target adds one rounding of the result.
    bound = (np.abs(xs - xs.max(axis=1, keepdims=True)) + 8 + N_LOG) * p + np.abs(ref)
    err = np.abs(got - ref) / _eps(dtype)
    k = int(np.argmax(err / bound))
    assert_within_bound(float(err.flat[k]), float(bound.flat[k]), context)
    if dtype == "float64":
        np.testing.assert_allclose(got, DOC_CE_GRAD, rtol=0, atol=FIGURE_TOL, err_msg=context)


def test_cross_entropy_backward_figures(backend: Backend, impl: Any) -> None:
    """cross_entropy_backward(x, y, axis=1, reduction="sum") gives the document's p - y."""
    ce_backward = require(impl, "cross_entropy_backward", "axis", "reduction")
    x, want_dtype = _make_x(backend, "int")
    y = backend.asarray(np.array(ONE_HOT), backend.int_dtype())
    with _integer_input(impl):
        out = ce_backward(x, y, axis=1, reduction="sum")
    _check_ce_grad(
        backend,
        out,
        backend.to_numpy(x).astype(np.float64),
        want_dtype,
        'cross_entropy_backward(x: int, y: int one-hot, axis=1, reduction="sum")',
    )


def test_cross_entropy_layer_figures(backend: Backend, impl: Any) -> None:
    """SoftmaxCrossEntropyLayer(axis=1, reduction="sum"): forward's loss, backward's p - y."""
    layer_cls = require(impl, "SoftmaxCrossEntropyLayer", "axis", "reduction")
    x, want_dtype = _make_x(backend, "int")
    y = backend.asarray(np.array(ONE_HOT), backend.int_dtype())
    xs = backend.to_numpy(x).astype(np.float64)
    layer = layer_cls(axis=1, reduction="sum")
    loss = layer.forward(x, y)
    context = 'SoftmaxCrossEntropyLayer(axis=1, reduction="sum").forward(x, y)'
    assert_array_like(
        loss, xp=backend.xp, dtype=want_dtype, shape=(), device=backend.device, context=context
    )
    _, ref_loss = _ce_reference(xs)
    # Two samples, each within (log n + 8 + 2*ceil(log2 n)) * eps * (|l_n| + 1).
    bound = (math.log(3) + 8 + N_LOG) * (ref_loss + 2)
    err = abs(float(backend.to_numpy(loss)) - ref_loss) / _eps(want_dtype)
    assert_within_bound(err, bound, context)
    for call in ("first", "second"):  # backward may be called more than once
        _check_ce_grad(
            backend,
            layer.backward(),
            xs,
            want_dtype,
            f"SoftmaxCrossEntropyLayer.backward() ({call} call)",
        )


def test_flaw_diagonal_only_backward(backend: Backend, impl: Any) -> None:
    """The document's y*(1-y)*g is not the VJP; softmax_backward and SoftmaxLayer are.

    The Jacobian of softmax is diag(y) - y y^T: dropping the off-diagonal part leaves out
    -y_i * sum_{j != i} g_j y_j, which finite differences of softmax do not.
    """
    softmax_backward = require(impl, "softmax_backward", "axis")
    xs = np.array(X, dtype=np.float64)
    g = np.array(G)
    fd = mp_softmax_vjp_fd(xs, g, axis=1)
    y_ref = mp_softmax(xs, axis=1)
    diagonal_only = y_ref * (1 - y_ref) * g
    assert np.max(np.abs(diagonal_only - fd)) > 0.1, "the document's formula should be off"

    dtype = backend.default_float
    y = backend.asarray(y_ref, dtype)
    out = softmax_backward(backend.asarray(g, dtype), y, axis=1)
    context = f"softmax_backward(g, y, axis=1) [{dtype}]"
    assert_array_like(
        out, xp=backend.xp, dtype=dtype, shape=(2, 3), device=backend.device, context=context
    )
    # SPEC section 3 backward bound, measured against the finite-difference VJP of the
    # rounded y's preimage; the rounding of y itself adds a few eps, inside the 16.
    yr = backend.to_numpy(y).astype(np.float64)
    bound = (16 + N_LOG) * yr * (np.abs(g) + (np.abs(g) * yr).sum(axis=1, keepdims=True))
    err = np.abs(backend.to_numpy(out) - fd) / _eps(dtype)
    k = int(np.argmax(err / bound))
    assert_within_bound(float(err.flat[k]), float(bound.flat[k]), context)


def test_flaw_softmax_layer_backward_is_true_vjp(backend: Backend, impl: Any) -> None:
    """SoftmaxLayer(axis=1): forward then backward(g) gives the finite-difference VJP."""
    layer_cls = require(impl, "SoftmaxLayer", "axis")
    dtype = backend.default_float
    layer = layer_cls(axis=1)
    x = backend.asarray(np.array(X, dtype=np.float64), dtype)
    layer.forward(x)
    out = layer.backward(backend.asarray(np.array(G), dtype))
    context = f"SoftmaxLayer(axis=1).backward(g) [{dtype}]"
    assert_array_like(
        out, xp=backend.xp, dtype=dtype, shape=(2, 3), device=backend.device, context=context
    )
    fd = mp_softmax_vjp_fd(np.array(X, dtype=np.float64), np.array(G), axis=1)
    assert float(np.max(np.abs(backend.to_numpy(out) - fd))) < 1e-5, context


@pytest.mark.parametrize(
    "layer_name", ["SoftmaxLayer", "LogSoftmaxLayer", "SoftmaxCrossEntropyLayer"]
)
def test_flaw_backward_before_forward(backend: Backend, impl: Any, layer_name: str) -> None:
    """The document's test called backward on a fresh layer: that is a RuntimeError."""
    layer_cls = require(impl, layer_name)
    layer = layer_cls()
    grad = backend.asarray(np.array(G), backend.default_float)
    args = () if layer_name == "SoftmaxCrossEntropyLayer" else (grad,)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(*args)
