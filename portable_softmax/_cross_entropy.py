"""Softmax cross-entropy and its fused gradient: the public functions (validate, dispatch,
finish).

Per sample ``l = -sum_c w_c t'_c log p_c``, with ``t'`` the (smoothed, masked) target. Its
exact gradient with respect to the logits is ``p * sum_c(w_c t'_c) - w * t'``: the shortcut
``p - t`` holds only without weights and smoothing and for targets summing to one. The
portable implementation is ``portable_softmax._generic.cross_entropy``.
"""

from __future__ import annotations

from typing import NoReturn

from ._dispatch import dispatch
from ._lib._arguments import Array, ArrayT, Axis
from ._lib._describe import describe_cross_entropy
from ._lib._labels import check_labels
from ._lib._signatures import extra_positional, keyword_options

__all__ = ["cross_entropy", "cross_entropy_backward", "cross_entropy_with_grad"]


@keyword_options
def cross_entropy(
    logits: ArrayT,
    target: Array,
    /,
    *extra: NoReturn,
    axis: Axis = -1,
    reduction: str = "mean",
    weight: Array | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    where: Array | None = None,
    validate: bool | None = None,
) -> ArrayT:
    r"""Softmax cross-entropy: per sample ``l_n = -sum_c w_c t'_nc log softmax(logits)_nc``.

    Parameters
    ----------
    logits : array
        Real scores; the classes lie along ``axis``. Integers are promoted to the default
        float; float16/bfloat16 are accumulated in float32.
    target : array
        Integer class indices with one dimension less than ``logits`` (``axis`` an int), or
        probabilities of the logits' shape (any real or integer dtype, an integer one-hot
        included), cast to the logits' floating dtype.
    axis : int, tuple of ints or None, optional
        The class axis (axes, for probabilities).
    reduction : {"mean", "sum", "none"}, optional
        ``"none"``: per-sample losses. ``"sum"``: their sum. ``"mean"``: ``sum_n l_n / D``
        with ``D = sum_n sum_c w_c t_nc`` (the unsmoothed targets), the same weighted mean
        for labels and probabilities; 0 when ``D`` is 0.
    weight : array, optional
        One weight per class, shape ``(C,)``; negative weights are allowed.
    ignore_index : int, optional
        With integer labels: samples with this label give 0 and leave ``D``.
    label_smoothing : float, optional
        ``eps`` in [0, 1]: ``t' = (1 - eps) t + eps / C_n`` over the ``C_n`` unmasked classes.
    where : boolean array, optional
        Class mask broadcastable to ``logits``: masked classes get ``t' = 0`` and leave the
        smoothing count; a sample with every class masked is ignored.
    validate : bool or None, optional
        Labels outside ``[0, C)`` (other than ``ignore_index``) or on a masked class are
        invalid. None: raise ``ValueError`` naming the first one on NumPy, array-api-strict
        and PyTorch CPU arrays; elsewhere (GPU, Dask, JAX) mark those samples NaN without
        synchronising. True: always check (an error on Dask arrays and JAX tracers).
        False: only mark NaN.

    Returns
    -------
    array
        The loss in the logits' floating dtype: per-sample shape for ``"none"``, else 0-d.

    Notes
    -----
    ``0 * log 0 = 0``: a -inf logit whose smoothed target is 0 contributes nothing; with a
    target above 0 the loss is +inf. PyTorch's ``F.cross_entropy`` differs in that it divides
    probability targets by N for ``"mean"`` and gives NaN when every sample is ignored.

    Examples
    --------
    >>> import numpy as np
    >>> import portable_softmax as ps
    >>> logits = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    >>> round(float(ps.cross_entropy(logits, np.array([2, 0]))), 6)
    1.407606
    >>> ps.cross_entropy(logits, np.array([2, 0]), reduction="none").round(6)
    array([0.407606, 2.407606])
    """
    if extra:
        raise extra_positional(cross_entropy, extra)
    call = describe_cross_entropy(
        "cross_entropy",
        logits,
        target,
        axis=axis,
        reduction=reduction,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        where=where,
        validate=validate,
    )
    return dispatch(check_labels(call))  # type: ignore[no-any-return]


@keyword_options
def cross_entropy_backward(
    logits: ArrayT,
    target: Array,
    /,
    *extra: NoReturn,
    grad: Array | None = None,
    axis: Axis = -1,
    reduction: str = "mean",
    weight: Array | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    where: Array | None = None,
    validate: bool | None = None,
    out: ArrayT | None = None,
) -> ArrayT:
    r"""Gradient of :func:`cross_entropy` with respect to ``logits``, fused.

    Per sample ``p * sum_c(w_c t'_c) - w * t'`` with ``p = softmax(logits)``, divided by
    ``D`` for ``"mean"`` (0 when ``D`` is 0), times ``grad``.

    Parameters
    ----------
    logits, target
        As for :func:`cross_entropy`.
    grad : array, optional
        Gradient with respect to the loss: the loss's shape (per-sample for ``"none"``, 0-d
        otherwise). None means ones.
    axis, reduction, weight, ignore_index, label_smoothing, where, validate
        As for :func:`cross_entropy`.
    out : array, optional
        Where to write the result: an array of the result's shape, dtype, library and device,
        returned. It may be ``logits`` itself (in place: the gradient overwrites them) or an
        array that shares no memory with the inputs; JAX and Dask arrays cannot be written in
        place (``TypeError``).

    Returns
    -------
    array
        The logits' shape and floating dtype. Ignored samples and masked classes get 0,
        invalid samples NaN (when not raised on).

    Examples
    --------
    >>> import numpy as np
    >>> import portable_softmax as ps
    >>> x = np.array([[1, 2, 3], [4, 5, 6]])
    >>> y = np.array([[0, 1, 0], [1, 0, 0]])  # integer one-hot
    >>> ps.cross_entropy_backward(x, y, axis=1, reduction="sum").round(8)
    array([[ 0.09003057, -0.75527153,  0.66524096],
           [-0.90996943,  0.24472847,  0.66524096]])
    """
    if extra:
        raise extra_positional(cross_entropy_backward, extra)
    call = describe_cross_entropy(
        "cross_entropy_backward",
        logits,
        target,
        grad=grad,
        axis=axis,
        reduction=reduction,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        where=where,
        validate=validate,
        out=out,
    )
    return dispatch(check_labels(call))  # type: ignore[no-any-return]


@keyword_options
def cross_entropy_with_grad(
    logits: ArrayT,
    target: Array,
    /,
    *extra: NoReturn,
    grad: Array | None = None,
    axis: Axis = -1,
    reduction: str = "mean",
    weight: Array | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    where: Array | None = None,
    validate: bool | None = None,
    out: ArrayT | None = None,
) -> tuple[ArrayT, ArrayT]:
    r"""The loss of :func:`cross_entropy` and its gradient, from one read of the logits.

    The same as ``(cross_entropy(logits, target, ...), cross_entropy_backward(logits,
    target, grad=grad, ...))``, with the same semantics and errors, for the price of one
    call: the labels are checked once, and on the compiled CPU kernels the logits are read
    once for both (the gradient is written in the same pass).

    Parameters
    ----------
    logits, target
        As for :func:`cross_entropy`.
    grad : array, optional
        Gradient with respect to the loss, as for :func:`cross_entropy_backward`.
    axis, reduction, weight, ignore_index, label_smoothing, where, validate
        As for :func:`cross_entropy`.
    out : array, optional
        Where to write the result: an array of the result's shape, dtype, library and device,
        returned. It may be ``logits`` itself (in place: the gradient overwrites them) or an
        array that shares no memory with the inputs; JAX and Dask arrays cannot be written in
        place (``TypeError``).

    Returns
    -------
    loss : array
        As :func:`cross_entropy` returns it.
    dlogits : array
        As :func:`cross_entropy_backward` returns it.

    Examples
    --------
    >>> import numpy as np
    >>> import portable_softmax as ps
    >>> logits = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    >>> loss, dlogits = ps.cross_entropy_with_grad(logits, np.array([2, 0]))
    >>> round(float(loss), 6)
    1.407606
    >>> dlogits.round(6)
    array([[ 0.045015,  0.122364, -0.16738 ],
           [-0.454985,  0.122364,  0.33262 ]])
    """
    if extra:
        raise extra_positional(cross_entropy_with_grad, extra)
    call = describe_cross_entropy(
        "cross_entropy_with_grad",
        logits,
        target,
        grad=grad,
        axis=axis,
        reduction=reduction,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        where=where,
        validate=validate,
        out=out,
    )
    return dispatch(check_labels(call))  # type: ignore[no-any-return]
