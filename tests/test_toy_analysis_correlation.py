"""Correlation routines and the Theorem 4.1 assumption check of toy_jax.analysis."""
import numpy as np
import pytest

from theory.bounds import trace_bound
from theory.correlation import rope_matrix
from toy_jax import analysis as A
from toy_jax import configs, model, vocab


def test_pearson_rows_plus_minus_one_and_nan():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 26))
    C = A.pearson_rows(x, np.concatenate([2 * x + 1, -x], 0))
    np.testing.assert_allclose(np.diag(C[:, :3]), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.diag(C[:, 3:]), -1.0, atol=1e-12)
    assert np.isnan(A.pearson_rows(x, np.ones((1, 26)))).all()
    with pytest.raises(ValueError):
        A.pearson_rows(x, x[:, :5])


def test_correlation_by_delta_sum_constructed():
    rng = np.random.default_rng(1)
    d1 = np.array([1, 1, 2])  # three forward placements
    d2 = np.array([1, 2, 1, 3])  # four reverse placements
    base = rng.standard_normal(26)
    fwd = base[:, None] * np.array([1.0, 2.0, 3.0])[None, :]  # all proportional to base
    for sign in (1.0, -1.0):
        rev = sign * base[:, None] * np.array([1.0, 0.5, 4.0, 1.0])[None, :]
        r = A.correlation_by_delta_sum(fwd, rev, d1, d2, n_boot=20)
        np.testing.assert_allclose(r["corr_mean"], sign, atol=1e-12)
        np.testing.assert_allclose(r["ci95_lo"], sign, atol=1e-9)
        assert r["frac_positive"] == (1.0 if sign > 0 else 0.0)
    # every (fwd, rev) pair counted once under Delta_1 + Delta_2
    assert r["delta_sum"] == [2, 3, 4, 5]
    assert r["n_pairs"] == [4, 4, 3, 1]


def _tiny(pos="rope", L=5, d=8):
    return model.init_model(configs.ModelConfig(d_model=d, seq_len=L, pos=pos), 3)


def test_block_layout_matches_theory_rope():
    """q^T R(Delta) k in the model's rotate-half layout equals theory's R after re-layout."""
    m = _tiny()
    q, k = A.unrotated_qk(m)
    qb, kb = A.to_block_layout(q), A.to_block_layout(k[0])
    for delta in (1, 3):
        R = rope_matrix(delta, m.cfg.d_head, m.cfg.rope_base)
        # the model's score for "[M] at 0, B at delta" (forward context)
        x = np.zeros((1, m.cfg.seq_len), np.int32)
        x[0, 0], x[0, delta] = vocab.MASK, vocab.upper_id(0)
        _, att = m(x, return_attn=True)
        np.testing.assert_allclose(float(att.scores_BxHxLxL[0, 0, 0, delta]), qb @ R @ kb,
                                   rtol=1e-4, atol=1e-5)


def test_score_correlation_and_assumptions_agree():
    m = _tiny()
    r = A.score_correlation(m, n_boot=10)
    a = A.assumption_check(m)
    h = r["heads"][0]
    L = m.cfg.seq_len
    assert h["delta_sum"] == list(range(2, 2 * L - 1))
    # two independent routes to the same across-letter correlation per Delta_1 + Delta_2
    np.testing.assert_allclose(h["corr_mean"], a["by_delta_sum"]["measured"], atol=1e-5)
    np.testing.assert_allclose(r["theory_trace_bound"], trace_bound(np.arange(2, 2 * L - 1), 8))
    np.testing.assert_allclose(a["by_delta_sum"]["trace"], r["theory_trace_bound"])
    for key in ("measured", "blockdiag", "theorem", "rho0"):
        v = np.asarray(a["by_delta_sum"][key])
        assert v.shape == (2 * L - 3,) and np.all(np.abs(v) <= 1 + 1e-9), key
    b = a["blocks"]
    assert len(b["w"]) == 4 and abs(sum(b["w"]) - 1) < 1e-9
    assert all(-1 - 1e-9 <= x <= 1 + 1e-9 for x in b["rho"])
    assert all(np.isfinite(v) for v in a["summary"].values())
    assert np.all(np.asarray(h["ci95_lo"]) <= np.asarray(h["ci95_hi"]) + 1e-12)


def test_no_positions_gives_identical_scores():
    """Without positions "[M] ... B" and "B ... [M]" have the same score: correlation 1."""
    r = A.score_correlation(_tiny(pos="none"), n_boot=0)
    np.testing.assert_allclose(r["heads"][0]["corr_mean"], 1.0, atol=1e-6)
    with pytest.raises(ValueError):
        A.assumption_check(_tiny(pos="none"))


def test_reverse_probabilities_shapes():
    m = model.init_model(configs.ModelConfig(d_model=8, seq_len=4, init="radd"), 3)
    for obj in ("mdm", "arm"):
        p = A.reverse_probabilities(m, obj)
        for k in ("p_target", "p_max_other", "p_pad"):
            v = np.asarray(p["by_target_pos"][k], float)
            assert v.shape == (4,)
            assert np.isnan(v[0]) and np.all((v[1:] >= 0) & (v[1:] <= 1))  # target never at 0
        # zero output head at initialisation: uniform over the 53 outputs
        np.testing.assert_allclose(p["mean"]["p_target"], 1 / vocab.N_TARGETS, rtol=1e-5)


def test_curves_and_summary_from_rows():
    rows = []
    for seed in (0, 1):
        for step in (10, 20, 30):
            r = {"model": "mdm", "seed": seed, "step": step, "loss": 1.0}
            for k in A.TRACK_KEYS:
                r[k] = r["ema_" + k] = step / 30.0 + seed
            r["infill_rev_greedy_acc"] = {10: 0.2, 20: 0.6, 30: 0.4}[step]
            rows.append(r)
    c = A.curves(rows, "mdm")
    assert c["attn_fwd_weight"].shape == (2, 3) and list(c["step"]) == [10, 20, 30]
    s = A.over_training_summary(c, at_steps=(20,))
    d = s["infill_rev_greedy_acc"]
    assert d["max"] == 0.6 and d["argmax_step"] == 20 and d["final"] == 0.4 and d["at_20"] == 0.6
    assert A.over_training_correlation([r for r in rows if r["seed"] == 0]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        A.curves(rows, "arm")
