"""cross_entropy and cross_entropy_backward: values and gradients (SPEC sections 1-3).

References, all independent of the implementation (``conformance/_cross_entropy_ref.py``):
a float64 NumPy loop written from SPEC section 2; mpmath at 50 digits for the SPEC section 3
loss bound; central finite differences of the float64 loss for every option and reduction;
and PyTorch's ``F.cross_entropy`` where its conventions agree with ours, with tests that
document where they do not.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np
import pytest

from conformance import _cross_entropy_ref as ce
from conformance import _reference as ref
from conformance._framework import (
    assert_array_like,
    assert_within_bound,
    convention_difference,
    require,
)
from conformance._numeric import FLOATS, need_dtype

N, C = 5, 4
RNG_SEED = 20231013
REDUCTIONS = ("none", "sum", "mean")


def _logits(shape: tuple[int, ...] = (N, C), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(RNG_SEED + seed).normal(0.0, 2.0, shape)


def _case(name: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Logits, target and options of one named case (float64 NumPy)."""
    rng = np.random.default_rng(sum(map(ord, name)))
    x = _logits(seed=len(name))
    labels = np.array([0, 3, 1, 2, 3])
    probs = rng.random((N, C))  # rows do not sum to one: the fused gradient must not assume it
    cases: dict[str, tuple[np.ndarray, dict[str, Any]]] = {
        "hard": (labels, {}),
        "soft": (probs, {}),
        "soft-normalised": (probs / probs.sum(axis=1, keepdims=True), {}),
        "int-one-hot": (np.eye(C, dtype=np.int64)[labels], {}),
        "weight": (labels, {"weight": np.array([0.5, 2.0, 1.0, 3.0])}),
        "weight-negative": (labels, {"weight": np.array([1.5, -0.5, 2.0, -1.0])}),
        "soft-weight": (probs, {"weight": np.array([0.5, 2.0, 1.0, 3.0])}),
        "smoothing": (labels, {"label_smoothing": 0.2}),
        "soft-smoothing": (probs, {"label_smoothing": 0.3}),
        "ignore-index": (np.array([0, -100, 1, -100, 3]), {"ignore_index": -100}),
        "ignore-in-range": (labels, {"ignore_index": 3}),
        "where": (
            np.array([0, 3, 1, 2, 0]),
            {
                "where": np.array(
                    [[1, 0, 1, 1], [0, 1, 1, 1], [1, 1, 1, 0], [0, 0, 1, 1], [1] * 4], bool
                )
            },
        ),
        "where-all-masked": (labels, {"where": np.array([[1, 1, 1, 1]] * 4 + [[0] * 4], bool)}),
        "where-smoothing": (
            np.array([0, 3, 1, 2, 0]),
            {
                "where": np.array(
                    [[1, 0, 1, 1], [0, 1, 1, 1], [1, 1, 1, 0], [0, 0, 1, 1], [1] * 4], bool
                ),
                "label_smoothing": 0.25,
            },
        ),
        "soft-where": (probs, {"where": np.array([True, False, True, True])}),
        "everything": (
            np.array([0, -1, 1, 2, 3]),
            {
                "weight": np.array([0.5, -2.0, 1.0, 3.0]),
                "label_smoothing": 0.1,
                "ignore_index": -1,
                "where": np.array(
                    [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 0, 1], [1, 0, 1, 1], [1] * 4], bool
                ),
            },
        ),
    }
    if name == "axis0":
        return x.T.copy(), labels, {"axis": 0}
    if name == "axis-middle":
        x3 = _logits((2, C, 3), seed=7)
        return x3, np.array([[0, 3, 1], [2, 2, 0]]), {"axis": 1}
    if name == "soft-axis0":
        return x.T.copy(), probs.T.copy(), {"axis": 0}
    target, options = cases[name]
    x[1, 2] = -np.inf if name == "hard" else x[1, 2]  # a -inf logit whose target is 0
    return x, target, options


CASES = (
    "hard",
    "soft",
    "soft-normalised",
    "int-one-hot",
    "weight",
    "weight-negative",
    "soft-weight",
    "smoothing",
    "soft-smoothing",
    "ignore-index",
    "ignore-in-range",
    "where",
    "where-all-masked",
    "where-smoothing",
    "soft-where",
    "everything",
    "axis0",
    "axis-middle",
    "soft-axis0",
)


def _keys(options: dict[str, Any]) -> list[str]:
    return [k for k in options if k not in ("grad",)]


def _loss_shape(x: np.ndarray, options: dict[str, Any], reduction: str) -> tuple[int, ...]:
    axis = options.get("axis", -1) % x.ndim
    return tuple(n for i, n in enumerate(x.shape) if i != axis) if reduction == "none" else ()


def _eps(dtype: str) -> float:
    return ref.finfo(dtype)[0]


def _dtype_for(backend: Any, dtype: str) -> str:
    """float64 where the backend has it; on JAX without x64 the check runs in float32."""
    return dtype if backend.supports(dtype) else "float32"


# -- values -----------------------------------------------------------------------------------


@pytest.mark.values
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", CASES)
def test_loss_against_float64_reference(backend: Any, impl: Any, case: str, reduction: str) -> None:
    """Every option and reduction against the float64 NumPy loop written from the SPEC."""
    x, target, options = _case(case)
    fn = require(impl, "cross_entropy", "reduction", *_keys(options))
    dtype = _dtype_for(backend, "float64")
    x = ref.round_to(x, dtype)
    out = ce.run(
        backend,
        fn,
        x,
        target,
        dtype,
        shape=_loss_shape(x, options, reduction),
        reduction=reduction,
        **options,
    )
    want = np.asarray(ce.loss(x, target, reduction=reduction, **_ref_options(options, dtype)))
    tol = 64 * _eps(dtype) * (1.0 + np.abs(want))
    with _soft_mean(impl, x, target, reduction):
        np.testing.assert_array_equal(np.isnan(out), np.isnan(want), err_msg=case)
        good = ~np.isnan(want)
        assert np.all(np.abs(out - want)[good] <= tol[good]), (case, out, want)


def _soft_mean(impl: Any, x: np.ndarray, target: np.ndarray, reduction: str) -> Any:
    """Probability targets with 'mean': PyTorch's documented divisor N differs from our D."""
    if target.ndim == x.ndim and reduction == "mean":
        return convention_difference(impl, "soft_target_mean_over_n")
    return contextlib.nullcontext()


def _ref_options(options: dict[str, Any], dtype: str) -> dict[str, Any]:
    """Options as the implementation sees them: weights rounded to the logits' dtype."""
    out = dict(options)
    if "weight" in out:
        out["weight"] = ref.round_to(np.asarray(out["weight"], np.float64), dtype)
    return out


@pytest.mark.values
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", ["hard", "soft", "weight", "smoothing", "where-smoothing"])
def test_loss_within_spec_bound(
    backend: Any, impl: Any, case: str, dtype: str, record_error: Any
) -> None:
    """Per-sample loss within ``(log n + 8 + 2*ceil(log2 n)) * eps * (|l_n| + 1)`` of mpmath.

    float16 / bfloat16: one unit in the last place of the result on top of the float32 bound.
    """
    need_dtype(backend, dtype)
    x, target, options = _case(case)
    x[np.isinf(x)] = -30.0  # mpmath reference for finite logits
    fn = require(impl, "cross_entropy", "reduction", *_keys(options))
    x = ref.round_to(x, dtype)
    base = "float32" if dtype in ref.HALF else dtype
    target_dtype = None if target.dtype.kind in "iu" else dtype  # every impl sees these values
    opts = _ref_options(options, base)
    out = ce.run(
        backend,
        fn,
        x,
        target,
        dtype,
        shape=(N,),
        reduction="none",
        target_dtype=target_dtype,
        **options,
    )
    t = target if target_dtype is None else ref.round_to(target, dtype)
    exact = ce.mp_losses(x, t, **opts)
    n = C
    bound = math.log(n) + 8 + 2 * math.ceil(math.log2(n))
    err = np.abs(out - exact) / (_eps(base) * (np.abs(exact) + 1.0))
    if dtype in ref.HALF:
        err = np.maximum(0.0, np.abs(out - exact) - ref.ulp(np.abs(exact), dtype)) / (
            _eps(base) * (np.abs(exact) + 1.0)
        )
    assert_within_bound(float(err.max()), bound, f"cross_entropy[{case}, {dtype}]")


def _blocked_case(regime: str, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Logits of (600, 40): several cache blocks, where a fast path may skip the max-shift."""
    rng = np.random.default_rng(RNG_SEED + len(regime))
    shape = (600, 40)
    top = 88.0 if dtype == "float32" else 709.0  # just below exp's overflow
    x = {
        "normal": lambda: rng.normal(0.0, 3.0, shape),
        "near-exp-overflow": lambda: rng.uniform(top - 2.0, top, shape),
        "deep-negative": lambda: rng.uniform(-100.0, -95.0, shape),  # exp underflows unshifted
        "mixed-rows": lambda: (
            rng.normal(0.0, 3.0, shape) + rng.choice([-90.0, 0.0, 80.0], (600, 1))
        ),
    }[regime]()
    labels = rng.integers(0, shape[1], shape[0])
    return ref.round_to(x, dtype), labels


def _softmax_rows(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.values
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("regime", ["normal", "near-exp-overflow", "deep-negative", "mixed-rows"])
def test_many_blocks_near_exp_limits(backend: Any, impl: Any, regime: str, dtype: str) -> None:
    """Loss and gradient of inputs spanning many blocks, at the edges of exp's range.

    References in float64 from the rounded logits: per-sample losses from the SPEC loop,
    the gradient (mean over N, hard labels) as ``(softmax(x) - onehot) / N``.
    """
    need_dtype(backend, dtype)
    x, labels = _blocked_case(regime, dtype)
    loss_fn = require(impl, "cross_entropy", "reduction")
    grad_fn = require(impl, "cross_entropy_backward", "reduction")
    eps = _eps(dtype)
    losses = ce.run(backend, loss_fn, x, labels, dtype, shape=(600,), reduction="none")
    want = np.asarray(ce.loss(x, labels, reduction="none"))
    assert np.all(np.abs(losses - want) <= 64 * eps * (1.0 + np.abs(want))), (regime, dtype)
    grad = ce.run(backend, grad_fn, x, labels, dtype, shape=x.shape, reduction="mean")
    onehot = np.eye(x.shape[1])[labels]
    want_grad = (_softmax_rows(x) - onehot) / x.shape[0]
    tiny = ref.finfo(dtype)[1]
    err = np.abs(grad - want_grad)
    assert np.all(err <= 64 * eps * (np.abs(want_grad) + onehot / x.shape[0]) + tiny), (
        regime,
        dtype,
        float(err.max()),
    )


@pytest.mark.values
def test_zero_times_log_zero(backend: Any, impl: Any) -> None:
    """A -inf logit with target 0 adds 0 (finite loss); with smoothing it adds +inf."""
    fn = require(impl, "cross_entropy", "reduction", "label_smoothing")
    dtype = backend.default_float
    x = np.array([[0.0, -np.inf, 1.0], [2.0, 0.5, -np.inf]])
    labels = np.array([0, 2])  # sample 1's label sits on its -inf logit
    plain = ce.run(backend, fn, x, labels, dtype, shape=(2,), reduction="none")
    assert np.isfinite(plain[0]), plain
    assert plain[1] == np.inf, plain
    want = ce.loss(x, labels, reduction="none")
    assert abs(plain[0] - want[0]) <= 16 * _eps(dtype) * (1 + abs(want[0])), (plain, want)
    smoothed = ce.run(
        backend, fn, x, labels, dtype, shape=(2,), reduction="none", label_smoothing=0.1
    )
    np.testing.assert_array_equal(smoothed, [np.inf, np.inf])


# -- D = 0 ------------------------------------------------------------------------------------


D_ZERO = {
    "all-ignored": (np.array([-100, -100, -100]), {"ignore_index": -100}),
    "zero-weights": (np.array([0, 1, 2]), {"weight": np.zeros(4)}),
    "weights-cancel": (np.array([0, 1, 0]), {"weight": np.array([1.0, -2.0, 0.0, 0.0])}),
    "all-masked": (np.array([0, 1, 2]), {"where": np.zeros(4, bool)}),
    "zero-probabilities": (np.zeros((3, 4)), {}),
}


@pytest.mark.values
@pytest.mark.parametrize("case", sorted(D_ZERO))
def test_zero_denominator_gives_zero(backend: Any, impl: Any, case: str) -> None:
    """D = 0 for any reason: the mean loss and its gradient are 0, not NaN."""
    target, options = D_ZERO[case]
    loss_fn = require(impl, "cross_entropy", "reduction", *options)
    grad_fn = require(impl, "cross_entropy_backward", "reduction", *options)
    x = _logits((3, 4))
    dtype = backend.default_float
    assert ce.per_sample(x, target, **options)[1].sum() == 0  # the case really has D = 0
    loss = ce.run(backend, loss_fn, x, target, dtype, shape=(), reduction="mean", **options)
    grad = ce.run(backend, grad_fn, x, target, dtype, shape=(3, 4), reduction="mean", **options)
    with convention_difference(impl, "nan_for_zero_denominator"):
        assert loss == 0.0, f"mean loss {loss} [{case}]"
        np.testing.assert_array_equal(grad, 0.0, err_msg=case)


@pytest.mark.values
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_empty_batch(backend: Any, impl: Any, reduction: str) -> None:
    """No samples: per-sample losses are empty, sum and mean are 0, the gradient is empty."""
    loss_fn = require(impl, "cross_entropy", "reduction")
    grad_fn = require(impl, "cross_entropy_backward", "reduction")
    x = np.zeros((0, 4))
    labels = np.zeros((0,), dtype=np.int64)
    dtype = backend.default_float
    shape = (0,) if reduction == "none" else ()
    loss = ce.run(backend, loss_fn, x, labels, dtype, shape=shape, reduction=reduction)
    grad = ce.run(backend, grad_fn, x, labels, dtype, shape=(0, 4), reduction=reduction)
    assert grad.size == 0
    if reduction != "none":
        with convention_difference(impl, "nan_for_zero_denominator"):
            assert loss == 0.0, loss


# -- gradients against finite differences -------------------------------------------------


def _grad_for(reduction: str, shape: tuple[int, ...], given: bool) -> np.ndarray | None:
    if not given:
        return None
    rng = np.random.default_rng(5)
    return rng.normal(0.0, 1.5, shape) if reduction == "none" else np.array(-1.75)


def fd_error(
    backend: Any, impl: Any, case: str, reduction: str, dtype: str, grad_given: bool
) -> tuple[float, float]:
    """``(max |ours - fd| / (1 + max |fd|), tolerance)`` for one case (used by the report)."""
    x, target, options = _case(case)
    x[np.isinf(x)] = -30.0  # differences need finite neighbours
    fn = require(impl, "cross_entropy_backward", "reduction", "grad", *_keys(options))
    x = ref.round_to(x, dtype)
    g = _grad_for(reduction, _loss_shape(x, options, "none"), grad_given)
    extra = {} if g is None else {"grad": ref.round_to(g, dtype)}
    out = ce.run(
        backend, fn, x, target, dtype, shape=x.shape, reduction=reduction, **extra, **options
    )
    fd = ce.fd_gradient(x, target, reduction=reduction, **extra, **_ref_options(options, dtype))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(fd), err_msg=f"NaN positions [{case}]")
    live = ~np.isnan(fd)
    scale = 1.0 + float(np.max(np.abs(fd[live]), initial=0.0))
    err = float(np.max(np.abs(out - fd)[live], initial=0.0)) / scale
    # finite differences in float64 are good to about 1e-9; the rest is the dtype's rounding
    return err, max(1e-7, 64 * _eps(dtype))


@pytest.mark.derivatives
@pytest.mark.parametrize("grad_given", [False, True], ids=["grad-none", "grad-given"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", CASES)
def test_gradient_against_finite_differences(
    backend: Any, impl: Any, case: str, reduction: str, grad_given: bool
) -> None:
    """The fused gradient is the derivative of the loss: every option, every reduction."""
    dtype = _dtype_for(backend, "float64")
    x, target, _ = _case(case)
    with _soft_mean(impl, x, target, reduction):
        err, tol = fd_error(backend, impl, case, reduction, dtype, grad_given)
        eps = _eps(dtype)
        assert_within_bound(
            err / eps, tol / eps, f"cross_entropy_backward[{case}, {reduction}, {dtype}]"
        )


WITH_GRAD_CASES = (
    "hard",
    "soft",
    "weight-negative",
    "smoothing",
    "ignore-index",
    "where-smoothing",
    "everything",
    "axis-middle",
    "soft-axis0",
)
"""Every option once, for the function that returns both results (the two one-result
functions are checked on every case above)."""


@pytest.mark.derivatives
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", WITH_GRAD_CASES)
def test_with_grad_against_references(backend: Any, impl: Any, case: str, reduction: str) -> None:
    """``cross_entropy_with_grad``: the loss against the float64 loop written from the SPEC
    and the gradient against finite differences, from one call, for every option."""
    dtype = _dtype_for(backend, "float64")
    x, target, options = _case(case)
    x[np.isinf(x)] = -30.0  # differences need finite neighbours
    fn = require(impl, "cross_entropy_with_grad", "reduction", "grad", *_keys(options))
    x = ref.round_to(x, dtype)
    g = ref.round_to(_grad_for(reduction, _loss_shape(x, options, "none"), True), dtype)
    sent = ce.send(backend, {**options, "grad": g}, dtype)
    target_dtype = backend.int_dtype() if target.dtype.kind in "iu" else dtype
    loss, grad = fn(
        backend.asarray(x, dtype), backend.asarray(target, target_dtype), reduction=reduction,
        **sent,
    )  # fmt: skip
    context = f"cross_entropy_with_grad[{case}, {reduction}, {dtype}]"
    for out, shape in ((loss, _loss_shape(x, options, reduction)), (grad, x.shape)):
        assert_array_like(out, xp=backend.xp, dtype=dtype, shape=shape, device=backend.device,
                          context=context)  # fmt: skip
    loss_np = np.asarray(backend.to_numpy(loss), np.float64)
    want = np.asarray(ce.loss(x, target, reduction=reduction, **_ref_options(options, dtype)))
    with _soft_mean(impl, x, target, reduction):
        np.testing.assert_array_equal(np.isnan(loss_np), np.isnan(want), err_msg=context)
        good = ~np.isnan(want)
        tol = 64 * _eps(dtype) * (1.0 + np.abs(want))
        assert np.all(np.abs(loss_np - want)[good] <= tol[good]), (context, loss_np, want)
        fd = ce.fd_gradient(x, target, reduction=reduction, grad=g, **_ref_options(options, dtype))
        out = np.asarray(backend.to_numpy(grad), np.float64)
        np.testing.assert_array_equal(np.isnan(out), np.isnan(fd), err_msg=context)
        live = ~np.isnan(fd)
        err = float(np.max(np.abs(out - fd)[live], initial=0.0))
        err /= 1.0 + float(np.max(np.abs(fd[live]), initial=0.0))
        eps = _eps(dtype)
        assert_within_bound(err / eps, max(1e-7, 64 * eps) / eps, context)


@pytest.mark.derivatives
@pytest.mark.parametrize("case", ["hard", "soft", "weight-negative", "everything", "axis-middle"])
def test_gradient_float32_against_finite_differences(backend: Any, impl: Any, case: str) -> None:
    """float32 gradients within 64 eps (relative to the largest entry) of float64 differences."""
    x, target, _ = _case(case)
    eps = _eps("float32")
    with _soft_mean(impl, x, target, "mean"):
        err, tol = fd_error(backend, impl, case, "mean", "float32", True)
        assert_within_bound(err / eps, tol / eps, f"cross_entropy_backward[{case}, mean, float32]")


@pytest.mark.derivatives
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("case", ["hard", "weight", "smoothing", "where"])
def test_gradient_half_precision(backend: Any, impl: Any, case: str, dtype: str) -> None:
    """float16 / bfloat16: within one unit in the last place plus the float32 allowance."""
    need_dtype(backend, dtype)
    x, target, options = _case(case)
    x[np.isinf(x)] = -30.0
    fn = require(impl, "cross_entropy_backward", "reduction", *_keys(options))
    x = ref.round_to(x, dtype)
    out = ce.run(backend, fn, x, target, dtype, shape=x.shape, reduction="sum", **options)
    fd = ce.fd_gradient(x, target, reduction="sum", **_ref_options(options, dtype))
    beyond = np.maximum(0.0, np.abs(out - fd) - ref.ulp(np.abs(fd), dtype))
    eps = _eps("float32")
    err = float(beyond.max()) / (1.0 + float(np.abs(fd).max()))
    assert_within_bound(err / eps, 64.0, f"cross_entropy_backward[{case}, sum, {dtype}]")


@pytest.mark.derivatives
def test_masked_classes_and_ignored_samples_get_zero(backend: Any, impl: Any) -> None:
    """Masked entries and ignored samples get exactly 0, whatever the logits hold there."""
    options = {"where": np.array([True, False, True, True]), "ignore_index": 2}
    fn = require(impl, "cross_entropy_backward", "reduction", *options)
    x = _logits()
    x[:, 1] = np.nan  # masked: must not leak
    labels = np.array([0, 2, 3, 2, 0])
    out = ce.run(
        backend, fn, x, labels, backend.default_float, shape=x.shape, reduction="sum", **options
    )
    np.testing.assert_array_equal(out[:, 1], 0.0)
    np.testing.assert_array_equal(out[[1, 3]], 0.0)
    assert np.isfinite(out).all(), out


@pytest.mark.derivatives
def test_shortcut_p_minus_t_is_not_the_gradient_with_weights() -> None:
    """The reference itself: ``p - t`` differs from the derivative once weights or smoothing
    enter (so the finite-difference checks above can tell the two apart)."""
    x, target, options = _case("weight")
    fd = ce.fd_gradient(x, target, reduction="sum", **options)
    p = np.exp(x - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert np.max(np.abs((p - np.eye(C)[target]) - fd)) > 0.1


# -- PyTorch, where the conventions agree -------------------------------------------------------


def _torch_reference(
    x: np.ndarray, target: np.ndarray, reduction: str, **options: Any
) -> tuple[np.ndarray, np.ndarray]:
    """F.cross_entropy and its autograd gradient, float64 on the CPU, classes on axis 1."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    leaf = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tgt = (
        torch.tensor(target)
        if target.dtype.kind in "iu"
        else torch.tensor(target, dtype=torch.float64)
    )
    weight = options.get("weight")
    loss = F.cross_entropy(
        leaf,
        tgt.long() if target.dtype.kind in "iu" else tgt,
        weight=None if weight is None else torch.tensor(weight, dtype=torch.float64),
        ignore_index=options.get("ignore_index", -100),
        reduction=reduction,
        label_smoothing=options.get("label_smoothing", 0.0),
    )
    (grad,) = torch.autograd.grad(loss, leaf, grad_outputs=torch.ones_like(loss))
    return loss.detach().numpy(), grad.numpy()


TORCH_AGREES = ("hard", "weight", "smoothing", "ignore-index", "ignore-in-range", "soft-normalised")


@pytest.mark.values
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", [*TORCH_AGREES, "weight-smoothing"])
def test_matches_torch_where_conventions_agree(
    backend: Any, impl: Any, case: str, reduction: str
) -> None:
    """Hard labels (weights, smoothing, ignore_index), any reduction; unweighted probabilities
    that sum to one (then D = N, PyTorch's divisor)."""
    if case == "weight-smoothing":
        x, target, options = _case("weight")
        options = {**options, "label_smoothing": 0.15}
    else:
        x, target, options = _case(case)
    x[np.isinf(x)] = -30.0
    loss_fn = require(impl, "cross_entropy", "reduction", *_keys(options))
    grad_fn = require(impl, "cross_entropy_backward", "reduction", *_keys(options))
    dtype = _dtype_for(backend, "float64")
    x = ref.round_to(x, dtype)
    want_loss, want_grad = _torch_reference(x, target, reduction, **_ref_options(options, dtype))
    shape = (N,) if reduction == "none" else ()
    loss = ce.run(backend, loss_fn, x, target, dtype, shape=shape, reduction=reduction, **options)
    grad = ce.run(backend, grad_fn, x, target, dtype, shape=x.shape, reduction=reduction, **options)
    tol = 64 * _eps(dtype)
    np.testing.assert_allclose(loss, want_loss, rtol=tol, atol=tol, err_msg=f"loss [{case}]")
    np.testing.assert_allclose(grad, want_grad, rtol=tol, atol=tol, err_msg=f"gradient [{case}]")


@pytest.mark.values
@pytest.mark.convention("soft_target_mean_over_n")
def test_soft_target_mean_differs_from_torch(backend: Any, impl: Any) -> None:
    """Probability targets, 'mean': we divide by D = sum of the weighted targets, PyTorch by N.

    With weights (or targets not summing to one) the two differ; ours is the hard-label
    mean whenever the targets are one-hot.
    """
    fn = require(impl, "cross_entropy", "reduction", "weight")
    x, probs, _ = _case("soft")
    weight = np.array([0.5, 2.0, 1.0, 3.0])
    dtype = _dtype_for(backend, "float64")
    x = ref.round_to(x, dtype)
    w = ref.round_to(weight, dtype)
    ours = float(ce.run(backend, fn, x, probs, dtype, shape=(), reduction="mean", weight=weight))
    losses, d = ce.per_sample(x, probs, weight=w)
    total = float(losses.astype(np.float64).sum())
    torch_mean, _ = _torch_reference(x, probs, "mean", weight=w)
    assert abs(float(torch_mean) - total / N) <= 1e-12 * (1 + abs(total)), "PyTorch divides by N"
    assert abs(ours - total / d.sum()) <= 64 * _eps(dtype) * (1 + abs(ours)), (ours, total, d.sum())
    assert abs(ours - float(torch_mean)) > 1e-3, "the two conventions should differ here"
    one_hot = np.eye(C)[np.array([0, 3, 1, 2, 3])]
    hard = ce.run(
        backend, fn, x, np.array([0, 3, 1, 2, 3]), dtype, shape=(), reduction="mean", weight=weight
    )
    soft = ce.run(backend, fn, x, one_hot, dtype, shape=(), reduction="mean", weight=weight)
    assert abs(float(hard) - float(soft)) <= 16 * _eps(dtype) * (1 + abs(float(hard)))


@pytest.mark.values
def test_all_ignored_batch_differs_from_torch(backend: Any, impl: Any) -> None:
    """Every sample ignored, 'mean': PyTorch gives NaN (0/0), we give 0 and a zero gradient."""
    fn = require(impl, "cross_entropy", "reduction", "ignore_index")
    x = _logits((3, 4))
    labels = np.array([-100, -100, -100])
    torch_loss, torch_grad = _torch_reference(x, labels, "mean", ignore_index=-100)
    assert np.isnan(torch_loss), "PyTorch's 0/0"
    np.testing.assert_array_equal(torch_grad, 0.0)  # its gradient is 0, like ours
    ours = ce.run(
        backend, fn, x, labels, backend.default_float, shape=(), reduction="mean", ignore_index=-100
    )
    with convention_difference(impl, "nan_for_zero_denominator"):
        assert ours == 0.0, ours


# -- edges of the logits, in small and in many-block inputs ------------------------------------


@pytest.mark.values
def test_infinite_and_nan_logits(backend: Any, impl: Any) -> None:
    """+inf logits give the limits of SPEC section 2's table; a NaN logit a NaN sample."""
    loss_fn = require(impl, "cross_entropy", "reduction")
    grad_fn = require(impl, "cross_entropy_backward", "reduction")
    x = np.array([[np.inf, 0.0, np.inf, 1.0], [np.nan, 0.0, 1.0, 2.0], [0.0, 1.0, 2.0, 3.0]])
    labels = np.array([0, 1, 3])
    dtype = backend.default_float
    loss = ce.run(backend, loss_fn, x, labels, dtype, shape=(3,), reduction="none")
    lse = np.log(np.sum(np.exp(x[2])))
    want = np.array([np.log(2.0), np.nan, lse - 3.0])
    grad = ce.run(backend, grad_fn, x, labels, dtype, shape=(3, 4), reduction="none")
    p2 = np.exp(x[2] - lse)
    want_grad = np.array([[-0.5, 0.0, 0.5, 0.0], [np.nan] * 4, p2 - np.eye(4)[3]])
    with convention_difference(impl, "nan_for_inf_rows"):
        np.testing.assert_array_equal(np.isnan(loss), np.isnan(want))
        np.testing.assert_allclose(loss[[0, 2]], want[[0, 2]], rtol=16 * _eps(dtype))
        np.testing.assert_array_equal(np.isnan(grad), np.isnan(want_grad))
        good = ~np.isnan(want_grad)
        np.testing.assert_allclose(grad[good], want_grad[good], rtol=0, atol=16 * _eps(dtype))


@pytest.mark.values
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_many_blocks_with_edge_rows(backend: Any, impl: Any, dtype: str) -> None:
    """A few MB of logits (fast paths work in blocks) with +inf and NaN rows among them:
    per-sample losses and gradients against float64 formulas, row by row."""
    need_dtype(backend, dtype)
    options = {"weight": np.linspace(0.5, 2.0, 1000), "label_smoothing": 0.05, "ignore_index": 7}
    loss_fn = require(impl, "cross_entropy", "reduction", *options)
    grad_fn = require(impl, "cross_entropy_backward", "reduction", "grad", *options)
    rng = np.random.default_rng(11)
    x = ref.round_to(rng.normal(0.0, 3.0, (600, 1000)), dtype)
    labels = rng.integers(0, 1000, 600)
    labels[::50] = 7
    x[123, 17] = np.inf
    x[456, 3] = np.nan
    g = ref.round_to(rng.normal(size=600), dtype)
    loss = ce.run(backend, loss_fn, x, labels, dtype, shape=(600,), reduction="none", **options)
    grad = ce.run(
        backend, grad_fn, x, labels, dtype, shape=x.shape, reduction="none", grad=g, **options
    )
    w = ref.round_to(options["weight"], dtype)
    eps = options["label_smoothing"]
    smoothed = (1 - eps) * np.eye(1000)[labels] + eps / 1000
    counted = labels != 7
    with np.errstate(invalid="ignore"):
        m = np.max(x, axis=1, keepdims=True)
        logp = x - m - np.log(np.sum(np.exp(x - m), axis=1, keepdims=True))
    logp[123] = np.where(np.arange(1000) == 17, 0.0, -np.inf)  # the +inf row's limits
    with np.errstate(invalid="ignore"):
        want = np.where(counted, -np.sum(w * smoothed * logp, axis=1), 0.0)
        p = np.exp(logp)
        wt = w * smoothed
        want_grad = np.where(counted[:, None], (p * wt.sum(1, keepdims=True) - wt) * g[:, None], 0)
    want[123] = np.inf if counted[123] else 0.0  # smoothed targets meet -inf log-probabilities
    tol = 64 * _eps(dtype)
    good = np.isfinite(want)
    np.testing.assert_allclose(loss[good], want[good], rtol=tol, atol=tol)
    with convention_difference(impl, "nan_for_inf_rows"):
        np.testing.assert_array_equal(np.isnan(loss), np.isnan(want))
        assert loss[123] == want[123]
        np.testing.assert_array_equal(np.isnan(grad), np.isnan(want_grad))
    good = ~np.isnan(want_grad) & ~np.isnan(grad)
    np.testing.assert_allclose(grad[good], want_grad[good], rtol=tol, atol=tol)


@pytest.mark.values
@pytest.mark.parametrize("axis", [(1, 2), None])
def test_probabilities_over_several_axes(backend: Any, impl: Any, axis: Any) -> None:
    """Probability targets may span a tuple of axes (or all): the classes are their entries."""
    loss_fn = require(impl, "cross_entropy", "reduction", "axis", "label_smoothing")
    grad_fn = require(impl, "cross_entropy_backward", "reduction", "axis", "label_smoothing")
    rng = np.random.default_rng(21)
    dtype = _dtype_for(backend, "float64")
    x = ref.round_to(rng.normal(size=(3, 2, 4)), dtype)
    probs = ref.round_to(rng.random((3, 2, 4)), dtype)
    rows = (3, 8) if axis is not None else (1, 24)  # the same classes, flattened
    flat_x, flat_t = x.reshape(rows), probs.reshape(rows)
    shape = (3,) if axis is not None else ()
    opts = {"label_smoothing": 0.1}
    loss = ce.run(
        backend, loss_fn, x, probs, dtype, shape=shape, axis=axis, reduction="none", **opts
    )
    want = ce.loss(flat_x, flat_t, reduction="none", **opts).reshape(shape)
    np.testing.assert_allclose(loss, want, rtol=64 * _eps(dtype), atol=64 * _eps(dtype))
    grad = ce.run(
        backend, grad_fn, x, probs, dtype, shape=x.shape, axis=axis, reduction="mean", **opts
    )
    fd = ce.fd_gradient(flat_x, flat_t, reduction="mean", **opts).reshape(x.shape)
    np.testing.assert_allclose(grad, fd, rtol=0, atol=max(1e-7, 64 * _eps(dtype)))


@pytest.mark.values
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_smoothing_with_signed_weights_over_many_classes(
    backend: Any, impl: Any, dtype: str, record_error: Any
) -> None:
    """Smoothing spreads ``eps/C`` of the target over every class; with weights of both signs
    over 239 classes the per-sample loss is a sum with cancellation, and it must still stay
    within the SPEC bound of mpmath (the fast paths rewrite it as ``W lse - sum_c w_c
    (x_c - m)``; measured at most 3 eps on every path)."""
    need_dtype(backend, dtype)
    fn = require(impl, "cross_entropy", "reduction", "weight", "label_smoothing")
    rng = np.random.default_rng(104)
    n, classes = 8, 239
    x = ref.round_to(100.0 * rng.standard_normal((n, classes)), dtype)
    labels = rng.integers(0, classes, n)
    options = {"weight": ref.round_to(rng.standard_normal(classes), dtype), "label_smoothing": 0.1}
    out = ce.run(backend, fn, x, labels, dtype, shape=(n,), reduction="none", **options)
    exact = ce.mp_losses(x, labels, **options)
    bound = math.log(classes) + 8 + 2 * math.ceil(math.log2(classes))
    err = np.abs(out - exact) / (_eps(dtype) * (np.abs(exact) + 1.0))
    record_error(float(err.max()), bound)
    assert err.max() <= bound, (err.max(), bound, out, exact)
