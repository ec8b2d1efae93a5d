"""Layers for hand-written training loops: forward caches, backward is the true VJP.

Each layer takes its options once, in ``__init__``. ``forward`` keeps a reference (not a
copy) to what ``backward`` needs, as PyTorch's autograd does: modifying the cached arrays
in place between the two calls changes the gradient. ``backward`` may be called any number
of times after a ``forward``; before the first ``forward`` it raises ``RuntimeError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from ._cross_entropy import cross_entropy, cross_entropy_backward
from ._derivatives import log_softmax_backward, softmax_backward
from ._forward import log_softmax, softmax
from ._lib._arguments import Array, Axis
from ._lib._signatures import extra_positional, keyword_names, keyword_options
from ._lib._targets import check_options

__all__ = ["LogSoftmaxLayer", "SoftmaxCrossEntropyLayer", "SoftmaxLayer"]


def _not_yet(layer: object) -> RuntimeError:
    name = type(layer).__name__
    return RuntimeError(
        f"{name}.backward was called before {name}.forward: forward must be called first, "
        "so that backward has the values it differentiates"
    )


_OTHER_NAMES = {"dim": "axis", "mask": "where", "T": "temperature", "ignore": "ignore_index"}
"""Options by the names other libraries give them (PyTorch's ``dim``), and ours."""


def _refuse(layer: object, extra: tuple[object, ...], unknown: dict[str, object]) -> None:
    """A ``TypeError`` naming the layer (not a private base class) and the option to use, for
    options given by position or under another library's name."""
    name = type(layer).__name__
    init = type(layer).__init__
    if extra:
        raise extra_positional(init, extra, name)
    if not unknown:
        return
    given = next(iter(unknown))
    ours = _OTHER_NAMES.get(given)
    hint = f"; the same option here is {ours}=" if ours else ""
    raise TypeError(
        f"{name}() got an unexpected keyword argument {given!r}{hint} "
        f"(options: {keyword_names(init)})"
    )


class _OutputLayer:
    """A layer whose backward needs only its forward output (softmax, log_softmax)."""

    _forward: Callable[..., Array]
    _backward: Callable[..., Array]

    @keyword_options
    def __init__(
        self,
        *extra: NoReturn,
        axis: Axis = -1,
        where: Array | None = None,
        temperature: float | Array | None = None,
        **unknown: object,
    ) -> None:
        _refuse(self, extra, unknown)
        self.options: dict[str, Any] = {"axis": axis, "where": where, "temperature": temperature}
        self.output: Array | None = None

    def forward(self, x: Array) -> Array:
        """Return the layer's output for ``x`` and keep it for :meth:`backward`."""
        self.output = type(self)._forward(x, **self.options)
        return self.output

    def backward(self, grad: Array) -> Array:
        """Return the gradient with respect to the last ``forward``'s input."""
        if self.output is None:
            raise _not_yet(self)
        return type(self)._backward(grad, self.output, **self.options)


class SoftmaxLayer(_OutputLayer):
    """``y = softmax(x)`` forward; ``backward(grad)`` returns ``y * (grad - sum(grad*y)) / T``.

    Parameters
    ----------
    axis, where, temperature
        Options of :func:`portable_softmax.softmax`, given once here.

    Notes
    -----
    ``forward`` caches the output it returns; modifying that array in place before
    ``backward`` changes the gradient (as in PyTorch). The gradient is the full VJP of
    softmax, whose Jacobian is ``diag(y) - y y^T``, not only its diagonal ``y*(1-y)``.

    Examples
    --------
    >>> import numpy as np
    >>> import portable_softmax as ps
    >>> layer = ps.SoftmaxLayer(axis=1)
    >>> layer.forward(np.array([[1.0, 2.0, 3.0]])).round(6)
    array([[0.090031, 0.244728, 0.665241]])
    >>> layer.backward(np.array([[0.0, 1.0, 0.0]])).round(6)
    array([[-0.022033,  0.184836, -0.162803]])
    """

    _forward = staticmethod(softmax)
    _backward = staticmethod(softmax_backward)


class LogSoftmaxLayer(_OutputLayer):
    """``logp = log_softmax(x)`` forward; ``backward(grad)`` returns ``(grad - p*sum(grad))/T``.

    Parameters
    ----------
    axis, where, temperature
        Options of :func:`portable_softmax.log_softmax`, given once here.

    Notes
    -----
    ``forward`` caches the output it returns; modifying that array in place before
    ``backward`` changes the gradient (as in PyTorch).

    Examples
    --------
    >>> import numpy as np
    >>> import portable_softmax as ps
    >>> layer = ps.LogSoftmaxLayer()
    >>> layer.forward(np.array([0.0, 0.0]))
    array([-0.69314718, -0.69314718])
    >>> layer.backward(np.array([1.0, 0.0]))
    array([ 0.5, -0.5])
    """

    _forward = staticmethod(log_softmax)
    _backward = staticmethod(log_softmax_backward)


class SoftmaxCrossEntropyLayer:
    """Softmax followed by cross-entropy, with the fused gradient in ``backward``.

    Parameters
    ----------
    axis, reduction, weight, ignore_index, label_smoothing, where, validate
        Options of :func:`portable_softmax.cross_entropy`; the scalar ones are checked here.

    Notes
    -----
    ``forward(logits, target)`` returns the loss and keeps references to ``logits`` and
    ``target``; ``backward(grad=None)`` returns ``d loss / d logits`` (per sample
    ``p * sum_c(w_c t'_c) - w * t'``, over ``D`` for "mean"). Modifying ``logits`` or
    ``target`` in place before ``backward`` changes the gradient (as in PyTorch).

    Examples
    --------
    >>> import numpy as np
    >>> import portable_softmax as ps
    >>> layer = ps.SoftmaxCrossEntropyLayer(axis=1, reduction="sum")
    >>> x = np.array([[1, 2, 3], [4, 5, 6]])
    >>> round(float(layer.forward(x, np.array([[0, 1, 0], [1, 0, 0]]))), 6)
    3.815212
    >>> layer.backward().round(8)
    array([[ 0.09003057, -0.75527153,  0.66524096],
           [-0.90996943,  0.24472847,  0.66524096]])
    """

    @keyword_options
    def __init__(
        self,
        *extra: NoReturn,
        axis: Axis = -1,
        reduction: str = "mean",
        weight: Array | None = None,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        where: Array | None = None,
        validate: bool | None = None,
        **unknown: object,
    ) -> None:
        _refuse(self, extra, unknown)
        check_options(reduction, ignore_index, label_smoothing, validate)
        self.options: dict[str, Any] = {
            "axis": axis,
            "reduction": reduction,
            "weight": weight,
            "ignore_index": ignore_index,
            "label_smoothing": label_smoothing,
            "where": where,
            "validate": validate,
        }
        self.inputs: tuple[Array, Array] | None = None

    def forward(self, logits: Array, target: Array) -> Array:
        """Return the loss and keep ``logits`` and ``target`` for :meth:`backward`."""
        loss = cross_entropy(logits, target, **self.options)
        self.inputs = (logits, target)
        return loss

    def backward(self, grad: Array | None = None) -> Array:
        """Return the gradient with respect to the last ``forward``'s logits."""
        if self.inputs is None:
            raise _not_yet(self)
        return cross_entropy_backward(*self.inputs, grad=grad, **self.options)
