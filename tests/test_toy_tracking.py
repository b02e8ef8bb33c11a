import jax.numpy as jnp
import numpy as np
import pytest

from toy_jax import configs, model, tracking


@pytest.mark.parametrize("attention,objective,pos", [("full", "mdm", "rope"),
                                                     ("causal", "arm", "learned")])
def test_probe_equals_full_model(attention, objective, pos):
    L = 5
    m = model.init_model(configs.ModelConfig(d_model=16, seq_len=L, n_heads=2, pos=pos,
                                             attention=attention, init="standard"), 0)
    tab = tracking.probe_tables(m)
    for ps in tracking.make_probe(L, objective):
        x = jnp.asarray(tracking.sequences(ps, L))
        logits, att = m(x, return_attn=True)
        rows = jnp.arange(len(x))
        s, w = tracking.probe_attention(m, tab, ps)
        np.testing.assert_allclose(s, att.scores_BxHxLxL[rows, :, ps.query_pos], atol=1e-5)
        np.testing.assert_allclose(w, att.weights_BxHxLxL[rows, :, ps.query_pos], atol=1e-6)
        np.testing.assert_allclose(tracking.probe_logits(m, tab, ps),
                                   logits[rows, ps.query_pos], atol=1e-5)


def test_track_shapes_and_contexts():
    L, H = 4, 2
    m = model.init_model(configs.ModelConfig(d_model=16, seq_len=L, n_heads=H,
                                             attention="causal", init="standard"), 0)
    out = tracking.track(m, tracking.make_probe(L, "arm"))
    for k, v in out.items():
        assert np.all(np.isfinite(np.asarray(v))), k
        assert np.shape(v) == ((H,) if k.startswith("attn") else ()), k
    assert np.all(np.asarray(out["attn_fwd_weight"]) == 0)  # causal: [M] cannot see a later B
    ca = tracking.cue_attention(m)
    assert ca["fwd_score"].shape == (26 * 6, H) and ca["rev_weight"].shape == (26 * 6, H)
    # "[M] ... B": the [M] sits at the lowercase position, B (the cue) later
    x = tracking.sequences(tracking.attention_contexts(L, "forward"), L)
    assert list(x[0]) == [53, 27, 0, 0]
    x = tracking.sequences(tracking.attention_contexts(L, "reverse"), L)
    assert list(x[0]) == [27, 53, 0, 0]


def test_track_letter_level_reading():
    """Both readings are tracked; an untrained RADD-init model (zero output layer, uniform
    logits) ranks every target in the middle: (53 + 1) / 2 among all outputs, (52 + 1) / 2
    among the letters."""
    L = 4
    m = model.init_model(configs.ModelConfig(d_model=16, seq_len=L, init="radd"), 0)
    out = tracking.track(m, tracking.make_probe(L, "mdm"))
    for d in ("fwd", "rev"):
        np.testing.assert_allclose(out[f"infill_{d}_rank"], 27.0)
        np.testing.assert_allclose(out[f"infill_{d}_letter_rank"], 26.5)
        np.testing.assert_allclose(out[f"infill_{d}_letter_p_target"], 1 / 52, rtol=1e-5)
        assert float(out[f"infill_{d}_greedy_acc"]) == 0.0  # ties resolve to the pad
        # letter-level ties resolve to 'a': right exactly on the letter-'a' queries (1 of 26)
        want = 1 / 26 if d == "rev" else 0.0
        np.testing.assert_allclose(out[f"infill_{d}_letter_greedy_acc"], want, rtol=1e-5)
