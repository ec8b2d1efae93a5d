"""SoftmaxLayer, LogSoftmaxLayer and SoftmaxCrossEntropyLayer (SPEC section 1).

Options go to ``__init__``; ``forward`` caches what ``backward`` needs; ``backward`` is the
true VJP (the fused gradient for the cross-entropy layer), may be called more than once,
and before any ``forward`` raises a RuntimeError saying forward must come first. Checked
against float64 NumPy formulas and central finite differences written here, and against
the cross-entropy references of ``conformance/_cross_entropy_ref.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conformance import _cross_entropy_ref as ce
from conformance import _reference as ref
from conformance._framework import assert_within_bound, require
from conformance._framework.backends import Backend
from conformance.test_api_contract import _unchanged
from conformance.test_cross_entropy import _case, _loss_shape

pytestmark = pytest.mark.derivatives

LAYERS = ("SoftmaxLayer", "LogSoftmaxLayer", "SoftmaxCrossEntropyLayer")
SHAPE = (4, 5)


def _softmax(
    x: np.ndarray, *, axis: int = -1, where: Any = None, temperature: Any = None
) -> np.ndarray:
    """Float64 softmax (masked entries 0) written from the formula."""
    z = x / (1.0 if temperature is None else temperature)
    live = np.ones(x.shape, bool) if where is None else np.broadcast_to(where, x.shape)
    z = np.where(live, z, -np.inf)
    e = np.where(live, np.exp(z - z.max(axis=axis, keepdims=True)), 0.0)
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, **options: Any) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(_softmax(x, **options))


def _fd_vjp(fn: Any, x: np.ndarray, g: np.ndarray, live: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """``d/dx sum(g * fn(x))`` over the unmasked outputs, by central differences."""
    out = np.zeros(x.shape)
    for idx in np.ndindex(*x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += h
        minus[idx] -= h
        with np.errstate(invalid="ignore"):  # -inf - -inf at masked entries, dropped
            diff = np.where(live, fn(plus) - fn(minus), 0.0)
        out[idx] = np.sum(g * diff) / (2 * h)
    return out


LAYER_CASES: dict[str, dict[str, Any]] = {
    "plain": {},
    "axis0": {"axis": 0},
    "temperature": {"temperature": 0.5},
    "where": {"where": np.array([True, False, True, True, True])},
}


def _dtype(backend: Backend) -> str:
    return "float64" if backend.supports("float64") else "float32"


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
@pytest.mark.parametrize("name", ["SoftmaxLayer", "LogSoftmaxLayer"])
def test_layer_forward_and_backward(backend: Backend, impl: Any, name: str, case: str) -> None:
    """forward is the formula; backward(g), twice, is the finite-difference VJP."""
    options = LAYER_CASES[case]
    layer_cls = require(impl, name, *options)
    dtype = _dtype(backend)
    rng = np.random.default_rng(len(case))
    x = ref.round_to(rng.normal(0.0, 2.0, SHAPE), dtype)
    g = ref.round_to(rng.normal(0.0, 1.0, SHAPE), dtype)
    fn = _softmax if name == "SoftmaxLayer" else _log_softmax
    layer = layer_cls(**ce.send(backend, options, dtype))
    y = backend.to_numpy(layer.forward(backend.asarray(x, dtype)))
    want = fn(x, **options)
    eps = ref.finfo(dtype)[0]
    live = np.isfinite(want)
    np.testing.assert_array_equal(np.isfinite(y), live)
    np.testing.assert_allclose(y[live], want[live], rtol=64 * eps, atol=64 * eps)
    fd = _fd_vjp(lambda z: fn(z, **options), x, g, live)
    for call in ("first", "second"):
        out = backend.to_numpy(layer.backward(backend.asarray(g, dtype)))
        err = float(np.max(np.abs(out - fd))) / (1 + float(np.max(np.abs(fd))))
        tol = max(1e-7, 64 * eps)
        assert_within_bound(err / eps, tol / eps, f"{name}[{case}].backward ({call} call)")
    if "where" in options:
        np.testing.assert_array_equal(out[:, ~options["where"]], 0.0)


CE_CASES = (
    "hard",
    "soft",
    "weight-negative",
    "smoothing",
    "ignore-index",
    "where",
    "everything",
    "axis-middle",
)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("case", CE_CASES)
def test_cross_entropy_layer(backend: Backend, impl: Any, case: str, reduction: str) -> None:
    """forward is the reference loss; backward() and backward(grad) the finite differences."""
    x, target, options = _case(case)
    x[np.isinf(x)] = -30.0
    layer_cls = require(impl, "SoftmaxCrossEntropyLayer", "reduction", *options)
    dtype = _dtype(backend)
    x = ref.round_to(x, dtype)
    eps = ref.finfo(dtype)[0]
    layer = layer_cls(reduction=reduction, **ce.send(backend, options, dtype))
    target_dtype = backend.int_dtype() if target.dtype.kind in "iu" else dtype
    loss = layer.forward(backend.asarray(x, dtype), backend.asarray(target, target_dtype))
    want = np.asarray(ce.loss(x, target, reduction=reduction, **options))
    np.testing.assert_allclose(backend.to_numpy(loss), want, rtol=64 * eps, atol=64 * eps)
    shape = _loss_shape(x, options, reduction)
    g = ref.round_to(np.random.default_rng(1).normal(0.0, 1.0, shape), dtype)
    for grad in (None, g, None):  # repeated calls, with and without grad
        sent = None if grad is None else backend.asarray(grad, dtype)
        out = backend.to_numpy(layer.backward(sent))
        fd = ce.fd_gradient(x, target, reduction=reduction, grad=grad, **options)
        err = float(np.max(np.abs(out - fd))) / (1 + float(np.max(np.abs(fd))))
        tol = max(1e-7, 64 * eps)
        assert_within_bound(err / eps, tol / eps, f"SoftmaxCrossEntropyLayer[{case}, {reduction}]")


@pytest.mark.parametrize("name", LAYERS)
def test_backward_follows_the_latest_forward(backend: Backend, impl: Any, name: str) -> None:
    """A second forward replaces the cache: backward differentiates at the new input."""
    layer_cls = require(impl, name)
    dtype = _dtype(backend)
    rng = np.random.default_rng(9)
    x1, x2 = rng.normal(size=SHAPE), rng.normal(size=SHAPE)
    layer = layer_cls()
    if name == "SoftmaxCrossEntropyLayer":
        labels = backend.asarray(np.array([0, 4, 2, 1]), backend.int_dtype())
        layer.forward(backend.asarray(x1, dtype), labels)
        layer.forward(backend.asarray(x2, dtype), labels)
        out = backend.to_numpy(layer.backward())
        fd = ce.fd_gradient(ref.round_to(x2, dtype), np.array([0, 4, 2, 1]))
    else:
        fn = _softmax if name == "SoftmaxLayer" else _log_softmax
        g = rng.normal(size=SHAPE)
        layer.forward(backend.asarray(x1, dtype))
        layer.forward(backend.asarray(x2, dtype))
        out = backend.to_numpy(layer.backward(backend.asarray(g, dtype)))
        fd = _fd_vjp(fn, ref.round_to(x2, dtype), ref.round_to(g, dtype), np.ones(SHAPE, bool))
    np.testing.assert_allclose(out, fd, rtol=0, atol=max(1e-7, 64 * ref.finfo(dtype)[0]))


@pytest.mark.parametrize("name", LAYERS)
def test_backward_before_forward_with_options(backend: Backend, impl: Any, name: str) -> None:
    """A layer built with options still refuses backward before forward, saying why."""
    layer_cls = require(impl, name, "axis")
    layer = layer_cls(axis=0)
    args = (
        ()
        if name == "SoftmaxCrossEntropyLayer"
        else (backend.asarray(np.ones(SHAPE), _dtype(backend)),)
    )
    with pytest.raises(RuntimeError, match="forward must be called first"):
        layer.backward(*args)


def test_cross_entropy_layer_checks_options_at_construction(impl: Any) -> None:
    """Bad scalar options are refused by __init__, naming the option."""
    layer_cls = require(impl, "SoftmaxCrossEntropyLayer", "reduction", "label_smoothing")
    with pytest.raises(ValueError, match="reduction"):
        layer_cls(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        layer_cls(label_smoothing=1.5)
    with pytest.raises(TypeError, match="validate"):
        layer_cls(validate="always")


@pytest.mark.parametrize("name", ["SoftmaxLayer", "LogSoftmaxLayer"])
def test_in_place_change_of_output_changes_gradient(backend: Backend, impl: Any, name: str) -> None:
    """As documented: backward uses the very array forward returned (as in PyTorch)."""
    layer_cls = require(impl, name)
    assert "in place" in " ".join((layer_cls.__doc__ or "").split()), "docstring must say so"
    dtype = _dtype(backend)
    x = np.random.default_rng(2).normal(size=SHAPE)
    g = np.cos(np.arange(np.prod(SHAPE))).reshape(SHAPE)
    layer = layer_cls()
    y = layer.forward(backend.asarray(x, dtype))
    try:
        y[0, 0] = 0.0 if name == "SoftmaxLayer" else -50.0
    except (TypeError, ValueError, NotImplementedError) as exc:
        pytest.skip(f"{backend.name} arrays cannot be written in place ({type(exc).__name__})")
    changed = backend.to_numpy(y).astype(np.float64)
    out = backend.to_numpy(layer.backward(backend.asarray(g, dtype)))
    # the VJP formulas of SPEC section 1, evaluated at the modified output
    if name == "SoftmaxLayer":
        want = changed * (g - np.sum(g * changed, axis=-1, keepdims=True))
    else:
        want = g - np.exp(changed) * np.sum(g, axis=-1, keepdims=True)
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)


def test_cross_entropy_layer_docstring_mentions_in_place(impl: Any) -> None:
    """The cross-entropy layer keeps logits and target: its docstring says so."""
    layer_cls = require(impl, "SoftmaxCrossEntropyLayer")
    assert "in place" in " ".join((layer_cls.__doc__ or "").split())


@pytest.mark.parametrize("name", LAYERS)
def test_layers_do_not_mutate_inputs(backend: Backend, impl: Any, name: str) -> None:
    """forward and backward leave the input, target and gradient arrays alone."""
    layer_cls = require(impl, name)
    dtype = _dtype(backend)
    x = backend.asarray(np.random.default_rng(4).normal(size=SHAPE), dtype)
    g = backend.asarray(np.ones(SHAPE), dtype)
    layer = layer_cls()
    if name == "SoftmaxCrossEntropyLayer":
        labels = backend.asarray(np.array([0, 4, 2, 1]), backend.int_dtype())
        with _unchanged(backend, [x, labels], name):
            layer.forward(x, labels)
            backend.to_numpy(layer.backward())
    else:
        with _unchanged(backend, [x, g], name):
            layer.forward(x)
            backend.to_numpy(layer.backward(g))
