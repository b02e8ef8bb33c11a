"""The integral approximation of (1/D) Tr R(x) and the constant of Eq. (1) (Appendix C.2).

With x = 2 Delta (the paper writes Delta for 2 Delta in C.2) the left Riemann sum

    (1/D) Tr R(x) = (2/D) sum_{s=1}^{D/2} cos(x / base^{2(s-1)/D})  ~  int_0^1 cos(x / base^u) du
                  = (Ci(x) - Ci(x / base)) / log(base),

and for 1 <= x <= 100 the paper bounds Ci(x) >= -2/100 and Ci(x/base) <= gamma + log(x/base)
to get (log 100 - gamma - 2/100) / log 10000 ~ 0.435.
"""
from __future__ import annotations

import numpy as np
from scipy.special import sici

from theory.bounds import ROPE_BASE

EULER_GAMMA = float(np.euler_gamma)
PAPER_X_MAX = 100.0  # C.2 restricts to 1 <= Delta <= 100 in its variable (Delta for 2 Delta)


def cosine_integral(x):
    """Ci(x) = -int_x^inf cos(t)/t dt (scipy.special.sici)."""
    return sici(np.asarray(x, dtype=np.float64))[1]


def trace_integral(x, base: float = ROPE_BASE):
    """int_0^1 cos(x / base^u) du = (Ci(x) - Ci(x/base)) / log(base)  (Appendix C.2), x > 0."""
    x = np.asarray(x, dtype=np.float64)
    out = (cosine_integral(x) - cosine_integral(x / base)) / np.log(base)
    return float(out) if out.ndim == 0 else out


def eq1_constant(base: float = ROPE_BASE, x_max: float = PAPER_X_MAX) -> float:
    """(log(base / x_max) - gamma - 2/x_max) / log(base); with the paper's values
    (log 100 - gamma - 2/100) / log 10000 ~ 0.435 (Eq. (1))."""
    return float((np.log(base / x_max) - EULER_GAMMA - 2.0 / x_max) / np.log(base))


def pointwise_lower_bound(x, base: float = ROPE_BASE):
    """(-2/x + log(base/x) - gamma) / log(base) <= trace_integral(x) for x >= 1.

    Combines Ci(x) >= -2/x (x >= 1) and Ci(x/base) <= gamma + log(x/base) at the same x, which is
    the valid form of the C.2 argument. It decreases on [2, inf), so for the paper's x_max = 100
    its minimum over [1, 100] is at x = 100 and equals eq1_constant().
    """
    x = np.asarray(x, dtype=np.float64)
    out = (-2.0 / x + np.log(base / x) - EULER_GAMMA) / np.log(base)
    return float(out) if out.ndim == 0 else out
