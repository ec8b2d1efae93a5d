"""softmax, log_softmax and logsumexp, with every edge of the contract in one shared kernel.

The kernel is the max-shifted chain (max, subtract, exp, sum) plus one full-array ``where``
that also settles the edges: entries equal to the slice maximum are set to exactly 0 before
``exp``, which turns the k entries of a +inf slice into k ones (no ``inf - inf``), and a slice
with no finite entry is shifted by 0 so it sums to 0, which the small per-slice arrays then
map to 0 / -inf. NaN propagates through ``max`` by itself. No branch looks at values.
"""

from __future__ import annotations

import math
from types import ModuleType

import array_api_compat

from ._backends import dask as _dask  # dask-dispatch (temporary)
from ._lib import _numpy_fast
from ._lib._arguments import Array, Axis
from ._lib._reductions import accurate_sum
from ._lib._run import run
from ._lib._slices import Slices, prepare

__all__ = ["log_softmax", "logsumexp", "softmax"]


def _shifted_exp_sum(slices: Slices, x: Array) -> tuple[Array, Array, Array, Array]:
    """Return ``(m, shifted, exp(shifted), total)``: the slice max (0 where no entry is
    finite), ``(x - m)/T`` with exact zeros at the maxima, and the slice sums."""
    xp = slices.xp
    masked = slices.fill_masked(x, -math.inf)
    m = xp.max(masked, axis=slices.axes, keepdims=True)
    m = xp.where(m == -math.inf, 0.0, m)
    shifted = slices.shift(masked, m)
    e = xp.exp(shifted)
    return m, shifted, e, accurate_sum(xp, e, slices.axes)


def _nonzero(xp: ModuleType, total: Array) -> Array:
    """The slice sums with exact zeros (slices with no finite entry) replaced by 1."""
    return xp.where(total == 0, 1.0, total)


def _softmax_kernel(slices: Slices, x: Array) -> Array:
    _, _, e, total = _shifted_exp_sum(slices, x)
    return slices.fill_masked(e / _nonzero(slices.xp, total), 0.0)


def _log_softmax_kernel(slices: Slices, x: Array) -> Array:
    _, shifted, _, total = _shifted_exp_sum(slices, x)
    out = shifted - slices.xp.log(_nonzero(slices.xp, total))
    return slices.fill_masked(out, -math.inf)


def _logsumexp_kernel(slices: Slices, x: Array) -> Array:
    xp = slices.xp
    m, _, _, total = _shifted_exp_sum(slices, x)
    positive = total != 0
    return m + xp.where(positive, xp.log(xp.where(positive, total, 1.0)), -math.inf)


def softmax(
    x: Array,
    /,
    *,
    axis: Axis = -1,
    where: Array | None = None,
    temperature: float | Array | None = None,
) -> Array:
    r"""Softmax of ``x`` over ``axis``: ``exp((x - m)/T) / sum(exp((x - m)/T))``.

    Parameters
    ----------
    x : array
        Real input of any array-API library; integers and bools are promoted to the default
        floating dtype first, float16/bfloat16 are accumulated in float32.
    axis : int, tuple of ints or None, optional
        Axes of one slice. ``None`` means all axes; ``()`` makes every element its own slice.
    where : boolean array, optional
        Broadcastable to ``x``; ``False`` entries take no part and get 0.
    temperature : float or array, optional
        Positive finite float, or an array with size 1 on every reduced axis.

    Returns
    -------
    array
        Same library, device and shape as ``x``; ``x``'s floating dtype.

    Notes
    -----
    Per slice, in order: masked entries give 0; an unmasked NaN makes the slice NaN; k
    unmasked +inf entries give 1/k at those and 0 elsewhere; a slice with no finite entry
    gives 0; otherwise the formula. A zero-length axis gives an empty result.

    Examples
    --------
    >>> import numpy as np
    >>> import portable_softmax as ps
    >>> ps.softmax(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), axis=1).round(8)
    array([[0.09003057, 0.24472847, 0.66524096],
           [0.09003057, 0.24472847, 0.66524096]])
    >>> ps.softmax(np.array([1.0, np.inf, np.inf]))
    array([0. , 0.5, 0.5])
    """
    # dask-dispatch (temporary): begin
    if array_api_compat.is_dask_array(x):
        out = _dask.softmax(x, axis=axis, where=where, temperature=temperature)
        if out is not NotImplemented:
            return out
    # dask-dispatch (temporary): end
    if _numpy_fast.eligible(x, axis, where, temperature):
        t = _numpy_fast.plain_temperature(temperature)
        return _numpy_fast.softmax(x, t, _softmax_kernel)
    slices, (x,) = prepare("x", x, axis=axis, where=where, temperature=temperature)
    if slices.empty:
        return slices.finish(x)
    return slices.finish(run(_softmax_kernel, slices, x))


def log_softmax(
    x: Array,
    /,
    *,
    axis: Axis = -1,
    where: Array | None = None,
    temperature: float | Array | None = None,
) -> Array:
    r"""Log-softmax of ``x`` over ``axis``: ``(x - m)/T - log(sum(exp((x - m)/T)))``.

    Parameters
    ----------
    x : array
        Real input; dtype rules as for :func:`softmax`.
    axis : int, tuple of ints or None, optional
        Axes of one slice (see :func:`softmax`).
    where : boolean array, optional
        ``False`` entries take no part and get -inf.
    temperature : float or array, optional
        Positive finite float, or an array with size 1 on every reduced axis.

    Returns
    -------
    array
        Same library, device, shape and floating dtype as ``x``.

    Notes
    -----
    Masked entries give -inf; an unmasked NaN makes the slice NaN; k unmasked +inf entries
    give ``-log k`` at those and -inf elsewhere; a slice with no finite entry gives -inf.

    Examples
    --------
    >>> import numpy as np
    >>> import portable_softmax as ps
    >>> ps.log_softmax(np.array([0.0, 0.0]))
    array([-0.69314718, -0.69314718])
    >>> ps.log_softmax(np.array([-np.inf, -np.inf]))
    array([-inf, -inf])
    """
    # dask-dispatch (temporary): begin
    if array_api_compat.is_dask_array(x):
        out = _dask.log_softmax(x, axis=axis, where=where, temperature=temperature)
        if out is not NotImplemented:
            return out
    # dask-dispatch (temporary): end
    if _numpy_fast.eligible(x, axis, where, temperature):
        t = _numpy_fast.plain_temperature(temperature)
        return _numpy_fast.log_softmax(x, t, _log_softmax_kernel)
    slices, (x,) = prepare("x", x, axis=axis, where=where, temperature=temperature)
    if slices.empty:
        return slices.finish(x)
    return slices.finish(run(_log_softmax_kernel, slices, x))


def logsumexp(
    x: Array,
    /,
    *,
    axis: Axis = -1,
    where: Array | None = None,
    keepdims: bool = False,
) -> Array:
    r"""``log(sum(exp(x)))`` over ``axis``, computed as ``m + log(sum(exp(x - m)))``.

    Parameters
    ----------
    x : array
        Real input; dtype rules as for :func:`softmax`.
    axis : int, tuple of ints or None, optional
        Axes to reduce; ``()`` reduces nothing (each element is its own slice).
    where : boolean array, optional
        ``False`` entries are left out of the sum.
    keepdims : bool, optional
        Keep the reduced axes with length 1.

    Returns
    -------
    array
        Same library, device and floating dtype as ``x``, reduced over ``axis``.

    Notes
    -----
    An unmasked NaN gives NaN; an unmasked +inf gives +inf; a slice with no finite entry,
    all entries masked, or a zero-length axis gives -inf.

    Examples
    --------
    >>> import numpy as np
    >>> import portable_softmax as ps
    >>> float(ps.logsumexp(np.array([1000.0, 1000.0])))
    1000.6931471805599
    >>> ps.logsumexp(np.zeros((2, 0)), axis=1)
    array([-inf, -inf])
    """
    if not isinstance(keepdims, bool):
        raise TypeError(f"keepdims must be a bool, got {keepdims!r}")
    # dask-dispatch (temporary): begin
    if array_api_compat.is_dask_array(x):
        out = _dask.logsumexp(x, axis=axis, where=where, keepdims=keepdims)
        if out is not NotImplemented:
            return out
    # dask-dispatch (temporary): end
    if _numpy_fast.eligible(x, axis, where, None):
        out = _numpy_fast.logsumexp(x, _logsumexp_kernel)
        return out if keepdims else out[..., 0]
    slices, (x,) = prepare("x", x, axis=axis, where=where, temperature=None)
    if slices.empty:
        xp = slices.xp
        shape = tuple(1 if i in slices.axes else n for i, n in enumerate(x.shape))
        out = xp.full(shape, -math.inf, dtype=x.dtype, device=array_api_compat.device(x))
    else:
        out = run(_logsumexp_kernel, slices, x, reduces=True)
    return slices.finish(out, reduced=True, keepdims=keepdims)
