"""RoPE frequencies and the trace bound of Theorem 4.1 (Appendix C.1, C.2)."""
from __future__ import annotations

import numpy as np

ROPE_BASE = 10000.0


def _check_dim(D: int, base: float) -> None:
    if not isinstance(D, (int, np.integer)) or D <= 0 or D % 2:
        raise ValueError(f"head dimension D must be a positive even integer, got {D!r}")
    if not base > 1.0:
        raise ValueError(f"RoPE base must be > 1, got {base!r}")


def rope_thetas(D: int, base: float = ROPE_BASE) -> np.ndarray:
    """theta_i = base^(-2(i-1)/D), i = 1..D/2 (the RoPE frequencies, Appendix C.1)."""
    _check_dim(D, base)
    i = np.arange(D // 2, dtype=np.float64)
    return base ** (-2.0 * i / D)


def trace_bound(delta, D: int, base: float = ROPE_BASE):
    """(1/D) Tr R(delta) = (2/D) sum_i cos(delta * theta_i)  (Theorem 4.1 with delta = 2*Delta).

    Vectorised over `delta`; returns a float for scalar input. Callers pass 2*Delta
    (symmetric case) or Delta1 + Delta2 themselves.
    """
    thetas = rope_thetas(D, base)
    d = np.asarray(delta, dtype=np.float64)
    out = np.cos(d[..., None] * thetas).mean(axis=-1)
    return float(out) if out.ndim == 0 else out
