"""Mean and standard error of the mean: the one definition every table uses."""
from __future__ import annotations

import numpy as np


def mean_sem(values, *, single: float = 0.0, skip_nan: bool = False) -> tuple[float, float]:
    """(mean, s.e.m.) of `values` in float64, s.e.m. = sd(ddof=1) / sqrt(n).

    `single` is the s.e.m. reported for one value: 0.0 (the toy's results.json stores one
    seed's s.e.m. as 0) or NaN where a table prints "m" rather than "m ± 0". `skip_nan` drops
    NaN values first (readings a model does not have); none left gives (NaN, NaN).
    """
    a = np.asarray(values, np.float64).ravel()
    if skip_nan:
        a = a[~np.isnan(a)]
    if a.size == 0:
        if skip_nan:
            return float("nan"), float("nan")
        raise ValueError("mean_sem of no values")
    sem = float(a.std(ddof=1) / np.sqrt(a.size)) if a.size > 1 else single
    return float(a.mean()), sem
