"""Table 4 of the paper (Appendix C.3) as printed, and rounding conventions to compare against it.

The printed values are reference data typed from the paper; `theory.checks.check_table4`
recomputes every entry with `theory.cantelli.cantelli_bound` and finds which convention
reproduces the printed digits.
"""
from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

import numpy as np

TABLE4_DELTAS = (10, 20, 30, 40, 50)
TABLE4_CS = (0.05, 0.10, 0.15, 0.20, 0.25, 0.30)
TABLE4_MS = (64, 128)

# Lower bounds (E-c)^2/(V+(E-c)^2) for Pr[Corr >= c]; rows Delta, columns c (paper, Table 4).
PAPER_TABLE4 = {
    64: (
        (0.981, 0.977, 0.972, 0.965, 0.956, 0.941),
        (0.967, 0.958, 0.947, 0.930, 0.903, 0.858),
        (0.958, 0.947, 0.930, 0.905, 0.863, 0.790),
        (0.955, 0.942, 0.923, 0.893, 0.843, 0.752),
        (0.965, 0.956, 0.942, 0.921, 0.887, 0.827),
    ),
    128: (
        (0.990, 0.988, 0.986, 0.982, 0.977, 0.970),
        (0.985, 0.981, 0.976, 0.969, 0.957, 0.938),
        (0.981, 0.976, 0.969, 0.958, 0.939, 0.906),
        (0.979, 0.974, 0.965, 0.952, 0.928, 0.885),
        (0.979, 0.973, 0.963, 0.949, 0.923, 0.874),
    ),
}

_MILLI = Decimal("0.001")
_TENTH_MILLI = Decimal("0.0001")


def _q(x, mode: str, step: Decimal = _MILLI) -> Decimal:
    # Decimal(float) is the exact binary value, so no float-rounding artefacts at the boundaries;
    # a Decimal (from an earlier rounding) is used as is.
    d = x if isinstance(x, Decimal) else Decimal(float(x))
    return d.quantize(step, rounding=mode)


# Each convention maps an exact value to the 3-decimal number it would be printed as.
ROUNDING_CONVENTIONS = {
    "round-half-even(3)": lambda x: _q(x, ROUND_HALF_EVEN),
    "round-half-up(3)": lambda x: _q(x, ROUND_HALF_UP),
    "truncate(3)": lambda x: _q(x, ROUND_DOWN),
    "ceil(3)": lambda x: _q(x, ROUND_CEILING),
    "round(4)-then-truncate(3)": lambda x: _q(_q(x, ROUND_HALF_EVEN, _TENTH_MILLI), ROUND_DOWN),
    "round(5)-then-truncate(3)": lambda x: _q(_q(x, ROUND_HALF_EVEN, Decimal("0.00001")), ROUND_DOWN),
}


def printed_table(m: int) -> np.ndarray:
    """The printed 5 x 6 block of Table 4 for m = D/2 (rows Delta, columns c)."""
    if m not in PAPER_TABLE4:
        raise ValueError(f"Table 4 has m in {TABLE4_MS}, got {m!r}")
    return np.array(PAPER_TABLE4[m], dtype=np.float64)


def mismatches(values: dict, convention: str) -> list[dict]:
    """Entries where `convention` applied to `values[m]` (5 x 6 arrays) differs from the print."""
    rnd = ROUNDING_CONVENTIONS[convention]
    out = []
    for m in TABLE4_MS:
        vals = np.asarray(values[m])
        for r, delta in enumerate(TABLE4_DELTAS):
            for j, c in enumerate(TABLE4_CS):
                printed = Decimal(str(PAPER_TABLE4[m][r][j]))
                got = rnd(vals[r, j])
                if got != printed:
                    out.append({"m": m, "delta": delta, "c": c, "exact": float(vals[r, j]),
                                "rounded": float(got), "printed": float(printed)})
    return out
