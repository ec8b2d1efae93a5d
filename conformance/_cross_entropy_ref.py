"""Independent references for cross-entropy: a float64 NumPy loop, mpmath, finite differences.

Written straight from SPEC section 2, one sample at a time, sharing no code with the
implementation: the smoothed target ``t' = (1 - eps) t + eps / C_n`` over the ``C_n``
unmasked classes, ``l_n = -sum_c w_c t'_c log p_c`` with ``0 * log 0 = 0``, ignored and
all-masked samples out of the loss and of ``D = sum_n sum_c w_c t_nc``, invalid labels NaN,
and the mean ``sum_n l_n / D`` (0 when ``D`` is 0). The gradient reference is central
differences of that loss in float64.
"""

from __future__ import annotations

import math
from typing import Any

import mpmath
import numpy as np

from conformance import _reference as ref
from conformance._framework import assert_array_like

Options = dict[str, Any]


def _rows(a: np.ndarray, axis: int) -> np.ndarray:
    """Samples as rows: classes moved last, the other axes flattened (C order)."""
    moved = np.moveaxis(a, axis, -1)
    return moved.reshape(-1, moved.shape[-1])


def per_sample(
    x: np.ndarray, target: np.ndarray, *, axis: int = -1, log: Any = None, **options: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample losses and denominators ``(l_n, d_n)`` in the loss's sample shape.

    ``log`` evaluates ``log p`` of one row of unmasked logits (float64 NumPy by default;
    the mpmath reference passes its own).
    """
    x = np.asarray(x, dtype=np.float64)
    axis = axis % x.ndim
    hard = target.ndim == x.ndim - 1
    weight = options.get("weight")
    eps = options.get("label_smoothing", 0.0)
    ignore = options.get("ignore_index")
    where = options.get("where")
    mask = np.ones(x.shape, bool) if where is None else np.broadcast_to(where, x.shape)
    xs, ms = _rows(x, axis), _rows(mask, axis)
    ts = np.asarray(target).reshape(-1) if hard else _rows(np.asarray(target, np.float64), axis)
    c = x.shape[axis]
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    log = log or _log_softmax_row
    losses, denominators = [], []
    for row, live, t in zip(xs, ms, ts, strict=True):
        loss, d = _sample(row, live, t, w, eps, ignore, hard, log)
        losses.append(loss)
        denominators.append(d)
    shape = tuple(n for i, n in enumerate(x.shape) if i != axis)
    return np.array(losses, dtype=object).reshape(shape), np.array(denominators).reshape(shape)


def _sample(
    row: np.ndarray,
    live: np.ndarray,
    t: Any,
    w: np.ndarray,
    eps: float,
    ignore: int | None,
    hard: bool,
    log: Any,
) -> tuple[Any, float]:
    c_n = int(live.sum())
    if c_n == 0:
        return 0.0, 0.0
    if hard:
        label = int(t)
        if ignore is not None and label == ignore:
            return 0.0, 0.0
        if not (0 <= label < row.size and live[label]):
            return math.nan, 0.0
        target = np.zeros(row.size)
        target[label] = 1.0
    else:
        target = np.where(live, t, 0.0)
    smoothed = np.where(live, (1 - eps) * target + eps / c_n, 0.0)
    logp = log(row[live])
    loss: Any = 0.0
    for wc, tc, lp in zip(w[live], smoothed[live], logp, strict=True):
        if wc * tc != 0:
            loss = loss - wc * tc * lp
    return loss, float(np.sum(w * target))


def _log_softmax_row(row: np.ndarray) -> np.ndarray:
    m = row.max()
    if not np.isfinite(m):
        m = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return row - m - np.log(np.sum(np.exp(row - m)))


def _mp_log_softmax_row(row: np.ndarray) -> list[Any]:
    values = [mpmath.mpf(float(v)) for v in row]
    m = max(values)
    lse = m + mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in values))
    return [v - lse for v in values]


def _memo(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` memoised on the argument values (every backend slot of a run
    asks for the same references), as a fresh copy: callers may write to what they get."""
    out = ref.cached(fn, *args, **kwargs)
    return out.copy() if isinstance(out, np.ndarray) else out


def mp_losses(x: np.ndarray, target: np.ndarray, **options: Any) -> np.ndarray:
    """Per-sample losses in mpmath at 50 digits (finite logits), rounded once to float64."""
    return _memo(_mp_losses, x, target, **options)  # type: ignore[no-any-return]


def _mp_losses(x: np.ndarray, target: np.ndarray, **options: Any) -> np.ndarray:
    with mpmath.workdps(50):
        losses, _ = per_sample(x, target, log=_mp_log_softmax_row, **options)
        return np.vectorize(float, otypes=[np.float64])(losses)


def loss(x: np.ndarray, target: np.ndarray, *, reduction: str = "mean", **options: Any) -> Any:
    """The reduced loss in float64: per-sample array, sum, or weighted mean (0 if D = 0)."""
    return _memo(_loss, x, target, reduction=reduction, **options)


def _loss(x: np.ndarray, target: np.ndarray, *, reduction: str, **options: Any) -> Any:
    losses, d = per_sample(x, target, **options)
    losses = losses.astype(np.float64)
    if reduction == "none":
        return losses
    total = float(np.sum(losses))
    if reduction == "sum":
        return total
    denominator = float(np.sum(d))
    return 0.0 if denominator == 0 and not math.isnan(total) else total / denominator


def fd_gradient(
    x: np.ndarray,
    target: np.ndarray,
    *,
    reduction: str = "mean",
    grad: np.ndarray | float | None = None,
    h: float = 1e-5,
    **options: Any,
) -> np.ndarray:
    """``d/dx sum(grad * loss)`` by central differences of :func:`loss` in float64."""
    return _memo(_fd_gradient, x, target, reduction=reduction, grad=grad, h=h, **options)  # type: ignore[no-any-return]


def _fd_gradient(
    x: np.ndarray,
    target: np.ndarray,
    *,
    reduction: str,
    grad: np.ndarray | float | None,
    h: float,
    **options: Any,
) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    g = np.ones(()) if grad is None else np.asarray(grad, dtype=np.float64)
    out = np.zeros(x.shape)
    for idx in np.ndindex(*x.shape):
        step = h * max(1.0, abs(x[idx]))
        plus, minus = x.copy(), x.copy()
        plus[idx] += step
        minus[idx] -= step
        f_plus = np.sum(g * _loss(plus, target, reduction=reduction, **options))
        f_minus = np.sum(g * _loss(minus, target, reduction=reduction, **options))
        out[idx] = (f_plus - f_minus) / (2 * step)
    return out


def send(backend: Any, options: Options, dtype: str) -> Options:
    """Options with NumPy arrays made backend arrays: masks as bool, the rest in ``dtype``."""
    out: Options = {}
    for key, value in options.items():
        if isinstance(value, np.ndarray):
            value = backend.asarray(value, "bool" if value.dtype == np.bool_ else dtype)
        out[key] = value
    return out


def run(
    backend: Any,
    fn: Any,
    x: np.ndarray,
    target: np.ndarray,
    dtype: str,
    *,
    shape: tuple[int, ...],
    target_dtype: str | None = None,
    **options: Any,
) -> np.ndarray:
    """Call ``fn(logits, target, **options)`` on backend arrays; check kind; return float64.

    Integer targets go as the backend's widest integer, others in ``target_dtype`` (default
    ``dtype``).
    """
    __tracebackhide__ = True
    if target_dtype is None:
        target_dtype = backend.int_dtype() if target.dtype.kind in "iu" else dtype
    logits = backend.asarray(x, dtype)
    tgt = backend.asarray(target, target_dtype)
    out = fn(logits, tgt, **send(backend, options, dtype))
    shown = ", ".join(
        f"{k}={'array' if isinstance(v, np.ndarray) else v!r}" for k, v in options.items()
    )
    assert_array_like(
        out,
        xp=backend.xp,
        dtype=dtype,
        shape=shape,
        device=backend.device,
        context=f"{getattr(fn, '__name__', fn)}({dtype}{x.shape}, {shown})",
    )
    return np.asarray(backend.to_numpy(out), dtype=np.float64)
