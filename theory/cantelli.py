"""One-sided Cantelli tail bound for the conditional correlation (Appendix C.3, Table 4).

A = sum_i w_i cos(2 Delta theta_i) with w ~ Dirichlet(1, ..., 1) (m = D/2 blocks) is the lower
bound of Corr from Appendix C.1. Its moments are

    E = (1/m) sum_i cos(2 Delta theta_i),
    V = 1/(m+1) [ (1/m) sum_i cos^2(2 Delta theta_i) - E^2 ]      (E w_i w_j = (1 + 1[i=j]) / (m(m+1))),

and Cantelli's inequality gives, for c <= E,

    Pr[Corr >= c] >= Pr[A >= c] >= (E - c)^2 / (V + (E - c)^2).

The first step uses Corr >= A per q, which holds for Delta_1 = Delta_2 and 0 <= rho_i <= 1
(Appendix C.1; not for rho < 0, see `theory.correlation`).

Delta here is the Delta of Theorem 4.1, so the cosines are cos(2 Delta theta_i).
"""
from __future__ import annotations

import numpy as np

from theory.bounds import ROPE_BASE, rope_thetas


def _check_m(m: int) -> None:
    if not isinstance(m, (int, np.integer)) or isinstance(m, bool) or m <= 0:
        raise ValueError(f"m = D/2 must be a positive integer, got {m!r}")


def cantelli_moments(delta: float, m: int, base: float = ROPE_BASE) -> tuple[float, float]:
    """(E, V) of A = sum_i w_i cos(2 Delta theta_i), w ~ Dirichlet(1,...,1), D = 2m (Appendix C.3)."""
    _check_m(m)
    c = np.cos(2.0 * float(delta) * rope_thetas(2 * int(m), base))
    E = float(c.mean())
    V = float(max((np.mean(c * c) - E * E) / (m + 1), 0.0))
    return E, V


def variance_direct(delta: float, m: int, base: float = ROPE_BASE) -> float:
    """V as the quadratic form c^T Cov(w) c with Cov(w)_ij = (1 + 1[i=j])/(m(m+1)) - 1/m^2."""
    _check_m(m)
    c = np.cos(2.0 * float(delta) * rope_thetas(2 * int(m), base))
    cov = (np.ones((m, m)) + np.eye(m)) / (m * (m + 1)) - 1.0 / m**2
    return float(c @ cov @ c)


def cantelli_bound(delta: float, c: float, m: int, base: float = ROPE_BASE) -> float:
    """(E - c)^2 / (V + (E - c)^2): lower bound on Pr[Corr >= c] for D = 2m (Appendix C.3).

    Exact (no rounding). Raises ValueError when c > E (Cantelli's inequality needs c <= E).
    At c = E it is 0.
    """
    E, V = cantelli_moments(delta, m, base)
    c = float(c)
    if not np.isfinite(c):
        raise ValueError(f"threshold c must be finite, got {c!r}")
    if c > E:
        raise ValueError(f"threshold c = {c:g} exceeds the mean E = {E:.6g}; the bound needs c <= E")
    gap2 = (E - c) ** 2
    return 0.0 if gap2 == 0.0 else float(gap2 / (V + gap2))


def dirichlet_tail_mc(delta: float, cs, m: int, n: int, rng: np.random.Generator,
                      base: float = ROPE_BASE, chunk: int = 20000):
    """Monte-Carlo Pr[sum_i w_i cos(2 Delta theta_i) >= c] for each c, w ~ Dirichlet(1,...,1).

    Returns (p, se) arrays over `cs`. w is drawn as normalised Exp(1) variables, the same law as
    ||q_i||^2 / ||q||^2 for Gaussian q (Gamma-Dirichlet relation, Appendix C.1).
    """
    cos2 = np.cos(2.0 * float(delta) * rope_thetas(2 * int(m), base))
    cs = np.asarray(cs, dtype=np.float64)
    hits = np.zeros_like(cs)
    done = 0
    while done < n:
        b = min(chunk, n - done)
        g = rng.standard_exponential((b, m))
        a = (g @ cos2) / g.sum(-1)
        hits += (a[:, None] >= cs).sum(0)
        done += b
    p = hits / n
    return p, np.sqrt(np.maximum(p * (1 - p), 1.0 / n) / n)
