"""The grid, the references (against independent implementations) and the check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from benchmarks._cases import Case, check, make_inputs, parse_shape, reference
from benchmarks._impls import naive_cross_entropy, naive_softmax, naive_softmax_backward


def test_parse_shape() -> None:
    assert parse_shape("4096x4096") == (4096, 4096)
    assert parse_shape("1_000_000") == (1_000_000,)
    with pytest.raises(ValueError, match=r"'4096\*4096'.*joined by 'x'"):
        parse_shape("4096*4096")
    with pytest.raises(ValueError, match="positive"):
        parse_shape("0x5")


def test_bytes() -> None:
    case = Case("backward", (4096, 4096), "float32")
    assert case.nbytes == 64 * 2**20
    assert case.moved_bytes == 3 * 64 * 2**20
    assert Case("xent", (8, 10), "float64").moved_bytes == 2 * 640


def test_inputs_differ_between_copies_and_have_the_dtype() -> None:
    case = Case("xent", (4, 7), "float32")
    (x0, t0), (x1, _) = make_inputs(case, 0), make_inputs(case, 1)
    assert x0.dtype == np.float32
    assert t0.dtype == np.int64
    assert t0.shape == (4,)
    assert not np.array_equal(x0, x1)
    assert t0.min() >= 0
    assert t0.max() < 7


def test_forward_reference_matches_scipy() -> None:
    from scipy.special import softmax

    (x,) = make_inputs(Case("forward", (5, 9), "float64"), 0)
    (want,) = reference(Case("forward", (5, 9), "float64"), (x,))
    np.testing.assert_allclose(want, softmax(x, axis=-1), rtol=1e-13)


def test_backward_reference_matches_the_jacobian() -> None:
    case = Case("backward", (3, 6), "float64")
    g, y = make_inputs(case, 0)
    (got,) = reference(case, (g, y))
    for row in range(3):
        jacobian = np.diag(y[row]) - np.outer(y[row], y[row])
        np.testing.assert_allclose(got[row], jacobian.T @ g[row], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shape", [(6, 11), (50,)])
def test_xent_reference_matches_torch(shape: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    case = Case("xent", shape, "float64")
    logits, labels = make_inputs(case, 0)
    loss, grad = reference(case, (logits, labels))
    leaf = torch.tensor(logits, requires_grad=True)
    want = torch.nn.functional.cross_entropy(leaf, torch.tensor(labels))
    want.backward()
    np.testing.assert_allclose(loss, want.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, leaf.grad.numpy(), rtol=1e-10, atol=1e-16)


@pytest.mark.parametrize("op", ["forward", "backward", "xent"])
@pytest.mark.parametrize("shape", [(8, 10), (300,)])
def test_naive_chain_passes_the_check(op: str, shape: tuple[int, ...]) -> None:
    import array_api_compat.numpy as xp

    case = Case(op, shape, "float32")
    inputs = make_inputs(case, 0)
    chain: dict[str, Callable[..., Any]] = {
        "forward": naive_softmax,
        "backward": naive_softmax_backward,
        "xent": naive_cross_entropy,
    }
    out = chain[op](xp, *inputs)
    got = tuple(np.asarray(o) for o in (out if isinstance(out, tuple) else (out,)))
    assert check(case, got, reference(case, inputs), inputs) is None


def test_check_reports_wrong_results() -> None:
    case = Case("forward", (4, 5), "float32")
    inputs = make_inputs(case, 0)
    (want,) = reference(case, inputs)
    assert check(case, (want.astype(np.float32),), (want,), inputs) is None
    wrong = want.copy()
    largest = int(np.argmax(want))
    wrong.flat[largest] *= 1.01
    message = check(case, (wrong,), (want,), inputs)
    assert message is not None
    assert f"flat index {largest}" in message
    assert "shape" in (check(case, (want[:2],), (want,), inputs) or "")
    assert "returned 2 arrays" in (check(case, (want, want), (want,), inputs) or "")


def test_backward_check_scales_with_the_bound_and_catches_a_missing_term() -> None:
    case = Case("backward", (64, 2000), "float32")
    g, y = make_inputs(case, 0)
    want = reference(case, (g, y))
    float32_chain = y * (g - (g * y).sum(axis=-1, keepdims=True, dtype=np.float32))
    assert check(case, (float32_chain,), want, (g, y)) is None
    assert check(case, (y * g,), want, (g, y)) is not None
