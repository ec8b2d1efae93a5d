"""cross_entropy's contract besides values: label validation, laziness, bad input, no mutation.

``validate`` (SPEC section 2): None raises naming the first bad label on eager CPU arrays
(NumPy, array-api-strict, PyTorch CPU) and marks invalid samples NaN elsewhere without
synchronising; True always checks, and is a clear error on lazy or traced arrays; False only
marks NaN. A hard label on a masked class is invalid; ignored and all-masked samples are not.
"""

from __future__ import annotations

import re
from typing import Any

import array_api_compat
import numpy as np
import pytest

from conformance import _cross_entropy_ref as ce
from conformance._framework import convention_difference, require
from conformance._framework.backends import Backend
from conformance._framework.provided import (
    CROSS_ENTROPY_FUNCTIONS,
    cross_entropy_function,
    gives_gradient,
)
from conformance.test_api_contract import _raises, _unchanged

pytestmark = pytest.mark.api

X = np.linspace(-2.0, 3.0, 12).reshape(3, 4)


def _eager_cpu(backend: Backend) -> bool:
    return not (backend.is_lazy or backend.is_gpu or array_api_compat.is_jax_namespace(backend.xp))


def _arrays(backend: Backend, labels: list[int]) -> tuple[Any, Any]:
    logits = backend.asarray(X, backend.default_float)
    return logits, backend.asarray(np.array(labels), backend.int_dtype())


def _nan_rows(backend: Backend, out: Any) -> list[int]:
    a = backend.to_numpy(out)
    rows = np.isnan(a) if a.ndim == 1 else np.isnan(a).any(axis=1)
    if a.ndim == 2:  # a sample is NaN entirely or not at all
        np.testing.assert_array_equal(np.isnan(a).all(axis=1), rows)
    return [int(i) for i in np.flatnonzero(rows)]


def _marks_nan(backend: Backend, f: Any, logits: Any, target: Any, **options: Any) -> None:
    """Without computing anything: the loss and gradient of sample 1 only are NaN."""
    __tracebackhide__ = True
    with backend.forbid_sync():
        out = f(logits, target, reduction="none", **options)
    assert _nan_rows(backend, out) == [1]


@pytest.mark.parametrize("name", CROSS_ENTROPY_FUNCTIONS)
@pytest.mark.parametrize("bad", [7, 4, -1])
def test_validate_default(backend: Backend, impl: Any, name: str, bad: int) -> None:
    """validate=None: a ValueError naming the label on eager CPU arrays, else NaN marks."""
    f = cross_entropy_function(impl, name, "validate", "reduction")
    logits, target = _arrays(backend, [0, bad, 1])
    if _eager_cpu(backend):
        message = _raises(ValueError, ("target", str(bad)), f, logits, target, reduction="none")
        assert "(1,)" in message, f"message does not give the sample: {message!r}"
    else:
        _marks_nan(backend, f, logits, target)


@pytest.mark.parametrize("name", CROSS_ENTROPY_FUNCTIONS)
def test_label_on_masked_class_is_invalid(backend: Backend, impl: Any, name: str) -> None:
    """A label whose class ``where`` masks is invalid (raised on eager CPU, else NaN)."""
    f = cross_entropy_function(impl, name, "validate", "reduction", "where")
    logits, target = _arrays(backend, [0, 2, 1])
    mask = np.ones((3, 4), bool)
    mask[1, 2] = False
    where = backend.asarray(mask, "bool")
    if _eager_cpu(backend):
        _raises(ValueError, ("target", "2", "where"), f, logits, target, where=where)
    else:
        _marks_nan(backend, f, logits, target, where=where)
    _marks_nan(backend, f, logits, target, where=where, validate=False)


@pytest.mark.parametrize("name", CROSS_ENTROPY_FUNCTIONS)
def test_validate_false_marks_only_the_bad_samples(backend: Backend, impl: Any, name: str) -> None:
    """validate=False: NaN for the invalid sample, the others as if it were ignored."""
    f = cross_entropy_function(impl, name, "validate", "reduction", "ignore_index")
    logits, target = _arrays(backend, [0, 9, 1])
    _marks_nan(backend, f, logits, target, validate=False)
    out = backend.to_numpy(f(logits, target, reduction="none", validate=False))
    _, ignored = _arrays(backend, [0, -5, 1])
    want = backend.to_numpy(f(logits, ignored, reduction="none", ignore_index=-5))
    np.testing.assert_array_equal(out[[0, 2]], want[[0, 2]])
    for reduction in ("sum", "mean"):
        reduced = f(logits, target, reduction=reduction, validate=False)
        if not gives_gradient(name):
            assert np.isnan(backend.to_numpy(reduced)), f"{reduction} over a NaN sample: NaN"
        else:
            assert _nan_rows(backend, reduced) == [1]


@pytest.mark.parametrize("name", CROSS_ENTROPY_FUNCTIONS)
def test_validate_true(backend: Backend, impl: Any, name: str) -> None:
    """validate=True checks on every eager array; Dask refuses clearly, without computing."""
    f = cross_entropy_function(impl, name, "validate", "reduction")
    logits, target = _arrays(backend, [0, 7, 1])
    if backend.is_lazy:
        with backend.forbid_sync():
            message = _raises(ValueError, ("validate",), f, logits, target, validate=True)
        assert "validate=False" in message, message
    else:
        _raises(ValueError, ("target", "7"), f, logits, target, validate=True)
        _, good = _arrays(backend, [0, 3, 1])
        assert np.isfinite(backend.to_numpy(f(logits, good, validate=True))).all()


@pytest.mark.parametrize("name", CROSS_ENTROPY_FUNCTIONS)
def test_validate_under_jit(backend: Backend, impl: Any, name: str) -> None:
    """Under jax.jit: None and False mark NaN; True is a clear error suggesting False."""
    if not array_api_compat.is_jax_namespace(backend.xp):
        pytest.skip("jax.jit applies to JAX arrays only")
    import jax

    f = cross_entropy_function(impl, name, "validate", "reduction")
    logits, target = _arrays(backend, [0, 7, 1])
    for validate in (None, False):
        out = jax.jit(lambda a, b, v=validate: f(a, b, reduction="none", validate=v))(
            logits, target
        )
        assert _nan_rows(backend, out) == [1]
    with pytest.raises(ValueError, match=re.escape("validate=False")):
        jax.jit(lambda a, b: f(a, b, validate=True))(logits, target)


@pytest.mark.parametrize("name", CROSS_ENTROPY_FUNCTIONS)
def test_ignored_and_all_masked_labels_are_valid(backend: Backend, impl: Any, name: str) -> None:
    """ignore_index may lie outside [0, C); an all-masked sample's label is never checked."""
    f = cross_entropy_function(impl, name, "validate", "reduction", "ignore_index", "where")
    validate = None if backend.is_lazy else True
    logits, target = _arrays(backend, [0, -100, 1])
    out = f(logits, target, ignore_index=-100, validate=validate, reduction="none")
    assert np.isfinite(backend.to_numpy(out)).all()
    mask = np.ones((3, 4), bool)
    mask[2] = False
    where = backend.asarray(mask, "bool")
    logits, target = _arrays(backend, [0, 3, 99])
    out = backend.to_numpy(f(logits, target, where=where, validate=validate, reduction="none"))
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[2], 0.0)


# -- laziness -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CROSS_ENTROPY_FUNCTIONS)
def test_every_option_stays_lazy(backend: Backend, impl: Any, name: str) -> None:
    """Dask: probabilities, weight, smoothing, where and grad, all without computing."""
    if not backend.is_lazy:
        pytest.skip(f"{backend.name} is eager: there is nothing to keep lazy")
    f = cross_entropy_function(impl, name, "reduction", "weight", "label_smoothing", "where")
    dtype = backend.default_float
    logits = backend.asarray(X, dtype)
    probs = backend.asarray(np.full((3, 4), 0.25), dtype)
    weight = backend.asarray(np.array([1.0, 2.0, 0.5, 1.5]), dtype)
    where = backend.asarray(np.array([True, False, True, True]), "bool")
    options = {"weight": weight, "label_smoothing": 0.1, "where": where}
    with backend.forbid_sync():
        outs = [f(logits, probs, reduction=r, **options) for r in ("none", "sum", "mean")]
        if gives_gradient(name):
            g = backend.asarray(np.array([1.0, -2.0, 0.5]), dtype)
            outs.append(f(logits, probs, reduction="none", grad=g, **options))
    for out in outs:
        assert array_api_compat.is_lazy_array(out)
        assert np.isfinite(backend.to_numpy(out)).all()


@pytest.mark.parametrize("name", CROSS_ENTROPY_FUNCTIONS)
def test_dask_operands_chunked_differently(backend: Backend, impl: Any, name: str) -> None:
    """Dask: target, weight, where and grad chunked unlike the logits give the NumPy result."""
    if not array_api_compat.is_dask_namespace(backend.xp):
        pytest.skip("chunks are a Dask notion")
    import dask.array as da

    f = cross_entropy_function(impl, name, "reduction", "weight", "where", "label_smoothing")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 4))
    labels = np.array([0, 3, 1, 2, 2, 1])
    weight = np.array([1.0, 2.0, 0.5, 1.5])
    mask = rng.random((6, 4)) < 0.8
    mask[np.arange(6), labels] = True
    g = rng.normal(size=6)
    kwargs = {"reduction": "none", "label_smoothing": 0.2}
    options = {"weight": weight, "where": mask, **kwargs}
    if not gives_gradient(name):
        want, tol = ce.loss(x, labels, **options), 1e-13
    else:
        want, tol = ce.fd_gradient(x, labels, grad=g, **options), 1e-8
    grad_da = {"grad": da.from_array(g, chunks=4)} if gives_gradient(name) else {}
    out = f(
        da.from_array(x, chunks=((2, 2, 2), (3, 1))),
        da.from_array(labels, chunks=((3, 3),)),
        weight=da.from_array(weight, chunks=2),
        where=da.from_array(mask, chunks=((4, 2), (1, 3))),
        **grad_da,
        **kwargs,
    )
    np.testing.assert_allclose(backend.to_numpy(out), want, rtol=tol, atol=tol)


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CROSS_ENTROPY_FUNCTIONS)
def test_bad_option_types(backend: Backend, impl: Any, name: str) -> None:
    """validate, ignore_index and label_smoothing of the wrong type: TypeError naming them."""
    f = cross_entropy_function(impl, name, "validate", "ignore_index", "label_smoothing")
    logits, target = _arrays(backend, [0, 3, 1])
    for value in ("yes", 1, 0.0):
        _raises(TypeError, ("validate",), f, logits, target, validate=value)
    for value in (1.5, True, "0"):
        _raises(TypeError, ("ignore_index",), f, logits, target, ignore_index=value)
    for value in ("0.1", True, None):
        _raises(TypeError, ("label_smoothing",), f, logits, target, label_smoothing=value)


@pytest.mark.parametrize("name", CROSS_ENTROPY_FUNCTIONS)
def test_bad_arrays(backend: Backend, impl: Any, name: str) -> None:
    """Non-arrays, mixed libraries, bad dtypes and shapes: errors naming the argument."""
    f = cross_entropy_function(impl, name, "weight", "where", "axis")
    dtype = backend.default_float
    logits, target = _arrays(backend, [0, 3, 1])
    _raises(TypeError, ("logits",), f, X.tolist(), target)
    _raises(TypeError, ("target",), f, logits, [0, 3, 1])
    other = np.ones(4) if not array_api_compat.is_numpy_namespace(backend.xp) else None
    if other is not None:
        _raises(TypeError, ("weight",), f, logits, target, weight=other)
    _raises(TypeError, ("weight",), f, logits, target, weight=backend.asarray(np.ones(4), "bool"))
    _raises(
        ValueError, ("weight",), f, logits, target, weight=backend.asarray(np.ones((1, 4)), dtype)
    )
    _raises(TypeError, ("where",), f, logits, target, where=backend.asarray(np.ones(4), dtype))
    _raises(ValueError, ("axis",), f, logits, target, axis=None)
    probs = backend.asarray(np.full((3, 4), 0.25), dtype)
    _raises(
        ValueError,
        ("weight",),
        f,
        logits,
        probs,
        axis=(0, 1),
        weight=backend.asarray(np.ones(4), dtype),
    )
    cdtype = "complex128" if backend.supports("complex128") else "complex64"
    if backend.supports(cdtype):
        _raises(
            TypeError, ("target",), f, logits, backend.asarray(np.full((3, 4), 0.25 + 0j), cdtype)
        )
        _raises(TypeError, ("logits",), f, backend.asarray(X + 0j, cdtype), target)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_backward_grad_shape_per_reduction(backend: Backend, impl: Any, reduction: str) -> None:
    """grad must have the loss's shape: (N,) for 'none', () for 'sum' and 'mean'."""
    f = require(impl, "cross_entropy_backward", "grad", "reduction")
    logits, target = _arrays(backend, [0, 3, 1])
    dtype = backend.default_float
    good, bad = ((3,), ()) if reduction == "none" else ((), (3,))
    out = f(logits, target, grad=backend.asarray(np.full(good, 2.0), dtype), reduction=reduction)
    twice = backend.to_numpy(out)
    once = backend.to_numpy(f(logits, target, reduction=reduction))
    np.testing.assert_allclose(twice, 2 * once, rtol=1e-6, atol=1e-7)
    with convention_difference(impl, "own_validation_errors"):
        message = _raises(
            ValueError,
            ("grad",),
            f,
            logits,
            target,
            grad=backend.asarray(np.ones(bad), dtype),
            reduction=reduction,
        )
        assert str(bad) in message, message


def test_inputs_not_mutated_with_probabilities_and_mask(backend: Backend, impl: Any) -> None:
    """Probabilities, where, weight and grad come back untouched (torch: no in-place write)."""
    loss_fn = require(impl, "cross_entropy", "where", "weight", "reduction")
    grad_fn = require(impl, "cross_entropy_backward", "where", "weight", "reduction", "grad")
    dtype = backend.default_float
    logits = backend.asarray(X, dtype)
    probs = backend.asarray(np.array([[0.1, 0.2, 0.3, 0.4]] * 3), dtype)
    where = backend.asarray(np.array([True, True, False, True]), "bool")
    weight = backend.asarray(np.array([1.0, -2.0, 0.5, 1.5]), dtype)
    grad = backend.asarray(np.array([1.0, -2.0, 0.5]), dtype)
    with _unchanged(backend, [logits, probs, where, weight, grad], "cross_entropy(probs)"):
        opts = {"where": where, "weight": weight, "label_smoothing": 0.3}
        backend.to_numpy(loss_fn(logits, probs, reduction="mean", **opts))
        backend.to_numpy(grad_fn(logits, probs, grad=grad, reduction="none", **opts))


@pytest.mark.parametrize("name", CROSS_ENTROPY_FUNCTIONS)
def test_no_floating_point_warnings(backend: Backend, impl: Any, name: str) -> None:
    """inf, NaN, all -inf rows, masked rows, huge logits, negative weights, invalid labels:
    no floating-point warning (pytest makes warnings errors; NumPy's state is set to raise)."""
    f = cross_entropy_function(
        impl, name, "reduction", "weight", "where", "label_smoothing", "validate"
    )
    big = float(np.finfo(np.float64).max)
    x = np.array(
        [
            [np.inf, 1.0, 2.0, -np.inf],
            [-np.inf, -np.inf, -np.inf, -np.inf],
            [np.nan, 1.0, np.inf, -np.inf],
            [big, -big, 0.0, 1.0],
            [np.inf, np.inf, 0.0, 0.0],
            [0.0, 1.0, 2.0, 3.0],
        ]
    )
    dtype = backend.default_float
    with np.errstate(over="ignore"):
        logits = backend.asarray(x, dtype)
    labels = backend.asarray(np.array([1, 0, 2, 1, 0, 9]), backend.int_dtype())
    probs = backend.asarray(np.full((6, 4), 0.25), dtype)
    weight = backend.asarray(np.array([1.0, -2.0, 0.5, 1.5]), dtype)
    where = backend.asarray(np.array([True, True, False, True]), "bool")
    with np.errstate(all="raise"):
        for target in (labels, probs):
            for reduction in ("none", "sum", "mean"):
                for options in (
                    {},
                    {"weight": weight, "label_smoothing": 0.2},
                    {"where": where, "label_smoothing": 0.1},
                ):
                    out = f(logits, target, reduction=reduction, validate=False, **options)
                    backend.to_numpy(out)
            # +inf and -inf per-sample losses (a negative weight) meet in the sum: NaN, quietly
            opposite = backend.asarray(np.array([[0.0, -np.inf], [-np.inf, 0.0]]), dtype)
            pair = backend.asarray(np.array([1, 0]), backend.int_dtype())
            signs = backend.asarray(np.array([-1.0, 1.0]), dtype)
            for reduction in ("sum", "mean"):
                out = backend.to_numpy(f(opposite, pair, reduction=reduction, weight=signs))
                if not gives_gradient(name):
                    assert np.isnan(out), out


@pytest.mark.parametrize("name", CROSS_ENTROPY_FUNCTIONS)
def test_every_option_traces_under_jit(backend: Backend, impl: Any, name: str) -> None:
    """jax.jit with weight, where, smoothing, ignore_index (and grad) matches eager."""
    if not array_api_compat.is_jax_namespace(backend.xp):
        pytest.skip("jax.jit applies to JAX arrays only")
    import jax

    f = cross_entropy_function(
        impl, name, "reduction", "weight", "where", "label_smoothing", "ignore_index"
    )
    dtype = backend.default_float
    logits, target = _arrays(backend, [0, -1, 2])
    weight = backend.asarray(np.array([1.0, -2.0, 0.5, 1.5]), dtype)
    where = backend.asarray(np.array([True, False, True, True]), "bool")
    extra = {}
    if gives_gradient(name):
        extra = {"grad": backend.asarray(np.array([1.0, 2.0, -0.5]), dtype)}
    arrays = {"weight": weight, "where": where, **extra}  # traced; the rest static

    def call(a: Any, b: Any, traced: dict[str, Any]) -> Any:
        return f(a, b, reduction="none", label_smoothing=0.1, ignore_index=-1, **traced)

    eager = backend.to_numpy(call(logits, target, arrays))
    traced = backend.to_numpy(jax.jit(call)(logits, target, arrays))
    np.testing.assert_allclose(traced, eager, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["none", "sum"])
@pytest.mark.parametrize("kind", ["labels", "probabilities"])
def test_half_precision_loss_overflows_to_inf_quietly(
    backend: Backend, impl: Any, kind: str, reduction: str
) -> None:
    """float16 losses beyond 65504 round to +inf (SPEC section 2), with no warning."""
    f = require(impl, "cross_entropy", "reduction")
    backend.require_dtype("float16")
    dtype = "float16"
    logits = backend.asarray(np.array([[60000.0, -60000.0]] * 3), dtype)
    if kind == "labels":
        target = backend.asarray(np.array([1, 1, 1]), backend.int_dtype())
    else:
        target = backend.asarray(np.array([[0.0, 1.0]] * 3), dtype)
    with np.errstate(all="raise"):
        out = backend.to_numpy(f(logits, target, reduction=reduction))
    assert out.dtype == np.float16, out.dtype
    assert np.all(np.isposinf(out)), out


@pytest.mark.parametrize("name", CROSS_ENTROPY_FUNCTIONS)
def test_unsigned_labels_above_the_signed_range_stay_invalid(
    backend: Backend, impl: Any, name: str
) -> None:
    """A uint64 label of 2**64 - 100 never wraps into ignore_index=-100 (SPEC: no wrap-around)."""
    f = cross_entropy_function(impl, name, "reduction", "ignore_index")
    backend.require_dtype("uint64")
    logits = backend.asarray(X, backend.default_float)
    big = 2**64 - 100
    target = backend.asarray(np.array([0, big, 1], dtype=np.uint64), "uint64")
    if _eager_cpu(backend):
        _raises(
            ValueError, ("target", str(big)), f, logits, target, reduction="none", ignore_index=-100
        )
    else:
        _marks_nan(backend, f, logits, target, ignore_index=-100)
