"""VJPs and JVPs of softmax and log_softmax: the public functions (validate, dispatch, finish).

With ``y = softmax(x/T)`` the Jacobian is ``(diag(y) - y y^T) / T``, symmetric, so the VJP
and the JVP are one formula; for ``logp = log_softmax(x/T)`` it is ``(I - 1 p^T) / T``. The
kernels are in ``portable_softmax._generic.derivatives`` and in each backend's fast path.
"""

from __future__ import annotations

from typing import Any, NoReturn

from ._dispatch import dispatch
from ._lib._arguments import Array, ArrayT, Axis
from ._lib._describe import describe
from ._lib._signatures import extra_positional, keyword_options

__all__ = ["log_softmax_backward", "log_softmax_jvp", "softmax_backward", "softmax_jvp"]


@keyword_options
def softmax_backward(
    grad: ArrayT,
    y: ArrayT,
    /,
    *extra: NoReturn,
    axis: Axis = -1,
    where: Array | None = None,
    temperature: float | Array | None = None,
    out: ArrayT | None = None,
) -> ArrayT:
    r"""Vector-Jacobian product of softmax: ``y * (grad - sum(grad * y)) / T``.

    Parameters
    ----------
    grad : array
        Gradient of the loss with respect to ``y``; same shape as ``y``.
    y : array
        The output of ``softmax(x, axis=axis, where=where, temperature=temperature)``.
    axis, where, temperature
        The options the forward call used.
    out : array, optional
        Where to write the result: an array of the result's shape, dtype, library and device,
        returned. It may be ``grad`` or ``y`` itself (in place) or an array that shares no
        memory with the inputs; JAX and Dask arrays cannot be written in place (``TypeError``).

    Returns
    -------
    array
        Gradient with respect to ``x``, with ``y``'s library, device, shape and dtype.
        Masked entries get exactly 0; entries where ``y`` is 0 (-inf inputs) get 0.

    Examples
    --------
    >>> import numpy as np
    >>> import portable_softmax as ps
    >>> y = ps.softmax(np.array([1.0, 2.0, 3.0]))
    >>> ps.softmax_backward(np.array([0.0, 1.0, 0.0]), y).round(6)
    array([-0.022033,  0.184836, -0.162803])
    """
    if extra:
        raise extra_positional(softmax_backward, extra)
    return _run("softmax_backward", y, grad, ("y", "grad"), axis, where, temperature, out)


@keyword_options
def softmax_jvp(
    tangent: ArrayT,
    y: ArrayT,
    /,
    *extra: NoReturn,
    axis: Axis = -1,
    where: Array | None = None,
    temperature: float | Array | None = None,
    out: ArrayT | None = None,
) -> ArrayT:
    r"""Jacobian-vector product of softmax: ``y * (tangent - sum(y * tangent)) / T``.

    Parameters
    ----------
    tangent : array
        Direction in input space; same shape as ``y``.
    y : array
        The output of ``softmax(x, axis=axis, where=where, temperature=temperature)``.
    axis, where, temperature
        The options the forward call used.
    out : array, optional
        Where to write the result: an array of the result's shape, dtype, library and device,
        returned. It may be ``tangent`` or ``y`` itself (in place) or an array that shares no
        memory with the inputs; JAX and Dask arrays cannot be written in place (``TypeError``).

    Returns
    -------
    array
        Directional derivative of softmax, with ``y``'s library, device, shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> import portable_softmax as ps
    >>> y = ps.softmax(np.array([1.0, 2.0, 3.0]))
    >>> t = ps.softmax_jvp(np.ones(3), y)  # shifting every logit changes nothing
    >>> bool(np.all(np.abs(t) < 1e-15))
    True
    """
    if extra:
        raise extra_positional(softmax_jvp, extra)
    return _run("softmax_jvp", y, tangent, ("y", "tangent"), axis, where, temperature, out)


@keyword_options
def log_softmax_backward(
    grad: ArrayT,
    logp: ArrayT,
    /,
    *extra: NoReturn,
    axis: Axis = -1,
    where: Array | None = None,
    temperature: float | Array | None = None,
    out: ArrayT | None = None,
) -> ArrayT:
    r"""Vector-Jacobian product of log_softmax: ``(grad - exp(logp) * sum(grad)) / T``.

    Parameters
    ----------
    grad : array
        Gradient of the loss with respect to ``logp``; same shape as ``logp``.
    logp : array
        The output of ``log_softmax(x, axis=axis, where=where, temperature=temperature)``.
    axis, where, temperature
        The options the forward call used.
    out : array, optional
        Where to write the result: an array of the result's shape, dtype, library and device,
        returned. It may be ``grad`` or ``logp`` itself (in place) or an array that shares no
        memory with the inputs; JAX and Dask arrays cannot be written in place (``TypeError``).

    Returns
    -------
    array
        Gradient with respect to ``x``; masked entries get exactly 0, entries at -inf
        inputs get ``grad / T``.

    Examples
    --------
    >>> import numpy as np
    >>> import portable_softmax as ps
    >>> logp = ps.log_softmax(np.array([0.0, 0.0]))
    >>> ps.log_softmax_backward(np.array([1.0, 0.0]), logp)
    array([ 0.5, -0.5])
    """
    if extra:
        raise extra_positional(log_softmax_backward, extra)
    return _run("log_softmax_backward", logp, grad, ("logp", "grad"), axis, where, temperature, out)


@keyword_options
def log_softmax_jvp(
    tangent: ArrayT,
    logp: ArrayT,
    /,
    *extra: NoReturn,
    axis: Axis = -1,
    where: Array | None = None,
    temperature: float | Array | None = None,
    out: ArrayT | None = None,
) -> ArrayT:
    r"""Jacobian-vector product of log_softmax: ``(tangent - sum(exp(logp) * tangent)) / T``.

    Parameters
    ----------
    tangent : array
        Direction in input space; same shape as ``logp``.
    logp : array
        The output of ``log_softmax(x, axis=axis, where=where, temperature=temperature)``.
    axis, where, temperature
        The options the forward call used.
    out : array, optional
        Where to write the result: an array of the result's shape, dtype, library and device,
        returned. It may be ``tangent`` or ``logp`` itself (in place) or an array that shares no
        memory with the inputs; JAX and Dask arrays cannot be written in place (``TypeError``).

    Returns
    -------
    array
        Directional derivative of log_softmax; masked entries get exactly 0.

    Examples
    --------
    >>> import numpy as np
    >>> import portable_softmax as ps
    >>> logp = ps.log_softmax(np.array([0.0, 0.0]))
    >>> ps.log_softmax_jvp(np.array([1.0, 0.0]), logp)
    array([ 0.5, -0.5])
    """
    if extra:
        raise extra_positional(log_softmax_jvp, extra)
    return _run(
        "log_softmax_jvp", logp, tangent, ("logp", "tangent"), axis, where, temperature, out
    )


def _run(
    function: str,
    primary: ArrayT,
    vector: Any,
    names: tuple[str, str],
    axis: Axis,
    where: Array | None,
    temperature: float | Array | None,
    out: Any,
) -> ArrayT:
    """Describe and dispatch a derivative call; ``names`` are the user's names of
    ``primary`` and ``vector``, for the error messages."""
    call = describe(
        function, primary, vector, names=names, axis=axis, where=where,
        temperature=temperature, out=out,
    )  # fmt: skip
    return dispatch(call)  # type: ignore[no-any-return]
