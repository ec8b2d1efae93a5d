"""Write ``golden.json``: softmax, log_softmax and logsumexp at 50 digits, with mpmath.

Run from the repository root: ``python conformance/golden/make_golden.py``. The values are
computed here, on their own, from the definitions (no code shared with the suite's live
references), so that a bug in one shows as a disagreement with the other. Inputs are chosen
exactly representable in every dtype listed for a case, so the same golden value is the exact
answer in each. Long slices are given by a rule of integer arithmetic (repeating values), and
their golden values by distinct input value.
"""

from __future__ import annotations

import json
from pathlib import Path

import mpmath

DPS = 50
OUT = Path(__file__).with_name("golden.json")

# name -> (dtypes the inputs are exact in, rows of one slice each)
CASES: dict[str, tuple[list[str], list[list[float]]]] = {
    "small": (
        ["float16", "bfloat16", "float32", "float64"],
        [[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0, 3.25], [0.0, 0.0, 0.0, 0.0, 0.0]],
    ),
    "near-ties": (
        ["float32", "float64"],
        [[1.0, 1.0 + 2.0**-20, 1.0 - 2.0**-20, 1.0 + 2.0**-19, 1.0]],
    ),
    "large-offset": (
        ["float32", "float64"],
        [[10000.5, 10001.25, 9999.75, 9990.0], [-20000.0, -20003.5, -19999.25, -20001.0]],
    ),
    "spread-float32": (
        ["float32", "float64"],
        [
            [1.5 * 2.0**127, -1.5 * 2.0**127, 0.0, 88.5],
            [0.0, -10.0, -40.0, -80.0],
            [1.5 * 2.0**127, 1.5 * 2.0**127 - 2.0**104, 2.0**-120],
        ],
    ),
    "spread-float64": (
        ["float64"],
        [[1e308, -1e308, 0.0, 700.0], [0.0, -300.0, -600.0, -700.0], [-1e308, -1e308 + 1e292]],
    ),
}

# long slices: x_i = ((i * mult) % mod) / scale + offset, i < n (exact in float16 and up)
LONG = {"n": 20000, "mult": 7919, "mod": 1000, "scale": 64, "offset": -8}
LONG_DTYPES = ["float32", "float64"]


def _digits(v: mpmath.mpf) -> str:
    if mpmath.isinf(v):
        return "inf" if v > 0 else "-inf"
    return mpmath.nstr(v, DPS)


def _row(xs: list[float], counts: list[int] | None = None) -> dict[str, object]:
    """Golden values of one slice; ``counts`` repeats each entry (long slices)."""
    with mpmath.workdps(DPS + 20):
        counts = counts or [1] * len(xs)
        v = [mpmath.mpf(x) for x in xs]
        m = max(v)
        s = mpmath.fsum(c * mpmath.exp(a - m) for a, c in zip(v, counts, strict=True))
        lse = m + mpmath.log(s)
        return {
            "x": xs,
            "softmax": [_digits(mpmath.exp(a - lse)) for a in v],
            "log_softmax": [_digits(a - lse) for a in v],
            "logsumexp": _digits(lse),
        }


def _long_values() -> tuple[list[float], list[int]]:
    counts: dict[int, int] = {}
    for i in range(LONG["n"]):
        j = (i * LONG["mult"]) % LONG["mod"]
        counts[j] = counts.get(j, 0) + 1
    keys = sorted(counts)
    return [k / LONG["scale"] + LONG["offset"] for k in keys], [counts[k] for k in keys]


def main() -> None:
    doc: dict[str, object] = {
        "about": "exact softmax, log_softmax and logsumexp (mpmath, 50 significant digits) "
        "of the given float64 inputs, one slice per row; made by make_golden.py",
        "mpmath": mpmath.__version__,
        "cases": {
            name: {"dtypes": dtypes, "rows": [_row(r) for r in rows]}
            for name, (dtypes, rows) in CASES.items()
        },
    }
    xs, counts = _long_values()
    doc["long"] = {"rule": LONG, "dtypes": LONG_DTYPES, "by_value": _row(xs, counts)}
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
