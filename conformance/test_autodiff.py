"""Derivatives through the frameworks' own autodiff (SPEC section 1, Autodiff).

On PyTorch (``backward()``, ``torch.func``, ``torch.compile``) and JAX (``grad``, ``jvp``,
``vmap``, ``jit``), the gradients and tangents of the public functions must be the true
derivatives, against float64 references written here (softmax Jacobian formulas evaluated
in NumPy, and central differences of the float64 cross-entropy reference), NaN-free on the
edges SPEC section 2 names. Each check runs on every path of the slot: on PyTorch the
package's autograd nodes (``torch``) and the generic chain (``generic``), on JAX the
generic path with its ``custom_jvp`` rules.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import portable_softmax as ps
from conformance import _cross_entropy_ref as ce_ref
from conformance._framework.processes import run_python
from conformance._reference import round_to as ref_round

_RNG = np.random.default_rng(20261206)
_X = _RNG.normal(size=(3, 7)) * 2
_W = _RNG.normal(size=(3, 7))
_LABELS = np.array([2, 0, 6])
_CLASS_WEIGHT = np.linspace(0.5, 2.0, 7)
_TOL = {"float32": 2e-5, "float64": 1e-9}


def _framework(backend: Any) -> str:
    if backend.name == "torch":
        return "torch"
    if backend.name.startswith("jax"):
        return "jax"
    pytest.skip(f"{backend.name} has no autodiff of its own")


def _grad(backend: Any, f: Callable[[Any], Any], x: Any) -> np.ndarray:
    """The gradient of the scalar ``f`` at ``x`` by the framework's reverse mode."""
    if _framework(backend) == "torch":
        import torch

        leaf = x.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(f(leaf), leaf)
        return backend.to_numpy(g)
    import jax

    return backend.to_numpy(jax.grad(f)(x))


def _jvp(backend: Any, f: Callable[[Any], Any], x: Any, t: Any) -> np.ndarray:
    if _framework(backend) == "torch":
        import torch

        return backend.to_numpy(torch.func.jvp(f, (x,), (t,))[1])
    import jax

    return backend.to_numpy(jax.jvp(f, (x,), (t,))[1])


def _logsumexp64(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return np.squeeze(m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True)), axis)  # type: ignore[no-any-return]


def _softmax64(x: np.ndarray, axis: int, t: float = 1.0) -> np.ndarray:
    z = x / t
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)  # type: ignore[no-any-return]


# kind: (public call on a framework array, the weights w of its output, the float64 VJP of
# w at x)
_T = 1.7
_ROW_W = _W[:, 0]
_VJPS: dict[str, tuple[Callable[[Any], Any], np.ndarray, Callable[[np.ndarray], np.ndarray]]] = {
    "softmax": (
        lambda a: ps.softmax(a),
        _W,
        lambda x: (y := _softmax64(x, -1)) * (_W - (_W * y).sum(-1, keepdims=True)),
    ),
    "softmax-axis0-T": (
        lambda a: ps.softmax(a, axis=0, temperature=_T),
        _W,
        lambda x: (y := _softmax64(x, 0, _T)) * (_W - (_W * y).sum(0, keepdims=True)) / _T,
    ),
    "log_softmax": (
        lambda a: ps.log_softmax(a),
        _W,
        lambda x: _W - _softmax64(x, -1) * _W.sum(-1, keepdims=True),
    ),
    "logsumexp": (
        lambda a: ps.logsumexp(a, axis=1),
        _ROW_W,
        lambda x: _softmax64(x, 1) * _ROW_W[:, None],
    ),
}


def _scalar(backend: Any, out: Any, w: np.ndarray, dtype: str) -> Any:
    return backend.xp.sum(out * backend.asarray(w, dtype))


def _widest(backend: Any) -> str:
    """float64 where the slot has it (the tightest check), else float32 (JAX without x64):
    one dtype a slot, since JAX compiles anew per dtype."""
    return "float64" if backend.supports("float64") else "float32"


@pytest.mark.parametrize("kind", list(_VJPS))
def test_reverse_mode_is_the_vjp(backend: Any, kind: str) -> None:
    _framework(backend)
    dtype = _widest(backend)
    function, w, vjp = _VJPS[kind]
    x = backend.asarray(_X, dtype)
    got = _grad(backend, lambda a: _scalar(backend, function(a), w, dtype), x)
    x64 = backend.to_numpy(x).astype(np.float64)
    np.testing.assert_allclose(got, vjp(x64), rtol=_TOL[dtype], atol=_TOL[dtype])


_CE_CASES: dict[str, dict[str, Any]] = {
    "mean": {},
    "none": {"reduction": "none"},
    "weight-smoothing-ignore": {"weight": _CLASS_WEIGHT, "label_smoothing": 0.1, "ignore_index": 0},
}


@pytest.mark.parametrize("case", list(_CE_CASES))
def test_cross_entropy_reverse_mode_is_its_gradient(backend: Any, case: str) -> None:
    _framework(backend)
    dtype = _widest(backend)
    options = dict(_CE_CASES[case])
    weight = options.pop("weight", None)
    labels = backend.asarray(_LABELS, backend.int_dtype())
    sent = {**options, "weight": None if weight is None else backend.asarray(weight, dtype)}
    g = _W[:, 0] if options.get("reduction") == "none" else None

    def loss(a: Any) -> Any:
        out = ps.cross_entropy(a, labels, **sent)
        return out if g is None else _scalar(backend, out, g, dtype)

    x = backend.asarray(_X, dtype)
    got = _grad(backend, loss, x)
    x64 = backend.to_numpy(x).astype(np.float64)
    want = ce_ref.fd_gradient(x64, _LABELS, grad=g, weight=weight, **options)
    np.testing.assert_allclose(got, want, rtol=max(_TOL[dtype], 1e-7), atol=1e-7)


@pytest.mark.parametrize("kind", ["softmax", "log_softmax", "logsumexp", "cross_entropy"])
def test_forward_mode_is_the_jvp(backend: Any, kind: str) -> None:
    """``jvp`` gives the true directional derivative (never zeros)."""
    _framework(backend)
    dtype = _widest(backend)
    x = backend.asarray(_X, dtype)
    t = backend.asarray(_W, dtype)
    labels = backend.asarray(_LABELS, backend.int_dtype())
    functions: dict[str, Callable[[Any], Any]] = {
        "softmax": lambda a: ps.softmax(a),
        "log_softmax": lambda a: ps.log_softmax(a),
        "logsumexp": lambda a: ps.logsumexp(a),
        "cross_entropy": lambda a: ps.cross_entropy(a, labels, reduction="none"),
    }
    got = _jvp(backend, functions[kind], x, t)
    x64 = backend.to_numpy(x).astype(np.float64)
    p = _softmax64(x64, -1)
    want = {
        "softmax": p * (_W - (p * _W).sum(-1, keepdims=True)),
        "log_softmax": _W - (p * _W).sum(-1, keepdims=True),
        "logsumexp": (p * _W).sum(-1),
        "cross_entropy": ((p - np.eye(7)[_LABELS]) * _W).sum(-1),
    }[kind]
    assert np.abs(got).max() > 0.01
    np.testing.assert_allclose(got, want, rtol=_TOL[dtype], atol=_TOL[dtype])


def test_vmap_of_grad_gives_per_sample_gradients(backend: Any, path: str) -> None:
    """Per-sample gradients of cross-entropy with the default ``validate``: an invalid label
    under the transform gives no error; its sample's loss is NaN, and so is its gradient
    where the package's rules differentiate (PyTorch differentiating the generic chain
    gives it 0: that sample's terms do not depend on the logits)."""
    framework = _framework(backend)
    dtype = _widest(backend)
    x = backend.asarray(_X[:, None, :], dtype)
    labels = np.array([[2], [0], [9]])  # 9: not a class
    y = backend.asarray(labels, backend.int_dtype())

    def loss(a: Any, label: Any) -> Any:
        return ps.cross_entropy(a, label)

    if framework == "torch":
        import torch

        got = backend.to_numpy(torch.func.vmap(torch.func.grad(loss))(x, y))
    else:
        import jax

        got = backend.to_numpy(jax.vmap(jax.grad(loss))(x, y))
    x64 = backend.to_numpy(x).astype(np.float64)[:, 0]
    want = _softmax64(x64[:2], -1) - np.eye(7)[[2, 0]]
    np.testing.assert_allclose(got[:2, 0], want, rtol=_TOL[dtype], atol=_TOL[dtype])
    if framework == "jax" or path == "torch":
        assert np.isnan(got[2]).all()


def test_gradients_are_nan_free_on_the_edges(backend: Any) -> None:
    """A row with no finite entry and masked entries: finite gradients, 0 where masked."""
    _framework(backend)
    x64 = _X.copy()
    x64[0] = -np.inf
    mask = _W > -1.0
    x = backend.asarray(x64, "float32")
    where = backend.asarray(mask)
    labels = backend.asarray(_LABELS, backend.int_dtype())
    checks = {
        "softmax": lambda a: _scalar(backend, ps.softmax(a), _W, "float32"),
        "log_softmax masked": lambda a: _scalar(
            backend, ps.log_softmax(a, where=where) * backend.asarray(mask, "float32"), _W,
            "float32",
        ),
        "softmax masked": lambda a: _scalar(backend, ps.softmax(a, where=where), _W, "float32"),
        "cross_entropy": lambda a: ps.cross_entropy(a[1:], labels[1:]),
    }  # fmt: skip
    for name, f in checks.items():
        got = _grad(backend, f, x)
        assert np.isfinite(got).all(), name
        if "masked" in name:
            assert (got[~mask] == 0).all(), name


def test_inputs_besides_x_keep_their_gradient(backend: Any) -> None:
    """A class weight and an array temperature are differentiated too (by the chain)."""
    _framework(backend)
    dtype = _widest(backend)
    x = backend.asarray(_X, dtype)
    labels = backend.asarray(_LABELS, backend.int_dtype())
    weight = backend.asarray(_CLASS_WEIGHT, dtype)
    got = _grad(backend, lambda w: ps.cross_entropy(x, labels, weight=w), weight)
    h = 1e-6
    want = np.array([
        (ce_ref.loss(_X, _LABELS, weight=_CLASS_WEIGHT + h * e)
         - ce_ref.loss(_X, _LABELS, weight=_CLASS_WEIGHT - h * e)) / (2 * h)
        for e in np.eye(7)
    ])  # fmt: skip
    tol = 1e-6 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)

    t = np.array([[0.5], [1.0], [2.0]])

    def at(temperature: Any) -> Any:
        return _scalar(backend, ps.softmax(x, temperature=temperature), _W, dtype)

    got = _grad(backend, at, backend.asarray(t, dtype))

    def f64(tt: np.ndarray) -> float:
        return float((_softmax64(_X / tt, -1) * _W).sum())

    want = np.array(
        [(f64(t + h * e[:, None]) - f64(t - h * e[:, None])) / (2 * h) for e in np.eye(3)]
    )
    np.testing.assert_allclose(got[:, 0], want, rtol=tol, atol=tol)


def _torch_only(backend: Any) -> Any:
    if backend.name != "torch":
        pytest.skip("a PyTorch check")
    return pytest.importorskip("torch")


@pytest.mark.parametrize("kind", ["softmax", "log_softmax", "cross_entropy"])
def test_double_backward_is_the_second_derivative(backend: Any, kind: str) -> None:
    """Hessian-vector products by double backward, against central differences of the
    float64 gradient formulas."""
    torch = _torch_only(backend)
    labels = torch.as_tensor(_LABELS)
    w = torch.as_tensor(_W)
    functions = {
        "softmax": lambda a: (ps.softmax(a) * w).sum(),
        "log_softmax": lambda a: (ps.log_softmax(a) * w).sum(),
        "cross_entropy": lambda a: ps.cross_entropy(a, labels),
    }
    gradients = {
        "softmax": lambda x: (y := _softmax64(x, -1)) * (_W - (_W * y).sum(-1, keepdims=True)),
        "log_softmax": lambda x: _W - _softmax64(x, -1) * _W.sum(-1, keepdims=True),
        "cross_entropy": lambda x: (_softmax64(x, -1) - np.eye(7)[_LABELS]) / 3,
    }
    v = _RNG.normal(size=_X.shape)
    leaf = torch.tensor(_X, requires_grad=True)
    (g,) = torch.autograd.grad(functions[kind](leaf), leaf, create_graph=True)
    (hvp,) = torch.autograd.grad((g * torch.as_tensor(v)).sum(), leaf)
    h = 1e-6
    want = (gradients[kind](_X + h * v) - gradients[kind](_X - h * v)) / (2 * h)
    np.testing.assert_allclose(hvp.numpy(), want, rtol=1e-6, atol=1e-7)


_COMPILED_STEP = """
import json, sys, warnings
import numpy as np
warnings.simplefilter("error")
# PyTorch's own, whatever it compiles: inductor's, and Dynamo's for any autograd.Function
# (a two-line Function gives it too, on the pinned torch)
warnings.filterwarnings("ignore", "`torch.jit.script", DeprecationWarning)
warnings.filterwarnings("ignore", ".*should not be instantiated", DeprecationWarning)
import torch
import portable_softmax as ps

x, w, labels = (np.asarray(a) for a in json.loads(sys.argv[1]))
w = torch.as_tensor(w, dtype=torch.float32)
labels = torch.as_tensor(labels)


def step(a):
    return ((ps.softmax(a) * w).sum() + ps.logsumexp(a, axis=0).sum()
            + ps.cross_entropy(a, labels))


leaf = torch.tensor(x, dtype=torch.float32, requires_grad=True)
value = torch.compile(step, fullgraph=True)(leaf)  # the process's first call
value.backward()
print(json.dumps([value.item(), leaf.grad.tolist()]))
"""


def test_compiled_with_fullgraph_and_no_warning(backend: Any, path: str) -> None:
    """``torch.compile(fullgraph=True)`` traces the calls, the first of a fresh process
    included (nothing imported yet), with no warning, forward and backward right: one
    representative graph (it compiles for seconds), with a node applied in a backward
    (logsumexp's derivative is a softmax node)."""
    _torch_only(backend)
    if path != "torch":
        pytest.skip("compiled on the package's nodes (the torch path)")
    data = json.dumps([_X.tolist(), _W.tolist(), _LABELS.tolist()])
    done = run_python(_COMPILED_STEP.replace("sys.argv[1]", repr(data)))
    assert done.returncode == 0, done.stderr[-3000:]
    value, grad = json.loads(done.stdout.strip().splitlines()[-1])
    x64 = ref_round(_X, "float32")
    y = _softmax64(x64, -1)
    y0 = _softmax64(x64, 0)
    want_value = (y * _W).sum() + _logsumexp64(x64, 0).sum() + ce_ref.loss(x64, _LABELS)
    want_grad = y * (_W - (_W * y).sum(-1, keepdims=True)) + y0 + (y - np.eye(7)[_LABELS]) / 3
    np.testing.assert_allclose(value, want_value, rtol=2e-5)
    np.testing.assert_allclose(np.asarray(grad), want_grad, rtol=2e-5, atol=2e-5)


def test_torch_func_transforms_compose(backend: Any) -> None:
    """Transforms over the nodes' other inputs and of their derivatives, against PyTorch's
    own functions (an independent implementation): ``jvp`` of ``vmap``, ``hessian``, ``vmap``
    over the labels and the class weight, and a ``make_fx`` graph run on new input."""
    torch = _torch_only(backend)
    from torch.fx.experimental.proxy_tensor import make_fx
    from torch.nn import functional as F

    x = torch.as_tensor(_X)
    labels = torch.as_tensor(_LABELS)
    batch_labels = torch.stack([labels, labels.flip(0)])
    weights = torch.as_tensor(np.stack([_CLASS_WEIGHT, _CLASS_WEIGHT[::-1].copy()]))
    func = torch.func
    pairs = {
        "jvp of vmap": (
            func.jvp(func.vmap(ps.softmax), (x,), (x * 0.5,))[1],
            func.jvp(func.vmap(lambda t: t.softmax(-1)), (x,), (x * 0.5,))[1],
        ),
        "hessian logsumexp": (
            func.hessian(lambda t: ps.logsumexp(t).sum())(x),
            func.hessian(lambda t: t.logsumexp(-1).sum())(x),
        ),
        "hessian cross_entropy": (
            func.hessian(lambda t: ps.cross_entropy(t, labels))(x),
            func.hessian(lambda t: F.cross_entropy(t, labels))(x),
        ),
        "vmap over labels": (
            func.vmap(lambda y: ps.cross_entropy(x, y))(batch_labels),
            func.vmap(lambda y: F.cross_entropy(x, y))(batch_labels),
        ),
        "vmap over weights": (
            func.vmap(lambda w: ps.cross_entropy(x, labels, weight=w))(weights),
            func.vmap(lambda w: F.cross_entropy(x, labels, weight=w))(weights),
        ),
        "make_fx graph": (
            make_fx(lambda t: ps.log_softmax(t))(torch.zeros_like(x))(x),
            x.log_softmax(-1),
        ),
    }
    for name, (got, want) in pairs.items():
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
