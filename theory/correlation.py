"""Conditional correlation of forward and reverse RoPE attention scores (Appendix C.1).

Model of Theorem 4.1: q ~ N(0, sigma^2 I_D), D = 2m, and given q the key k has block-diagonal
covariance with 2x2 blocks

    Sigma_i(q) = tau^2 ((1 - rho_i)/2 I + rho_i q_i q_i^T / ||q_i||^2),   0 <= rho_i <= 1 (Appendix C.1),

so q_i is an eigenvector (eigenvalue tau^2 (1 + rho_i)/2; the orthogonal one is tau^2 (1 - rho_i)/2).
R(Delta) = diag(R(Delta theta_1), ..., R(Delta theta_m)) is the RoPE rotation.

Symmetric case (the paper, Delta_1 = Delta_2 = Delta), with w_i = ||q_i||^2 / ||q||^2:

    Cov(q^T R(Delta) k, q^T R(-Delta) k | q) = tau^2/2 sum_i ||q_i||^2 [cos(2 Delta theta_i) + rho_i]
    Var(q^T R(+-Delta) k | q)                = tau^2/2 sum_i ||q_i||^2 [1 + rho_i cos(2 Delta theta_i)]
    Corr = sum_i w_i [cos(2 Delta theta_i) + rho_i] / (1 + sum_i w_i rho_i cos(2 Delta theta_i))   (C.1)

General case (forward score q^T R(Delta_1) k, reverse score q^T R(-Delta_2) k). With
a_i = Delta_1 theta_i, b_i = Delta_2 theta_i and Cov(x^T k, y^T k) = x^T Sigma y:

    Cov_i = q_i^T R(a_i) Sigma_i R(b_i) q_i
          = tau^2 ||q_i||^2 [(1 - rho_i)/2 cos(a_i + b_i) + rho_i cos(a_i) cos(b_i)]
          = tau^2/2 ||q_i||^2 [cos((Delta_1 + Delta_2) theta_i) + rho_i cos((Delta_1 - Delta_2) theta_i)]
    Var_fwd = tau^2/2 sum_i ||q_i||^2 [1 + rho_i cos(2 Delta_1 theta_i)]
    Var_rev = tau^2/2 sum_i ||q_i||^2 [1 + rho_i cos(2 Delta_2 theta_i)]
    Corr = sum_i w_i [cos(s_i) + rho_i cos(d_i)] / sqrt((1 + C_1)(1 + C_2)),
           s_i = (Delta_1 + Delta_2) theta_i, d_i = (Delta_1 - Delta_2) theta_i,
           C_j = sum_i w_i rho_i cos(2 Delta_j theta_i).

With rho = 0 the correlation equals A = sum_i w_i cos(s_i), whose expectation over q is
(1/D) Tr R(Delta_1 + Delta_2) (E w_i = 1/m): the analogue of Theorem 4.1's right-hand side.
Unlike the symmetric case, Corr >= A does NOT hold for every rho when Delta_1 != Delta_2.
It does hold per q when A >= 0 and cos(d_i) >= 0 for every i with rho_i > 0
(`pair_sufficient_condition` tests this for all i). |Delta_1 - Delta_2| <= pi/2 is enough for
cos(d_i) >= 0 for all i, since theta_i <= theta_1 = 1, but it is not necessary: D = 4,
|Delta_1 - Delta_2| = 6 has cos(6) > 0 and cos(0.06) > 0. Proof: by AM-GM
sqrt((1 + C_1)(1 + C_2)) <= 1 + M with M = (C_1 + C_2)/2 = sum_i w_i rho_i cos(s_i) cos(d_i), so
numerator - A * denominator >= P - A M >= P (1 - |A|) >= 0, where P = sum_i w_i rho_i cos(d_i) >= |M|.
A single block (m = 1, rho = 1) gives Corr = sign(cos a cos b), which is below cos(a + b) whenever
cos a cos b < 0 and cos(a + b) > -1: the per-q bound fails, for a rho that is fixed (and, with
m = 1, w = 1, in expectation too). In expectation the analogue fails both for a q-dependent rho
and for a fixed rho that differs across blocks: D = 16, rho = (1, 1, 1, 0, 0, 0, 0, 0),
(Delta_1, Delta_2) = (4, 32) gives E_q[Corr] ~ 0.13 against (1/D) Tr R(36) ~ 0.46 (checks 5, 6 of
`theory.checks`).

Appendix C restricts 0 <= rho_i <= 1, and the bounds need it. The main-text statement of
Theorem 4.1 only asks for block-diagonal Cov(k | q) with equal block variances and q_i as an
eigenvector, which rho_i in [-1, 0) also satisfies (eigenvalues tau^2 (1 +- rho_i)/2 >= 0); with
rho = -1 the key is orthogonal to q in every block and Corr = -1 for every q, below the bound.
The functions here reject rho < 0 unless `allow_negative_rho=True` is passed where offered.
"""
from __future__ import annotations

import numpy as np

from theory.bounds import ROPE_BASE, rope_thetas


def block_weights(q_BxD: np.ndarray) -> np.ndarray:
    """w_i = ||q_i||^2 / ||q||^2 for the 2D RoPE blocks q_i = (q_{2i-1}, q_{2i}) (Appendix C.1)."""
    q = np.asarray(q_BxD, dtype=np.float64)
    if q.shape[-1] % 2:
        raise ValueError(f"last axis of q must have even length D, got {q.shape[-1]}")
    sq_BxM = (q.reshape(*q.shape[:-1], q.shape[-1] // 2, 2) ** 2).sum(-1)
    return sq_BxM / sq_BxM.sum(-1, keepdims=True)


def _check_rho(rho: np.ndarray, allow_negative: bool = False) -> None:
    lo = -1.0 if allow_negative else 0.0
    if np.any(rho < lo) or np.any(rho > 1.0) or np.any(~np.isfinite(rho)):
        raise ValueError(f"rho must lie in [{lo:g}, 1] (Theorem 4.1 needs 0 <= rho <= 1, Appendix C.1)")


def corr_from_weights(w_BxM, rho_BxM, cos2_BxM):
    """Corr = sum w (cos2 + rho) / (1 + sum w rho cos2), with cos2_i = cos(2 Delta theta_i) (C.1)."""
    w, rho, c = (np.asarray(a, dtype=np.float64) for a in (w_BxM, rho_BxM, cos2_BxM))
    return (w * (c + rho)).sum(-1) / (1.0 + (w * rho * c).sum(-1))


def conditional_corr(q_BxD, rho_BxM, delta, base: float = ROPE_BASE):
    """Closed-form Corr(q^T R(Delta) k, q^T R(-Delta) k | q) of Appendix C.1 (Theorem 4.1).

    q_BxD: (..., D); rho_BxM: (..., D/2) or broadcastable, in [0, 1]; delta: scalar or (...,)
    broadcastable with the batch shape. Returns an array of the batch shape (float if 0-d).
    """
    return conditional_corr_pair(q_BxD, rho_BxM, delta, delta, base)


def conditional_corr_pair(q_BxD, rho_BxM, delta1, delta2, base: float = ROPE_BASE):
    """Closed-form Corr(q^T R(Delta_1) k, q^T R(-Delta_2) k | q); see the module docstring.

    Reduces to `conditional_corr` when delta1 == delta2. Vectorised like `conditional_corr`.
    """
    q = np.asarray(q_BxD, dtype=np.float64)
    w = block_weights(q)
    rho = np.broadcast_to(np.asarray(rho_BxM, dtype=np.float64), w.shape)
    _check_rho(rho)
    out = pair_corr_from_weights(w, rho, delta1, delta2, rope_thetas(q.shape[-1], base))
    return float(out) if out.ndim == 0 else out


def pair_corr_from_weights(w_BxM, rho_BxM, delta1, delta2, theta_M):
    """The Delta_1 != Delta_2 Corr from block weights w (module docstring); no checks, no float()."""
    w, rho = np.asarray(w_BxM, dtype=np.float64), np.asarray(rho_BxM, dtype=np.float64)
    d1 = np.asarray(delta1, dtype=np.float64)[..., None]
    d2 = np.asarray(delta2, dtype=np.float64)[..., None]
    num = (w * (np.cos((d1 + d2) * theta_M) + rho * np.cos((d1 - d2) * theta_M))).sum(-1)
    c1 = (w * rho * np.cos(2.0 * d1 * theta_M)).sum(-1)
    c2 = (w * rho * np.cos(2.0 * d2 * theta_M)).sum(-1)
    return num / np.sqrt((1.0 + c1) * (1.0 + c2))


def score_moments(q_D, rho_M, delta1, delta2, tau: float = 1.0, base: float = ROPE_BASE):
    """Closed forms (Cov, Var_fwd, Var_rev) of the scores q^T R(Delta_1) k and q^T R(-Delta_2) k.

    Cov = tau^2/2 sum ||q_i||^2 [cos((D1+D2) theta_i) + rho_i cos((D1-D2) theta_i)],
    Var_fwd/rev = tau^2/2 sum ||q_i||^2 [1 + rho_i cos(2 D_{1/2} theta_i)]  (Appendix C.1).
    """
    q = np.asarray(q_D, dtype=np.float64)
    sq = (q.reshape(-1, 2) ** 2).sum(-1)
    rho = np.broadcast_to(np.asarray(rho_M, dtype=np.float64), sq.shape)
    _check_rho(rho)
    theta = rope_thetas(q.shape[-1], base)
    half = tau**2 / 2.0
    cov = half * (sq * (np.cos((delta1 + delta2) * theta) + rho * np.cos((delta1 - delta2) * theta))).sum()
    var_f = half * (sq * (1.0 + rho * np.cos(2.0 * delta1 * theta))).sum()
    var_r = half * (sq * (1.0 + rho * np.cos(2.0 * delta2 * theta))).sum()
    return float(cov), float(var_f), float(var_r)


def pair_sufficient_condition(delta1, delta2, D: int, base: float = ROPE_BASE) -> bool:
    """True iff cos((Delta_1 - Delta_2) theta_i) >= 0 for every block i.

    Together with A >= 0 this gives Corr >= A per q for every rho in [0, 1] (module docstring).
    |Delta_1 - Delta_2| <= pi/2 implies it; the converse fails (D = 4, |Delta_1 - Delta_2| = 6).
    """
    return bool(np.all(np.cos((float(delta1) - float(delta2)) * rope_thetas(D, base)) >= 0.0))


def rope_matrix(delta: float, D: int, base: float = ROPE_BASE) -> np.ndarray:
    """The D x D matrix R(Delta) = diag(R(Delta theta_1), ..., R(Delta theta_m)) (Appendix C.1)."""
    ang = delta * rope_thetas(D, base)
    R = np.zeros((D, D))
    c, s = np.cos(ang), np.sin(ang)
    idx = np.arange(0, D, 2)
    R[idx, idx], R[idx, idx + 1], R[idx + 1, idx], R[idx + 1, idx + 1] = c, -s, s, c
    return R


def key_covariance(q_D, rho_M, tau: float = 1.0, allow_negative_rho: bool = False) -> np.ndarray:
    """The D x D matrix Cov(k | q) = diag(Sigma_1(q), ..., Sigma_m(q)) of Theorem 4.1.

    allow_negative_rho: accept rho in [-1, 0), still a covariance with q_i as an eigenvector
    (the main-text hypotheses) but outside Appendix C's 0 <= rho <= 1.
    """
    q = np.asarray(q_D, dtype=np.float64)
    D = q.shape[-1]
    u_Mx2 = q.reshape(-1, 2) / np.linalg.norm(q.reshape(-1, 2), axis=-1, keepdims=True)
    rho = np.broadcast_to(np.asarray(rho_M, dtype=np.float64), (D // 2,))
    _check_rho(rho, allow_negative_rho)
    S = np.zeros((D, D))
    for i in range(D // 2):
        blk = tau**2 * ((1 - rho[i]) / 2 * np.eye(2) + rho[i] * np.outer(u_Mx2[i], u_Mx2[i]))
        S[2 * i:2 * i + 2, 2 * i:2 * i + 2] = blk
    return S


def direct_moments(q_D, rho_M, delta1, delta2, tau: float = 1.0, base: float = ROPE_BASE,
                   allow_negative_rho: bool = False):
    """(Cov, Var_fwd, Var_rev) by dense linear algebra, Cov(x^T k, y^T k) = x^T Cov(k|q) y.

    Independent of the closed forms: x = R(Delta_1)^T q, y = R(-Delta_2)^T q.
    """
    q = np.asarray(q_D, dtype=np.float64)
    D = q.shape[-1]
    S = key_covariance(q, rho_M, tau, allow_negative_rho)
    x = rope_matrix(delta1, D, base).T @ q
    y = rope_matrix(-delta2, D, base).T @ q
    return float(x @ S @ y), float(x @ S @ x), float(y @ S @ y)


def sample_keys(q_D, rho_M, n: int, rng: np.random.Generator, tau: float = 1.0,
                allow_negative_rho: bool = False) -> np.ndarray:
    """n draws of k | q ~ N(0, Cov(k|q)): k_i = tau (sqrt((1+rho_i)/2) z u_i + sqrt((1-rho_i)/2) z' u_i^perp).

    allow_negative_rho as in `key_covariance`.
    """
    q = np.asarray(q_D, dtype=np.float64)
    m = q.shape[-1] // 2
    u_Mx2 = q.reshape(m, 2) / np.linalg.norm(q.reshape(m, 2), axis=-1, keepdims=True)
    uperp_Mx2 = np.stack([-u_Mx2[:, 1], u_Mx2[:, 0]], axis=-1)
    rho = np.broadcast_to(np.asarray(rho_M, dtype=np.float64), (m,))
    _check_rho(rho, allow_negative_rho)
    z_NxMx2 = rng.standard_normal((n, m, 2))
    k = (np.sqrt((1 + rho) / 2)[:, None] * z_NxMx2[..., :1] * u_Mx2
         + np.sqrt((1 - rho) / 2)[:, None] * z_NxMx2[..., 1:] * uperp_Mx2)
    return tau * k.reshape(n, 2 * m)


def adversarial_rho(w_BxM, cos2_BxM, max_iter: int = 50):
    """argmin over rho in [0,1]^m of Corr = (A + sum w rho) / (1 + sum w rho cos2), per row.

    Corr is linear-fractional in rho with a positive denominator, so Dinkelbach's method is exact:
    given t = Corr(rho), the next rho minimises N(rho) - t D(rho), i.e. rho_i = 1 iff
    w_i (1 - t cos2_i) < 0, a vertex of the box; t decreases strictly until it is optimal.
    Starts from rho = 1. Returns (rho_BxM, corr_B, iterations).
    """
    w = np.asarray(w_BxM, dtype=np.float64)
    c = np.broadcast_to(np.asarray(cos2_BxM, dtype=np.float64), w.shape)
    rho = np.ones_like(w)
    t = corr_from_weights(w, rho, c)
    for it in range(1, max_iter + 1):
        new_rho = (w * (1.0 - t[..., None] * c) < 0.0).astype(np.float64)
        new_t = corr_from_weights(w, new_rho, c)
        done = np.all(new_t >= t - 1e-15)
        better = new_t < t
        rho = np.where(better[..., None], new_rho, rho)
        t = np.minimum(t, new_t)
        if done:
            return rho, t, it
    return rho, t, max_iter


def adversarial_rho_pair(w_BxM, delta1, delta2, theta_M, max_sweeps: int = 400):
    """A q-dependent rho in {0,1}^m that lowers the Delta_1 != Delta_2 correlation (local search).

    Corr_pair is not linear-fractional, so this is a greedy 1-flip descent over the vertices of
    [0,1]^m started at rho = 0 (where Corr = A): each sweep flips, per row, the single coordinate
    that lowers Corr most. It returns an upper bound on the minimum, enough to exhibit a
    counterexample. Returns (rho_BxM, corr_B).
    """
    w = np.asarray(w_BxM, dtype=np.float64)
    a, b = delta1 * theta_M, delta2 * theta_M
    cs, cd, c1, c2 = np.cos(a + b), np.cos(a - b), np.cos(2 * a), np.cos(2 * b)
    rho = np.zeros_like(w)
    rows = np.arange(w.shape[0])
    for _ in range(max_sweeps):
        n = (w * (cs + rho * cd)).sum(-1, keepdims=True)
        l1 = 1 + (w * rho * c1).sum(-1, keepdims=True)
        l2 = 1 + (w * rho * c2).sum(-1, keepdims=True)
        cur = (n / np.sqrt(l1 * l2))[:, 0]
        s = 1 - 2 * rho
        flip = (n + s * w * cd) / np.sqrt(np.maximum((l1 + s * w * c1) * (l2 + s * w * c2), 1e-300))
        j = np.argmin(flip, axis=-1)
        improve = flip[rows, j] < cur - 1e-13
        if not improve.any():
            break
        rho[rows[improve], j[improve]] = 1 - rho[rows[improve], j[improve]]
    n = (w * (cs + rho * cd)).sum(-1)
    corr = n / np.sqrt((1 + (w * rho * c1).sum(-1)) * (1 + (w * rho * c2).sum(-1)))
    return rho, corr
