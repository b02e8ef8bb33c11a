"""Identities and theorems of Appendix C, checked on small cases."""
import itertools

import numpy as np
import pytest
from scipy import integrate

from theory.bounds import rope_thetas, trace_bound
from theory.cantelli import cantelli_bound, cantelli_moments, dirichlet_tail_mc, variance_direct
from theory.correlation import (adversarial_rho, block_weights, conditional_corr, conditional_corr_pair,
                                corr_from_weights, direct_moments, key_covariance, pair_sufficient_condition,
                                rope_matrix, sample_keys, score_moments)
from theory.eq1 import eq1_constant, pointwise_lower_bound, trace_integral


@pytest.mark.parametrize("D", [2, 16, 128, 512])
def test_trace_bound_at_zero_is_one(D):
    assert trace_bound(0.0, D) == pytest.approx(1.0, abs=1e-15)


def test_trace_bound_is_normalised_trace_of_rope_matrix():
    for D, x in [(8, 3.0), (64, 40.0), (32, 7.5)]:
        assert trace_bound(x, D) == pytest.approx(np.trace(rope_matrix(x, D)) / D, abs=1e-14)


@pytest.mark.parametrize("D,base", [(15, 1e4), (0, 1e4), (-4, 1e4), (16, 1.0), (16, 0.5)])
def test_bad_dims_and_base_raise(D, base):
    with pytest.raises(ValueError):
        rope_thetas(D, base)


@pytest.mark.parametrize("delta,m", [(1, 4), (10, 64), (37, 128), (50, 16)])
def test_variance_formula_matches_quadratic_form(delta, m):
    _, V = cantelli_moments(delta, m)
    assert V == pytest.approx(variance_direct(delta, m), rel=1e-10)


def test_variance_formula_matches_dirichlet_sampling():
    rng = np.random.default_rng(1)
    m, delta = 16, 20
    w = rng.dirichlet(np.ones(m), size=200_000)
    a = w @ np.cos(2 * delta * rope_thetas(2 * m))
    E, V = cantelli_moments(delta, m)
    assert a.mean() == pytest.approx(E, abs=5 * np.sqrt(V / a.size))
    assert a.var() == pytest.approx(V, rel=0.02)


def test_cantelli_zero_at_mean_and_raises_above():
    E, _ = cantelli_moments(20, 64)
    assert cantelli_bound(20, E, 64) == 0.0
    with pytest.raises(ValueError):
        cantelli_bound(20, E + 1e-9, 64)
    vals = [cantelli_bound(20, c, 64) for c in np.linspace(0.0, E, 7)]
    assert all(0.0 <= v <= 1.0 for v in vals) and np.all(np.diff(vals) < 0)


def test_cantelli_is_below_monte_carlo_tail():
    cs = (0.1, 0.3)
    p, se = dirichlet_tail_mc(30, cs, 64, 20_000, np.random.default_rng(2))
    for c, pc, s in zip(cs, p, se):
        assert pc + 3 * s >= cantelli_bound(30, c, 64)


def test_closed_form_moments_match_dense_algebra():
    rng = np.random.default_rng(3)
    for D, d1, d2 in [(8, 3, 3), (16, 2, 9), (32, 50, 1)]:
        q, rho = rng.standard_normal(D), rng.random(D // 2)
        np.testing.assert_allclose(score_moments(q, rho, d1, d2, tau=0.6),
                                   direct_moments(q, rho, d1, d2, tau=0.6), rtol=1e-12)


def test_vectorised_matches_loop_and_pair_reduces_to_symmetric():
    rng = np.random.default_rng(4)
    q, rho, deltas = rng.standard_normal((6, 16)), rng.random((6, 8)), np.arange(1, 7)
    vec = conditional_corr(q, rho, deltas)
    loop = [conditional_corr(q[i], rho[i], int(deltas[i])) for i in range(6)]
    np.testing.assert_allclose(vec, loop, atol=1e-14)
    np.testing.assert_allclose(conditional_corr_pair(q, rho, 5, 5), conditional_corr(q, rho, 5), atol=1e-15)


def test_rho_limits_and_pointwise_lower_bound():
    rng = np.random.default_rng(5)
    q = rng.standard_normal((500, 32))
    w = block_weights(q)
    A = w @ np.cos(2 * 7 * rope_thetas(32))
    np.testing.assert_allclose(conditional_corr(q, 0.0, 7), A, atol=1e-14)
    np.testing.assert_allclose(conditional_corr(q, 1.0, 7), 1.0, atol=1e-12)
    assert np.all(conditional_corr(q, rng.random((500, 16)), 7) >= A - 1e-14)  # Corr >= A (C.1)


def test_rho_outside_unit_interval_raises():
    with pytest.raises(ValueError):
        conditional_corr(np.ones(8), 1.5, 3)


def test_closed_form_matches_monte_carlo_small_case():
    rng = np.random.default_rng(6)
    D, delta, n = 8, 3, 40_000
    q, rho = rng.standard_normal(D), rng.random(D // 2)
    k = sample_keys(q, rho, n, rng, tau=1.3)
    r = np.corrcoef(k @ (rope_matrix(delta, D).T @ q), k @ (rope_matrix(-delta, D).T @ q))[0, 1]
    z = (np.arctanh(r) - np.arctanh(conditional_corr(q, rho, delta))) * np.sqrt(n - 3)
    assert abs(z) < 4.0


def test_dinkelbach_matches_brute_force_over_vertices():
    rng = np.random.default_rng(7)
    m = 6
    w = rng.dirichlet(np.ones(m), size=40)
    cos2 = np.cos(rng.uniform(0, 2 * np.pi, size=m))
    _, t, _ = adversarial_rho(w, cos2)
    verts = np.array(list(itertools.product([0.0, 1.0], repeat=m)))
    brute = np.min([corr_from_weights(w, v, cos2) for v in verts], axis=0)
    np.testing.assert_allclose(t, brute, atol=1e-14)
    np.testing.assert_allclose(t, w @ cos2, atol=1e-14)  # the minimiser is rho = 0


def test_pair_bound_sufficient_condition_and_one_block_counterexample():
    rng = np.random.default_rng(8)
    q = rng.standard_normal((2000, 16))
    A = block_weights(q) @ np.cos(7 * rope_thetas(16))
    corr = conditional_corr_pair(q, rng.random((2000, 8)), 3, 4)
    assert np.all(corr[A >= 0] >= A[A >= 0] - 1e-14)
    assert conditional_corr_pair(np.array([1.0, 0.0]), 1.0, 1, 2) < np.cos(3.0) - 1e-3


def test_integral_closed_form_and_eq1_constant():
    for x in (1.0, 20.0, 100.0):
        quad = integrate.quad(lambda u: np.cos(x * 1e4 ** (-u)), 0, 1, limit=500)[0]
        assert trace_integral(x) == pytest.approx(quad, abs=1e-10)
    assert eq1_constant() == pytest.approx(0.435, abs=5e-4)  # the printed value of Eq. (1)
    grid = np.linspace(1, 100, 20_001)
    assert np.all(trace_integral(grid) >= eq1_constant() - 1e-12)
    assert np.min(pointwise_lower_bound(grid)) == pytest.approx(eq1_constant(), abs=1e-12)


def test_pair_sufficient_condition_is_if_not_iff():
    """|D1 - D2| <= pi/2 implies all cos((D1 - D2) theta_i) >= 0, but not conversely (D = 4, |D1 - D2| = 6)."""
    assert abs(1 - 7) > np.pi / 2
    assert np.all(np.cos(6 * rope_thetas(4)) > 0)  # theta = (1, 0.01): cos 6 > 0, cos 0.06 > 0
    assert pair_sufficient_condition(1, 7, 4)
    assert pair_sufficient_condition(3, 4, 512)  # |D1 - D2| = 1 <= pi/2
    assert not pair_sufficient_condition(1, 4, 16)  # cos 3 < 0
    # The proven consequence holds in the D = 4, |D1 - D2| = 6 case: Corr >= A whenever A >= 0.
    rng = np.random.default_rng(9)
    q = rng.standard_normal((5000, 4))
    A = block_weights(q) @ np.cos(8 * rope_thetas(4))
    corr = conditional_corr_pair(q, rng.random((5000, 2)), 1, 7)
    assert (A >= 0).sum() > 100 and np.all(corr[A >= 0] >= A[A >= 0] - 1e-14)


def _block_cov_rho_minus_one(q_D):
    """Cov(k|q) with rho = -1, built here: tau^2 (I - u_i u_i^T) per block, u_i = q_i / ||q_i||."""
    D = q_D.size
    S = np.zeros((D, D))
    for i in range(0, D, 2):
        u = q_D[i:i + 2] / np.linalg.norm(q_D[i:i + 2])
        S[i:i + 2, i:i + 2] = np.eye(2) - np.outer(u, u)
    return S


def test_theorem41_needs_nonnegative_rho():
    """The main-text hypotheses allow rho = -1 (a valid covariance); then Corr = -1 < (1/D) Tr R(2 Delta)."""
    rng = np.random.default_rng(10)
    D, delta = 16, 10
    bound = trace_bound(2 * delta, D)
    assert bound == pytest.approx(0.7219, abs=1e-4)
    for _ in range(5):
        q = rng.standard_normal(D)
        S = _block_cov_rho_minus_one(q)
        assert np.all(np.linalg.eigvalsh(S) > -1e-12)  # positive semi-definite
        for i in range(0, D, 2):  # q_i is an eigenvector of every block, and blocks have equal trace
            np.testing.assert_allclose(S[i:i + 2, i:i + 2] @ q[i:i + 2], 0.0, atol=1e-12)
            assert np.trace(S[i:i + 2, i:i + 2]) == pytest.approx(1.0)
        x, y = rope_matrix(delta, D).T @ q, rope_matrix(-delta, D).T @ q
        corr = (x @ S @ y) / np.sqrt((x @ S @ x) * (y @ S @ y))
        assert corr == pytest.approx(-1.0, abs=1e-12) and corr < bound
        k = rng.multivariate_normal(np.zeros(D), S, size=2000, method="eigh")
        assert np.corrcoef(k @ x, k @ y)[0, 1] < -0.99
        np.testing.assert_allclose(key_covariance(q, -1.0, allow_negative_rho=True), S, atol=1e-12)
    with pytest.raises(ValueError, match="0 <= rho <= 1"):
        conditional_corr(rng.standard_normal(D), -1.0, delta)


FIXED_RHO_16 = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=float)


def test_fixed_rho_breaks_pair_bound_closed_form_and_sampling():
    """A rho fixed for all q but different across blocks: D = 16, Delta = (4, 32), E_q[Corr] ~ 0.13 < 0.4627."""
    rng = np.random.default_rng(11)
    D, d1, d2 = 16, 4, 32
    bound = trace_bound(d1 + d2, D)
    assert bound == pytest.approx(0.4627, abs=1e-4)
    cf = conditional_corr_pair(rng.standard_normal((40_000, D)), FIXED_RHO_16, d1, d2)
    se = cf.std() / np.sqrt(cf.size)
    assert abs(cf.mean() - 0.128) < 5 * se + 0.002 and cf.mean() + 5 * se < bound - 0.3
    # Sampling, independently of the closed form: k ~ N(0, Cov(k|q)) from the dense covariance.
    q_NxD = rng.standard_normal((150, D))
    r_mc, r_cf = [], []
    for q in q_NxD:
        k = rng.multivariate_normal(np.zeros(D), key_covariance(q, FIXED_RHO_16), size=2000, method="eigh")
        r_mc.append(np.corrcoef(k @ (rope_matrix(d1, D).T @ q), k @ (rope_matrix(-d2, D).T @ q))[0, 1])
        r_cf.append(conditional_corr_pair(q, FIXED_RHO_16, d1, d2))
    r_mc, diff = np.array(r_mc), np.array(r_mc) - np.array(r_cf)
    assert abs(diff.mean()) < 4 * diff.std() / np.sqrt(diff.size) + 1e-3
    assert r_mc.mean() + 4 * r_mc.std() / np.sqrt(r_mc.size) < bound


def test_fixed_rho_check_in_report_passes():
    from theory.checks import check_fixed_rho, quick_config

    r = check_fixed_rho(quick_config(), np.random.default_rng(0))
    n = r["numbers"]
    assert r["name"] == "delta1_ne_delta2_fixed_rho" and r["passed"]
    assert n["bound"] == pytest.approx(0.4627, abs=1e-4)
    assert n["closed_form_below_bound"] and n["sampled_below_bound"]
    assert abs(n["closed_form_mean"] - 0.128) < 5 * n["closed_form_se"] + 0.002
    assert 0 < n["fixed_vertices_below"] < n["fixed_vertices_total"] == 256
