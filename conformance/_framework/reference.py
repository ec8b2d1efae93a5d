"""Independent references: softmax and friends in mpmath at 50 significant digits.

Slow and exact enough that their own error is far below every bound; inputs are the
already-rounded values the backend saw (pass ``backend.to_numpy(x)``).
"""

from __future__ import annotations

from collections.abc import Callable

import mpmath
import numpy as np

DIGITS = 50


def _along(
    x: np.ndarray, axis: int, row_fn: Callable[[list[mpmath.mpf]], list[mpmath.mpf]]
) -> np.ndarray:
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    out = np.empty(x.shape, dtype=np.float64)
    with mpmath.workdps(DIGITS):
        for idx in np.ndindex(*x.shape[:-1]):
            row = [mpmath.mpf(float(v)) for v in x[idx]]
            out[idx] = [float(v) for v in row_fn(row)]
    return np.moveaxis(out, -1, axis)


def _softmax_row(row: list[mpmath.mpf]) -> list[mpmath.mpf]:
    m = max(row)
    e = [mpmath.exp(v - m) for v in row]
    s = mpmath.fsum(e)
    return [v / s for v in e]


def _log_softmax_row(row: list[mpmath.mpf]) -> list[mpmath.mpf]:
    m = max(row)
    lse = m + mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in row))
    return [v - lse for v in row]


def mp_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax of finite ``x`` along one axis, rounded once to float64."""
    return _along(x, axis, _softmax_row)


def mp_log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Log-softmax of finite ``x`` along one axis, rounded once to float64."""
    return _along(x, axis, _log_softmax_row)


def mp_softmax_vjp_fd(x: np.ndarray, g: np.ndarray, axis: int = -1, h: float = 1e-20) -> np.ndarray:
    """VJP of softmax by central finite differences in mpmath (error ~h**2)."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    g = np.moveaxis(np.asarray(g, dtype=np.float64), axis, -1)
    out = np.empty(x.shape, dtype=np.float64)
    with mpmath.workdps(DIGITS):
        hh = mpmath.mpf(h)
        for idx in np.ndindex(*x.shape[:-1]):
            row = [mpmath.mpf(float(v)) for v in x[idx]]
            gr = [mpmath.mpf(float(v)) for v in g[idx]]
            for j in range(len(row)):
                plus = list(row)
                minus = list(row)
                plus[j] += hh
                minus[j] -= hh
                yp, ym = _softmax_row(plus), _softmax_row(minus)
                out[(*idx, j)] = float(
                    mpmath.fsum(gi * (a - b) for gi, a, b in zip(gr, yp, ym, strict=True))
                    / (2 * hh)
                )
    return np.moveaxis(out, -1, axis)
