"""softmax, log_softmax and logsumexp: the public functions (validate, dispatch, finish).

The numerical work happens on the path the dispatcher picks: a backend's fast path for the
common cases (``portable_softmax._backends``), the portable kernels of
``portable_softmax._generic`` for everything else, with the same semantics at every edge.
"""

from __future__ import annotations

from typing import NoReturn

from ._dispatch import dispatch
from ._lib._arguments import Array, ArrayT, Axis
from ._lib._describe import describe
from ._lib._signatures import extra_positional, keyword_options

__all__ = ["log_softmax", "logsumexp", "softmax"]


@keyword_options
def softmax(
    x: ArrayT,
    /,
    *extra: NoReturn,
    axis: Axis = -1,
    where: Array | None = None,
    temperature: float | Array | None = None,
    out: ArrayT | None = None,
) -> ArrayT:
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
    out : array, optional
        Where to write the result: an array of the result's shape, dtype, library and device,
        returned. It may be ``x`` itself (in place) or an array that shares no memory with the
        inputs; JAX and Dask arrays cannot be written in place (``TypeError``).

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
    if extra:
        raise extra_positional(softmax, extra)
    call = describe("softmax", x, axis=axis, where=where, temperature=temperature, out=out)
    return dispatch(call)  # type: ignore[no-any-return]


@keyword_options
def log_softmax(
    x: ArrayT,
    /,
    *extra: NoReturn,
    axis: Axis = -1,
    where: Array | None = None,
    temperature: float | Array | None = None,
    out: ArrayT | None = None,
) -> ArrayT:
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
    out : array, optional
        Where to write the result: an array of the result's shape, dtype, library and device,
        returned. It may be ``x`` itself (in place) or an array that shares no memory with the
        inputs; JAX and Dask arrays cannot be written in place (``TypeError``).

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
    if extra:
        raise extra_positional(log_softmax, extra)
    call = describe("log_softmax", x, axis=axis, where=where, temperature=temperature, out=out)
    return dispatch(call)  # type: ignore[no-any-return]


@keyword_options
def logsumexp(
    x: ArrayT,
    /,
    *extra: NoReturn,
    axis: Axis = -1,
    where: Array | None = None,
    keepdims: bool = False,
) -> ArrayT:
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
    if extra:
        raise extra_positional(logsumexp, extra)
    call = describe("logsumexp", x, axis=axis, where=where, temperature=None, keepdims=keepdims)
    return dispatch(call)  # type: ignore[no-any-return]
