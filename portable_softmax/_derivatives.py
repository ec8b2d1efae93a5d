"""Vector-Jacobian and Jacobian-vector products of softmax and log_softmax.

With ``y = softmax(x/T)`` the Jacobian is ``(diag(y) - y y^T) / T``: symmetric, so the VJP
and the JVP are one formula, ``y * (v - sum(v*y)) / T``. For ``logp = log_softmax(x/T)``
the Jacobian ``(I - 1 p^T) / T`` is not symmetric: the VJP is ``(g - p * sum(g)) / T`` and
the JVP ``(t - sum(p*t)) / T``, with ``p = exp(logp)``. Masked entries are zeroed before
every sum and in the result, so whatever they hold (NaN, inf) never leaks.
"""

from __future__ import annotations

import array_api_compat

from ._backends import dask as _dask  # dask-dispatch (temporary)
from ._lib import _numpy_fast
from ._lib._arguments import Array, Axis
from ._lib._reductions import accurate_sum
from ._lib._run import run
from ._lib._slices import Slices, prepare

__all__ = ["log_softmax_backward", "log_softmax_jvp", "softmax_backward", "softmax_jvp"]


def _softmax_product_kernel(slices: Slices, y: Array, v: Array) -> Array:
    product = slices.zero_masked(v * y)
    out = product - y * accurate_sum(slices.xp, product, slices.axes)
    return slices.divide_by_temperature(slices.zero_masked(out))


def _log_softmax_vjp_kernel(slices: Slices, logp: Array, g: Array) -> Array:
    xp = slices.xp
    g = slices.zero_masked(g)
    out = g - xp.exp(logp) * accurate_sum(xp, g, slices.axes)
    return slices.divide_by_temperature(slices.zero_masked(out))


def _log_softmax_jvp_kernel(slices: Slices, logp: Array, t: Array) -> Array:
    xp = slices.xp
    weighted = slices.zero_masked(xp.exp(logp) * t)
    out = t - accurate_sum(xp, weighted, slices.axes)
    return slices.divide_by_temperature(slices.zero_masked(out))


def _apply(
    kernel: object,
    primary_name: str,
    primary: Array,
    vector_name: str,
    vector: Array,
    axis: Axis,
    where: Array | None,
    temperature: float | Array | None,
) -> Array:
    slices, (primary, vector) = prepare(
        primary_name,
        primary,
        axis=axis,
        where=where,
        temperature=temperature,
        companions={vector_name: vector},
    )
    if slices.empty:
        return slices.finish(vector)
    return slices.finish(run(kernel, slices, primary, vector))  # type: ignore[arg-type]


def softmax_backward(
    grad: Array,
    y: Array,
    /,
    *,
    axis: Axis = -1,
    where: Array | None = None,
    temperature: float | Array | None = None,
) -> Array:
    r"""Vector-Jacobian product of softmax: ``y * (grad - sum(grad * y)) / T``.

    Parameters
    ----------
    grad : array
        Gradient of the loss with respect to ``y``; same shape as ``y``.
    y : array
        The output of ``softmax(x, axis=axis, where=where, temperature=temperature)``.
    axis, where, temperature
        The options the forward call used.

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
    # dask-dispatch (temporary): begin
    if array_api_compat.is_dask_array(y):
        out = _dask.softmax_backward(grad, y, axis=axis, where=where, temperature=temperature)
        if out is not NotImplemented:
            return out
    # dask-dispatch (temporary): end
    if _numpy_fast.backward_eligible(y, grad, axis, where, temperature):
        t = _numpy_fast.plain_temperature(temperature)
        return _numpy_fast.softmax_backward(y, grad, t, _softmax_product_kernel)
    return _apply(_softmax_product_kernel, "y", y, "grad", grad, axis, where, temperature)


def softmax_jvp(
    tangent: Array,
    y: Array,
    /,
    *,
    axis: Axis = -1,
    where: Array | None = None,
    temperature: float | Array | None = None,
) -> Array:
    r"""Jacobian-vector product of softmax: ``y * (tangent - sum(y * tangent)) / T``.

    Parameters
    ----------
    tangent : array
        Direction in input space; same shape as ``y``.
    y : array
        The output of ``softmax(x, axis=axis, where=where, temperature=temperature)``.
    axis, where, temperature
        The options the forward call used.

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
    # dask-dispatch (temporary): begin
    if array_api_compat.is_dask_array(y):
        out = _dask.softmax_jvp(tangent, y, axis=axis, where=where, temperature=temperature)
        if out is not NotImplemented:
            return out
    # dask-dispatch (temporary): end
    return _apply(_softmax_product_kernel, "y", y, "tangent", tangent, axis, where, temperature)


def log_softmax_backward(
    grad: Array,
    logp: Array,
    /,
    *,
    axis: Axis = -1,
    where: Array | None = None,
    temperature: float | Array | None = None,
) -> Array:
    r"""Vector-Jacobian product of log_softmax: ``(grad - exp(logp) * sum(grad)) / T``.

    Parameters
    ----------
    grad : array
        Gradient of the loss with respect to ``logp``; same shape as ``logp``.
    logp : array
        The output of ``log_softmax(x, axis=axis, where=where, temperature=temperature)``.
    axis, where, temperature
        The options the forward call used.

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
    # dask-dispatch (temporary): begin
    if array_api_compat.is_dask_array(logp):
        out = _dask.log_softmax_backward(
            grad, logp, axis=axis, where=where, temperature=temperature
        )
        if out is not NotImplemented:
            return out
    # dask-dispatch (temporary): end
    return _apply(_log_softmax_vjp_kernel, "logp", logp, "grad", grad, axis, where, temperature)


def log_softmax_jvp(
    tangent: Array,
    logp: Array,
    /,
    *,
    axis: Axis = -1,
    where: Array | None = None,
    temperature: float | Array | None = None,
) -> Array:
    r"""Jacobian-vector product of log_softmax: ``(tangent - sum(exp(logp) * tangent)) / T``.

    Parameters
    ----------
    tangent : array
        Direction in input space; same shape as ``logp``.
    logp : array
        The output of ``log_softmax(x, axis=axis, where=where, temperature=temperature)``.
    axis, where, temperature
        The options the forward call used.

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
    # dask-dispatch (temporary): begin
    if array_api_compat.is_dask_array(logp):
        out = _dask.log_softmax_jvp(tangent, logp, axis=axis, where=where, temperature=temperature)
        if out is not NotImplemented:
            return out
    # dask-dispatch (temporary): end
    return _apply(
        _log_softmax_jvp_kernel, "logp", logp, "tangent", tangent, axis, where, temperature
    )
