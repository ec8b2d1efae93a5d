"""High-precision references for the softmax family and the SPEC section 3 error bounds.

Every reference is computed with mpmath at 50 significant digits, one slice at a time, on the
same (already rounded) float64 values the implementation receives, and applies the precedence
table of SPEC section 2 itself (mask, then NaN, then +inf, then no finite entry, then the
formula), so a test that compares against it checks the semantics and the accuracy at once.
Results come back as double-double pairs ``(hi, lo)``: ``hi`` is the float64 nearest to the
exact value and ``lo`` the float64 nearest to the remainder, so that an error of a float64
output can be measured far below one float64 ulp.

For long slices (100k entries), where mpmath would be slow, ``longdouble_reference`` computes
with ``np.longdouble`` (64-bit significand on x86) and an exactly rounded sum (``math.fsum``
over a two-term split of every summand), about 2000 times finer than float64's epsilon.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import mpmath
import numpy as np

DPS = 50
Axis = int | tuple[int, ...] | None

# eps, smallest normal, largest finite value, significand bits (with the implicit one)
_FLOAT_INFO: dict[str, tuple[float, float, float, int]] = {
    "float16": (2.0**-10, 2.0**-14, 65504.0, 11),
    "bfloat16": (2.0**-7, 2.0**-126, float.fromhex("0x1.fep127"), 8),
    "float32": (2.0**-23, 2.0**-126, float.fromhex("0x1.fffffep127"), 24),
    "float64": (2.0**-52, 2.0**-1022, float.fromhex("0x1.fffffffffffffp1023"), 53),
}
HALF = ("float16", "bfloat16")


@dataclass(frozen=True)
class Ref:
    """Exact values as a double-double pair; non-finite values are in ``hi`` with ``lo = 0``."""

    hi: np.ndarray
    lo: np.ndarray


# --------------------------------------------------------------------------------------------
# dtype helpers


def finfo(dtype: str) -> tuple[float, float, float, int]:
    """Return ``(eps, smallest_normal, max, significand_bits)`` of a floating dtype name."""
    return _FLOAT_INFO[dtype]


def round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """Round float64 values to ``dtype`` (nearest even, overflow to inf); return float64."""
    x = np.asarray(x, dtype=np.float64)
    if dtype == "bfloat16":
        f32 = x.astype(np.float32)
        bits = f32.view(np.uint32).astype(np.uint64)
        finite = np.isfinite(f32)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16
        bits = np.where(finite, rounded, bits)
        return bits.astype(np.uint32).view(np.float32).astype(np.float64)
    with np.errstate(over="ignore"):
        return x.astype(dtype).astype(np.float64)


def ulp(values: np.ndarray, dtype: str) -> np.ndarray:
    """Spacing of ``dtype`` at each (finite) value, subnormal range included."""
    eps, tiny, _, _ = finfo(dtype)
    a = np.abs(np.asarray(values, dtype=np.float64))
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(np.maximum(a, tiny)))
    return np.exp2(e) * eps


# --------------------------------------------------------------------------------------------
# slicing


def normalize_axis(axis: Axis, ndim: int) -> tuple[int, ...]:
    """Reduced axes as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim for a in axes))


def _to_rows(a: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, ...]]:
    keep = [i for i in range(a.ndim) if i not in axes]
    moved = np.transpose(a, keep + list(axes))
    outer = moved.shape[: len(keep)]
    k = math.prod(moved.shape[len(keep) :])
    return moved.reshape(math.prod(outer), k), moved.shape


def _from_rows(rows: np.ndarray, moved_shape: tuple[int, ...], axes: tuple[int, ...]) -> np.ndarray:
    ndim = len(moved_shape)
    keep = [i for i in range(ndim) if i not in axes]
    perm = keep + list(axes)
    return np.transpose(rows.reshape(moved_shape), np.argsort(perm))


def _row_temperature(
    temperature: float | np.ndarray | None, shape: tuple[int, ...], axes: tuple[int, ...]
) -> np.ndarray:
    """One temperature per slice (as float64), from a float or a keepdims-shaped array."""
    if temperature is None:
        temperature = 1.0
    t = np.broadcast_to(np.asarray(temperature, dtype=np.float64), shape)
    rows, _ = _to_rows(t, axes)
    return rows[:, 0] if rows.shape[1] else np.ones(rows.shape[0])


def _dd(v: mpmath.mpf | float) -> tuple[float, float]:
    hi = float(v)
    if not math.isfinite(hi):
        return hi, 0.0
    return hi, float(v - hi)


def _prepare(
    x: np.ndarray, axis: Axis, where: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], tuple[int, ...]]:
    x = np.asarray(x, dtype=np.float64)
    axes = normalize_axis(axis, x.ndim)
    w = np.ones(x.shape, bool) if where is None else np.broadcast_to(where, x.shape)
    xr, moved = _to_rows(x, axes)
    wr, _ = _to_rows(np.asarray(w), axes)
    return xr, wr, moved, axes


# --------------------------------------------------------------------------------------------
# forward references


def _row_forward(
    xs: Sequence[float], ms: Sequence[bool], t: float, log: bool
) -> list[tuple[float, float]]:
    """softmax (or log_softmax) of one slice by the SPEC section 2 table."""
    outside = -math.inf if log else 0.0
    out: list[tuple[float, float]] = [(outside, 0.0)] * len(xs)
    idx = [i for i, m in enumerate(ms) if m]
    vals = [xs[i] for i in idx]
    if any(math.isnan(v) for v in vals):  # row 2
        for i in idx:
            out[i] = (math.nan, 0.0)
        return out
    k = sum(1 for v in vals if v == math.inf)
    if k:  # row 3
        share = _dd(-mpmath.log(k)) if log else _dd(mpmath.mpf(1) / k)
        for i in idx:
            if xs[i] == math.inf:
                out[i] = share
        return out
    if not any(math.isfinite(v) for v in vals):  # row 4
        return out
    if not t > 0:  # a non-positive or NaN temperature entry makes its slice NaN
        for i in idx:
            out[i] = (math.nan, 0.0)
        return out
    m = mpmath.mpf(max(vals))
    tm = mpmath.mpf(t)
    z = {i: (mpmath.mpf(xs[i]) - m) / tm for i in idx if math.isfinite(xs[i])}
    e = {i: mpmath.exp(v) for i, v in z.items()}
    s = mpmath.fsum(e.values())
    logs = mpmath.log(s)
    for i in idx:
        if i in z:
            out[i] = _dd(z[i] - logs) if log else _dd(e[i] / s)
    return out


def _forward(
    x: np.ndarray,
    axis: Axis,
    where: np.ndarray | None,
    temperature: float | np.ndarray | None,
    log: bool,
) -> Ref:
    xr, wr, moved, axes = _prepare(x, axis, where)
    tr = _row_temperature(temperature, _keepdims_shape(np.shape(x), axes), axes)
    hi = np.empty(xr.shape)
    lo = np.empty(xr.shape)
    with mpmath.workdps(DPS):
        for r in range(xr.shape[0]):
            row = _row_forward(xr[r].tolist(), wr[r].tolist(), float(tr[r]), log)
            if row:
                hi[r], lo[r] = zip(*row, strict=True)
    return Ref(_from_rows(hi, moved, axes), _from_rows(lo, moved, axes))


def _keepdims_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def softmax(
    x: np.ndarray,
    *,
    axis: Axis = -1,
    where: np.ndarray | None = None,
    temperature: float | np.ndarray | None = None,
) -> Ref:
    """Exact softmax of float64 values ``x`` (SPEC sections 1 and 2)."""
    return _forward(x, axis, where, temperature, log=False)


def log_softmax(
    x: np.ndarray,
    *,
    axis: Axis = -1,
    where: np.ndarray | None = None,
    temperature: float | np.ndarray | None = None,
) -> Ref:
    """Exact log_softmax of float64 values ``x`` (SPEC sections 1 and 2)."""
    return _forward(x, axis, where, temperature, log=True)


def logsumexp(
    x: np.ndarray, *, axis: Axis = -1, where: np.ndarray | None = None, keepdims: bool = False
) -> Ref:
    """Exact logsumexp of float64 values ``x``; masked entries are left out."""
    xr, wr, _, axes = _prepare(x, axis, where)
    shape = np.shape(x)
    out_shape = (
        _keepdims_shape(shape, axes)
        if keepdims
        else tuple(s for i, s in enumerate(shape) if i not in axes)
    )
    hi = np.empty(xr.shape[0])
    lo = np.empty(xr.shape[0])
    with mpmath.workdps(DPS):
        for r in range(xr.shape[0]):
            vals = [v for v, m in zip(xr[r].tolist(), wr[r].tolist(), strict=True) if m]
            if any(math.isnan(v) for v in vals):
                hi[r], lo[r] = math.nan, 0.0
            elif math.inf in vals:
                hi[r], lo[r] = math.inf, 0.0
            elif not any(math.isfinite(v) for v in vals):
                hi[r], lo[r] = -math.inf, 0.0
            else:
                m = mpmath.mpf(max(vals))
                s = mpmath.fsum(mpmath.exp(mpmath.mpf(v) - m) for v in vals if v != -math.inf)
                hi[r], lo[r] = _dd(m + mpmath.log(s))
    return Ref(hi.reshape(out_shape), lo.reshape(out_shape))


def longdouble_reference(x: np.ndarray, kind: str, *, axis: Axis = -1) -> Ref:
    """softmax, log_softmax or logsumexp of long finite slices, without mpmath.

    Computed in ``np.longdouble`` (64-bit significand on x86) with an exactly rounded sum
    (``math.fsum`` over a two-term split of every summand): about 1e-18 relative, far
    below the float32 and float64 bounds, and fast enough for 100k-entry slices.
    """
    if np.finfo(np.longdouble).eps > 1e-18:  # pragma: no cover - platform without 80-bit
        raise RuntimeError("np.longdouble is not extended precision on this platform")
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError("longdouble_reference takes finite input only")
    axes = normalize_axis(axis, x.ndim)
    xr, moved = _to_rows(x, axes)
    xl = xr.astype(np.longdouble)
    m = xl.max(axis=1, keepdims=True)
    z = xl - m
    e = np.exp(z)
    e_hi = e.astype(np.float64)
    e_lo = (e - e_hi).astype(np.float64)
    sums = []
    for a, b in zip(e_hi, e_lo, strict=True):
        terms = [*a.tolist(), *b.tolist()]
        s_hi = math.fsum(terms)
        s_lo = math.fsum([*terms, -s_hi])  # the remainder fsum rounded away
        sums.append(np.longdouble(s_hi) + np.longdouble(s_lo))
    s = np.array(sums, dtype=np.longdouble)[:, None]
    if kind == "logsumexp":
        y = (m + np.log(s))[:, 0]
        hi = y.astype(np.float64)
        lo = (y - hi).astype(np.float64)
        out_shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        return Ref(hi.reshape(out_shape), lo.reshape(out_shape))
    y = z - np.log(s) if kind == "log_softmax" else e / s
    hi = y.astype(np.float64)
    lo = (y - hi).astype(np.float64)
    return Ref(_from_rows(hi, moved, axes), _from_rows(lo, moved, axes))


# --------------------------------------------------------------------------------------------
# derivative references (exact evaluation of the SPEC section 1 formulas on given inputs)


def _derivative(
    kind: str,
    g: np.ndarray,
    y: np.ndarray,
    axis: Axis,
    where: np.ndarray | None,
    temperature: float | np.ndarray | None,
) -> Ref:
    g = np.asarray(g, dtype=np.float64)
    gr, wr, moved, axes = _prepare(g, axis, where)
    yr, _ = _to_rows(np.asarray(y, dtype=np.float64), axes)
    tr = _row_temperature(temperature, _keepdims_shape(g.shape, axes), axes)
    hi = np.zeros(gr.shape)
    lo = np.zeros(gr.shape)
    with mpmath.workdps(DPS):
        for r in range(gr.shape[0]):
            idx = [i for i, m in enumerate(wr[r].tolist()) if m]
            t = mpmath.mpf(float(tr[r]))
            gg = {i: mpmath.mpf(float(gr[r, i])) for i in idx}
            if kind.startswith("softmax"):
                yy = {i: mpmath.mpf(float(yr[r, i])) for i in idx}
                s = mpmath.fsum(gg[i] * yy[i] for i in idx)
                vals = {i: yy[i] * (gg[i] - s) / t for i in idx}
            else:
                p = {i: mpmath.exp(mpmath.mpf(float(yr[r, i]))) for i in idx}
                if kind == "log_softmax_vjp":
                    s = mpmath.fsum(gg.values())
                    vals = {i: (gg[i] - p[i] * s) / t for i in idx}
                else:
                    s = mpmath.fsum(p[i] * gg[i] for i in idx)
                    vals = {i: (gg[i] - s) / t for i in idx}
            for i, v in vals.items():
                hi[r, i], lo[r, i] = _dd(v)
    return Ref(_from_rows(hi, moved, axes), _from_rows(lo, moved, axes))


def softmax_vjp(
    g: np.ndarray,
    y: np.ndarray,
    *,
    axis: Axis = -1,
    where: np.ndarray | None = None,
    temperature: float | np.ndarray | None = None,
) -> Ref:
    """Exact ``y * (g - sum(g*y)) / T`` over unmasked entries; masked entries 0.

    The softmax Jacobian is symmetric, so this is also the JVP with ``g`` the tangent.
    """
    return _derivative("softmax", g, y, axis, where, temperature)


def log_softmax_vjp(
    g: np.ndarray,
    logp: np.ndarray,
    *,
    axis: Axis = -1,
    where: np.ndarray | None = None,
    temperature: float | np.ndarray | None = None,
) -> Ref:
    """Exact ``(g - exp(logp) * sum(g)) / T`` over unmasked entries; masked entries 0."""
    return _derivative("log_softmax_vjp", g, logp, axis, where, temperature)


def log_softmax_jvp(
    t: np.ndarray,
    logp: np.ndarray,
    *,
    axis: Axis = -1,
    where: np.ndarray | None = None,
    temperature: float | np.ndarray | None = None,
) -> Ref:
    """Exact ``(t - sum(exp(logp) * t)) / T`` over unmasked entries; masked entries 0."""
    return _derivative("log_softmax_jvp", t, logp, axis, where, temperature)


def jacobian(x: Sequence[float], *, log: bool, temperature: float = 1.0) -> mpmath.matrix:
    """Explicit Jacobian ``d out_i / d x_j`` of one finite slice, built from its definition.

    softmax: ``(diag(y) - y y^T) / T``; log_softmax: ``(I - 1 p^T) / T``.
    """
    with mpmath.workdps(DPS):
        n = len(x)
        xs = [mpmath.mpf(v) for v in x]
        m = max(xs)
        t = mpmath.mpf(temperature)
        e = [mpmath.exp((v - m) / t) for v in xs]
        s = mpmath.fsum(e)
        y = [v / s for v in e]
        jac = mpmath.matrix(n, n)
        for i in range(n):
            for j in range(n):
                if log:
                    jac[i, j] = ((1 if i == j else 0) - y[j]) / t
                else:
                    jac[i, j] = ((y[i] if i == j else 0) - y[i] * y[j]) / t
        return jac


def central_difference(
    f: Callable[[list[mpmath.mpf]], list[mpmath.mpf]],
    x: Sequence[float],
    direction: Sequence[float],
) -> list[float]:
    """``(f(x + h d) - f(x - h d)) / 2h`` at 50 digits with ``h = 1e-20`` (error ~1e-30)."""
    with mpmath.workdps(DPS):
        h = mpmath.mpf("1e-20")
        xp = [mpmath.mpf(a) + h * mpmath.mpf(d) for a, d in zip(x, direction, strict=True)]
        xm = [mpmath.mpf(a) - h * mpmath.mpf(d) for a, d in zip(x, direction, strict=True)]
        return [float((a - b) / (2 * h)) for a, b in zip(f(xp), f(xm), strict=True)]


def mp_softmax(
    x: list[mpmath.mpf], *, log: bool = False, temperature: float = 1.0
) -> list[mpmath.mpf]:
    """softmax / log_softmax of one finite slice of mpf values (for finite differences)."""
    m = max(x)
    t = mpmath.mpf(temperature)
    z = [(v - m) / t for v in x]
    e = [mpmath.exp(v) for v in z]
    s = mpmath.fsum(e)
    return [v - mpmath.log(s) for v in z] if log else [v / s for v in e]


# --------------------------------------------------------------------------------------------
# SPEC section 3 bounds, in units of eps, per entry


def _log_terms(n: int) -> float:
    return 8 + 2 * math.ceil(math.log2(n)) if n > 1 else 8.0


def slice_size(shape: tuple[int, ...], axis: Axis) -> int:
    """Number of entries ``n`` in one slice."""
    axes = normalize_axis(axis, len(shape))
    return math.prod(shape[a] for a in axes)


def spread(
    x: np.ndarray, axis: Axis, where: np.ndarray | None, temperature: float | np.ndarray | None
) -> np.ndarray:
    """``|x_i - m| / T`` per entry (0 where it is not finite), the exp amplification term."""
    x = np.asarray(x, dtype=np.float64)
    axes = normalize_axis(axis, x.ndim)
    w = np.ones(x.shape, bool) if where is None else np.broadcast_to(where, x.shape)
    finite = np.isfinite(x) & w
    if x.size == 0:
        return np.zeros(x.shape)
    m = np.max(np.where(finite, x, -np.inf), axis=axes, keepdims=True)
    t = 1.0 if temperature is None else np.asarray(temperature, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(x - m) / t
    return np.where(np.isfinite(d), d, 0.0)


def bound_softmax(
    x: np.ndarray,
    axis: Axis = -1,
    where: np.ndarray | None = None,
    temperature: float | np.ndarray | None = None,
) -> np.ndarray:
    """Relative bound ``|x_i - m|/T + 8 + 2 ceil(log2 n)`` in eps, per entry."""
    return spread(x, axis, where, temperature) + _log_terms(slice_size(np.shape(x), axis))


def bound_log_softmax(
    x: np.ndarray,
    axis: Axis = -1,
    where: np.ndarray | None = None,
    temperature: float | np.ndarray | None = None,
) -> np.ndarray:
    """Absolute bound ``|x_i - m|/T + log n + 8 + 2 ceil(log2 n)`` in eps, per entry."""
    n = slice_size(np.shape(x), axis)
    return spread(x, axis, where, temperature) + math.log(max(n, 1)) + _log_terms(n)


def bound_logsumexp(
    x: np.ndarray, axis: Axis = -1, where: np.ndarray | None = None, keepdims: bool = False
) -> np.ndarray:
    """Absolute bound ``|m| + log n + 8 + 2 ceil(log2 n)`` in eps, per slice."""
    x = np.asarray(x, dtype=np.float64)
    axes = normalize_axis(axis, x.ndim)
    n = slice_size(x.shape, axis)
    w = np.ones(x.shape, bool) if where is None else np.broadcast_to(where, x.shape)
    if x.size == 0:
        m = np.zeros(_keepdims_shape(x.shape, axes))
    else:
        m = np.max(np.where(np.isfinite(x) & w, x, -np.inf), axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), np.abs(m), 0.0)
    if not keepdims:
        m = np.squeeze(m, axis=axes)
    return m + math.log(max(n, 1)) + _log_terms(n)


def bound_derivative(n: int) -> float:
    """``16 + 2 ceil(log2 n)``: the SPEC section 3 derivative constant."""
    return 16 + 2 * math.ceil(math.log2(n)) if n > 1 else 16.0


# --------------------------------------------------------------------------------------------
# measuring an output against a reference


@dataclass(frozen=True)
class Measure:
    """Per-entry error of an output against a reference, in eps and relative to the bound."""

    err_eps: np.ndarray  # error in units of the bound's eps, as if the bound were linear
    ratio: np.ndarray  # error / allowed error; <= 1 passes, inf for a wrong special value

    def worst(self) -> int:
        """Flat index of the entry with the largest ratio (NaN ratios first)."""
        r = np.where(np.isnan(self.ratio), np.inf, self.ratio).ravel()
        return int(np.argmax(r)) if r.size else -1


def measure(
    out: np.ndarray,
    ref: Ref,
    bound: np.ndarray | float,
    dtype: str,
    *,
    relative: bool,
    floor: np.ndarray | float = 0.0,
    scale: np.ndarray | None = None,
) -> Measure:
    """Compare ``out`` with ``ref`` under the SPEC section 3 bound (in eps) of ``dtype``.

    ``relative`` bounds scale with ``|ref|`` and, below the smallest normal, become absolute
    (the relative bound at the smallest normal); otherwise ``bound`` is absolute (times eps) plus
    ``floor`` (an absolute error, not in eps); an explicit ``scale`` replaces ``|ref|`` or 1
    (the derivative bounds scale with ``y_i (|g_i| + sum_j |g_j| y_j) / T``).
    float16/bfloat16 outputs are held to the float32 bound plus one unit in the last place
    of the half-precision result.
    Non-finite reference values must be matched exactly; a reference beyond the dtype's range
    may be matched by the infinity it rounds to.
    """
    out = np.asarray(out, dtype=np.float64)
    hi, lo = np.broadcast_arrays(ref.hi, ref.lo)
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), hi.shape)
    base = "float32" if dtype in HALF else dtype
    eps, tiny, _, _ = finfo(base)
    with np.errstate(invalid="ignore", over="ignore"):
        # Below the normal range the SPEC says "8 eps smallest_normal" absolute, but the
        # rounding of x_i - m that it calls unavoidable already costs |x_i - m| eps
        # relative there too; so the relative bound taken at smallest_normal applies.
        if scale is None:
            scale = np.maximum(np.abs(hi), tiny) if relative else 1.0
        allowed = bound * eps * scale + floor
        if dtype in HALF:
            allowed = allowed + ulp(np.where(np.isfinite(hi), hi, 0.0), dtype)
        err = np.abs((out - hi) - lo)
        ratio = np.where(
            allowed > 0, err / np.where(allowed > 0, allowed, 1.0), np.where(err == 0, 0.0, np.inf)
        )
        special = ~np.isfinite(hi)
        same = (np.isnan(hi) & np.isnan(out)) | (hi == out)
        ratio = np.where(special, np.where(same, 0.0, np.inf), ratio)
        overflow = np.isfinite(hi) & ~np.isfinite(round_to(hi, dtype))
        ratio = np.where(overflow & (out == round_to(hi, dtype)), 0.0, ratio)
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
        err_eps = ratio * bound
    return Measure(err_eps=err_eps, ratio=ratio)


def check(
    out: np.ndarray,
    ref: Ref,
    bound: np.ndarray | float,
    dtype: str,
    *,
    relative: bool,
    context: str,
    inputs: np.ndarray | None = None,
    floor: np.ndarray | float = 0.0,
    scale: np.ndarray | None = None,
) -> None:
    """Assert ``out`` is within the bound of ``ref`` everywhere; record the worst entry.

    The failure message names the worst entry: its index, the input there (when given),
    the output, the exact value, the error and the bound.
    """
    __tracebackhide__ = True
    from conformance._framework import assert_within_bound

    res = measure(out, ref, bound, dtype, relative=relative, floor=floor, scale=scale)
    if res.ratio.size == 0:
        return
    i = res.worst()
    idx = np.unravel_index(i, res.ratio.shape)
    b = float(np.broadcast_to(bound, res.ratio.shape)[idx])
    detail = (
        f"worst entry {tuple(int(j) for j in idx)}: out={np.asarray(out, np.float64)[idx]!r}, "
        f"exact={float(np.broadcast_to(ref.hi, res.ratio.shape)[idx])!r}"
        + (
            f", input={np.asarray(inputs).ravel()[i]!r}"
            if inputs is not None and np.size(inputs) == res.ratio.size
            else ""
        )
        + f" ({dtype}, {'relative' if relative else 'absolute'} bound {b:.4g} eps)"
    )
    try:
        assert_within_bound(float(res.err_eps[idx]), b, context)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{detail}") from None


# --------------------------------------------------------------------------------------------
# memo: references are computed once per session, not once per backend

_MEMO: dict[tuple[object, ...], Ref] = {}


def _key(v: object) -> object:
    if isinstance(v, np.ndarray):
        return (v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, tuple | list):
        return tuple(_key(a) for a in v)
    return v


def cached(fn: Callable[..., Ref], *args: object, **kwargs: object) -> Ref:
    """``fn(*args, **kwargs)``, memoised on the argument values."""
    key = (fn.__name__, _key(args), tuple(sorted((k, _key(v)) for k, v in kwargs.items())))
    if key not in _MEMO:
        _MEMO[key] = fn(*args, **kwargs)
    return _MEMO[key]


def derivative_scale(
    kind: str,
    g: np.ndarray,
    y: np.ndarray,
    *,
    axis: Axis = -1,
    where: np.ndarray | None = None,
    temperature: float | np.ndarray | None = None,
) -> np.ndarray:
    """The factor that multiplies ``(16 + 2 ceil(log2 n)) eps`` in the derivative bound.

    softmax VJP/JVP: ``y_i (|g_i| + sum_j |g_j| y_j) / T``; log_softmax, "alike with
    p = exp(logp)", read term by term: VJP ``(|g_i| + p_i sum_j |g_j|) / T``, JVP
    ``(|t_i| + sum_j p_j |t_j|) / T`` (the ``g_i`` term is not damped by ``p_i``, so its
    own rounding must be allowed). Masked entries get 0: their gradient must be exact.
    """
    g = np.asarray(g, dtype=np.float64)
    axes = normalize_axis(axis, g.ndim)
    w = np.ones(g.shape, bool) if where is None else np.broadcast_to(where, g.shape)
    t = 1.0 if temperature is None else np.asarray(temperature, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        ag = np.where(w, np.abs(g), 0.0)
        if kind in ("softmax_backward", "softmax_jvp"):
            yy = np.where(w, np.abs(np.asarray(y, np.float64)), 0.0)
            s = np.sum(ag * yy, axis=axes, keepdims=True)
            out = yy * (ag + s) / t
        else:
            p = np.where(w, np.exp(np.asarray(y, np.float64)), 0.0)
            if kind == "log_softmax_backward":
                out = (ag + p * np.sum(ag, axis=axes, keepdims=True)) / t
            else:
                out = (ag + np.sum(p * ag, axis=axes, keepdims=True)) / t
    return np.where(w, out, 0.0)
