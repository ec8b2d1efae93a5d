"""Deliberately broken variants of portable_softmax: the suite must catch every one.

Each mutant is ``portable_softmax`` with one defect, usable as an implementation under test:
``pytest conformance --backend numpy --impl conformance.mutants:diagonal_backward``. A run
against a mutant must fail; ``test_mutants.py`` checks that it does, and names the check
expected to catch it. The defects are the classic softmax bugs:

==========================  ==============================================================
``diagonal_backward``       softmax VJP with only the Jacobian's diagonal: ``g y (1 - y)``
``no_max_shift``            ``exp(x) / sum(exp(x))`` without subtracting the max
``nan_for_neg_inf_rows``    NaN (not 0) for slices that are all -inf
``float32_to_float64``      float32 input returned as float64
``mutates_input``           writes the result into the input array
``off_by_1e4``              forward outputs off by a relative 1e-4
``mean_counts_ignored``     cross-entropy mean whose denominator counts ignored samples
``axis_ignored``            always reduces over the last axis
==========================  ==============================================================

Mutants work on NumPy arrays (the CI job runs them there); the wrappers keep the wrapped
function's signature, so the suite sees the same options as for portable_softmax.

>>> import numpy as np
>>> from conformance.mutants import off_by_1e4
>>> float(off_by_1e4.softmax(np.zeros(2))[0])
0.50005
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import array_api_compat

import portable_softmax as ps


class Mutant:
    """portable_softmax with some functions replaced; everything else is delegated."""

    def __init__(self, name: str, **replaced: Callable[..., Any]) -> None:
        self.__conformance_name__ = f"mutant-{name}"
        self.__name__ = f"conformance.mutants:{name}"
        self._replaced = replaced

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if attr in self._replaced:
            return self._replaced[attr]
        return getattr(ps, attr)

    def __repr__(self) -> str:
        return f"<{self.__name__}>"


def _like(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give the replacement the signature (and docs) of ``portable_softmax.<name>``."""
    original = getattr(ps, name, None)
    if original is None:
        return lambda fn: fn
    return functools.wraps(original)


def _reduced(axis: Any) -> Any:
    return axis if axis is None or isinstance(axis, tuple) else (axis,)


# --- the defects -------------------------------------------------------------------------------


@_like("softmax_backward")
def _diagonal_backward(grad: Any, y: Any, /, **options: Any) -> Any:
    ps.softmax_backward(grad, y, **options)  # keep the argument checks: one defect only
    t = options.get("temperature")
    out = grad * y * (1 - y)
    return out if t is None else out / t


@_like("softmax")
def _no_max_shift(x: Any, /, *, axis: Any = -1, where: Any = None, temperature: Any = None) -> Any:
    ps.softmax(x, axis=axis, where=where, temperature=temperature)  # argument checks
    xp = array_api_compat.array_namespace(x)
    if not xp.isdtype(x.dtype, "real floating"):
        x = xp.astype(x, xp.float64)
    e = xp.exp(x if temperature is None else x / temperature)
    if where is not None:
        e = xp.where(where, e, xp.zeros_like(e))
    return e / xp.sum(e, axis=_reduced(axis), keepdims=True)


@_like("softmax")
def _nan_for_neg_inf_rows(x: Any, /, *, axis: Any = -1, **options: Any) -> Any:
    xp = array_api_compat.array_namespace(x)
    out = ps.softmax(x, axis=axis, **options)
    dead = xp.all(x == -xp.inf, axis=_reduced(axis), keepdims=True)
    return xp.where(dead, xp.asarray(xp.nan, dtype=out.dtype), out)


def _to_float64(name: str) -> Callable[..., Any]:
    original = getattr(ps, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **options: Any) -> Any:
        out = original(*args, **options)
        xp = array_api_compat.array_namespace(out)
        return xp.astype(out, xp.float64) if out.dtype == xp.float32 else out

    return wrapper


@_like("softmax")
def _mutates_input(x: Any, /, **options: Any) -> Any:
    out = ps.softmax(x, **options)
    if out.dtype == x.dtype and out.shape == x.shape:
        x[...] = out  # "in place, to save memory"
    return out


def _scaled(name: str, factor: float) -> Callable[..., Any]:
    original = getattr(ps, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **options: Any) -> Any:
        return original(*args, **options) * factor

    return wrapper


def _last_axis(name: str) -> Callable[..., Any]:
    original = getattr(ps, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **options: Any) -> Any:
        if options.get("axis", -1) is not None:
            options["axis"] = -1
        return original(*args, **options)

    return wrapper


@_like("cross_entropy")
def _mean_counts_ignored(logits: Any, target: Any, /, **options: Any) -> Any:
    mean = ps.cross_entropy(logits, target, **options)
    ignore = options.get("ignore_index")
    if options.get("reduction", "mean") != "mean" or ignore is None:
        return mean
    xp = array_api_compat.array_namespace(logits)
    total = ps.cross_entropy(logits, target, **{**options, "reduction": "sum"})
    d = total / mean  # the right denominator, the summed weights of the counted samples
    ignored = xp.sum(xp.astype(target == ignore, total.dtype))
    # the bug: each ignored sample adds one to the denominator
    return xp.where(mean == 0, mean, total / (d + ignored))


_FORWARD = ("softmax", "log_softmax", "logsumexp")

diagonal_backward = Mutant("diagonal_backward", softmax_backward=_diagonal_backward)
no_max_shift = Mutant("no_max_shift", softmax=_no_max_shift)
nan_for_neg_inf_rows = Mutant("nan_for_neg_inf_rows", softmax=_nan_for_neg_inf_rows)
float32_to_float64 = Mutant("float32_to_float64", **{n: _to_float64(n) for n in _FORWARD})
mutates_input = Mutant("mutates_input", softmax=_mutates_input)
off_by_1e4 = Mutant("off_by_1e4", **{n: _scaled(n, 1 + 1e-4) for n in _FORWARD})
mean_counts_ignored = Mutant(
    "mean_counts_ignored",
    # until portable_softmax has cross_entropy there is nothing to break
    **({"cross_entropy": _mean_counts_ignored} if hasattr(ps, "cross_entropy") else {}),
)
axis_ignored = Mutant("axis_ignored", **{n: _last_axis(n) for n in _FORWARD})

MUTANTS: dict[str, Mutant] = {
    m.__conformance_name__.removeprefix("mutant-"): m
    for m in (
        diagonal_backward,
        no_max_shift,
        nan_for_neg_inf_rows,
        float32_to_float64,
        mutates_input,
        off_by_1e4,
        mean_counts_ignored,
        axis_ignored,
    )
}
