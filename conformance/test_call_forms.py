"""How users call the functions and what they get for calling them wrongly (portable_softmax
only, NumPy arrays, not a peer check): options given by position or under PyTorch's names,
NumPy subclasses (masked arrays refuse, others are computed on their plain view).

The expected values are written out here (softmax of ``[1, 2, 3]``), never taken from the
package.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import portable_softmax as ps

pytestmark = pytest.mark.api

X = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
ROW = np.array([0.09003057317038046, 0.24472847105479767, 0.6652409557748219])
LABELS = np.array([2, 0])


def _calls(x: Any, other: Any = None) -> dict[str, Any]:
    """Every public function called on ``x`` (and ``other`` where it takes a second array)."""
    other = X if other is None else other
    return {
        "softmax": lambda: ps.softmax(x),
        "log_softmax": lambda: ps.log_softmax(x),
        "logsumexp": lambda: ps.logsumexp(x),
        "softmax_backward": lambda: ps.softmax_backward(other, x),
        "softmax_jvp": lambda: ps.softmax_jvp(other, x),
        "log_softmax_backward": lambda: ps.log_softmax_backward(other, x),
        "log_softmax_jvp": lambda: ps.log_softmax_jvp(other, x),
        "cross_entropy": lambda: ps.cross_entropy(x, LABELS),
        "cross_entropy_backward": lambda: ps.cross_entropy_backward(x, LABELS),
        "cross_entropy_with_grad": lambda: ps.cross_entropy_with_grad(x, LABELS),
        "SoftmaxLayer": lambda: ps.SoftmaxLayer().forward(x),
        "LogSoftmaxLayer": lambda: ps.LogSoftmaxLayer().forward(x),
        "SoftmaxCrossEntropyLayer": lambda: ps.SoftmaxCrossEntropyLayer().forward(x, LABELS),
    }


@pytest.mark.parametrize("name", list(_calls(X)))
def test_a_masked_array_is_refused_with_the_fix(name: str) -> None:
    """A mask is never silently ignored: every function refuses a masked array, naming the
    argument and showing the mask as ``where``."""
    masked = np.ma.masked_array(X, mask=[[0, 0, 1], [0, 0, 0]])
    with pytest.raises(TypeError, match=r"MaskedArray.*where=~np\.ma\.getmaskarray"):
        _calls(masked)[name]()


def test_masked_labels_and_options_are_refused_too() -> None:
    labels = np.ma.masked_array(LABELS, mask=[0, 1])
    with pytest.raises(TypeError, match=r"target is a numpy\.ma\.MaskedArray.*ignore_index"):
        ps.cross_entropy(X, labels)
    weight = np.ma.masked_array(np.ones(3), mask=[0, 1, 0])
    with pytest.raises(TypeError, match=r"weight is a numpy\.ma\.MaskedArray"):
        ps.cross_entropy(X, LABELS, weight=weight)
    where = np.ma.masked_array(np.ones((2, 3), bool))
    with pytest.raises(TypeError, match=r"where is a numpy\.ma\.MaskedArray"):
        ps.softmax(X, where=where)


def test_the_fix_the_error_shows_works() -> None:
    masked = np.ma.masked_array(X, mask=[[0, 0, 1], [0, 0, 0]])
    y = ps.softmax(np.ma.getdata(masked), where=~np.ma.getmaskarray(masked))
    np.testing.assert_allclose(y[0], [0.2689414213699951, 0.7310585786300049, 0.0], rtol=1e-14)
    np.testing.assert_allclose(y[1], ROW, rtol=1e-14)


class _Tagged(np.ndarray):
    """A user's ndarray subclass."""


@pytest.mark.parametrize("kind", ["matrix", "user subclass"])
@pytest.mark.parametrize("name", list(_calls(X)))
def test_other_subclasses_are_computed_on_their_plain_view(kind: str, name: str) -> None:
    """``np.matrix`` and a user's subclass: the plain ndarray result, without warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # np.matrix's own
        view = np.asmatrix(X) if kind == "matrix" else X.view(_Tagged)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _calls(view, view)[name]()
        want = _calls(X)[name]()
    pairs = zip(_outputs(got), _outputs(want), strict=True)
    for g, w in pairs:
        assert type(g) is np.ndarray, type(g)
        np.testing.assert_array_equal(g, w)
    if name == "softmax":
        np.testing.assert_allclose(got[0], ROW, rtol=1e-14)


def _outputs(result: Any) -> tuple[Any, ...]:
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize(
    "call",
    [
        lambda: ps.softmax(X, 1),
        lambda: ps.log_softmax(X, -1),
        lambda: ps.logsumexp(X, 0),
        lambda: ps.softmax_backward(X, X, 1),
        lambda: ps.cross_entropy(X, LABELS, 1),
        lambda: ps.cross_entropy_with_grad(X, LABELS, -1),
    ],
)
def test_an_option_by_position_names_the_keyword(call: Any) -> None:
    with pytest.raises(TypeError, match=r"by keyword.*axis="):
        call()


@pytest.mark.parametrize(
    ("layer", "option", "ours"),
    [
        (ps.SoftmaxLayer, "dim", "axis"),
        (ps.LogSoftmaxLayer, "mask", "where"),
        (ps.SoftmaxCrossEntropyLayer, "dim", "axis"),
        (ps.SoftmaxCrossEntropyLayer, "ignore", "ignore_index"),
    ],
)
def test_a_layer_option_under_another_name_points_to_ours(
    layer: Any, option: str, ours: str
) -> None:
    with pytest.raises(TypeError, match=rf"{layer.__name__}\(\).*'{option}'.*{ours}="):
        layer(**{option: 1})
    with pytest.raises(TypeError, match=rf"{layer.__name__}\(\).*by keyword"):
        layer(1)


def test_public_signatures_show_no_catch_all() -> None:
    import inspect

    for name in ps.__all__:
        obj = getattr(ps, name)
        if callable(obj) and not isinstance(obj, type):
            kinds = {p.kind for p in inspect.signature(obj).parameters.values()}
            assert inspect.Parameter.VAR_POSITIONAL not in kinds, name


def test_a_new_float_temperature_compiles_no_new_jax_program() -> None:
    """On JAX a float temperature is traced with the data: a new value reuses the program."""
    jnp = pytest.importorskip("jax.numpy")
    from portable_softmax._generic import run

    x = jnp.asarray(X[0], dtype=jnp.float32)
    ps.softmax(x, temperature=2.0)
    programs = len(run._JITTED)
    y = ps.softmax(x, temperature=3.0)
    assert len(run._JITTED) == programs
    e = np.exp((X[0] - 3.0) / 3.0)
    np.testing.assert_allclose(np.asarray(y), e / e.sum(), rtol=1e-6)
