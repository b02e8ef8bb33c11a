import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toy_jax import configs, model, vocab


def _cfg(**kw):
    return configs.ModelConfig(**{"d_model": 16, "seq_len": 6, **kw})


def test_rope_scores_depend_only_on_offset():
    m = model.init_model(_cfg(n_heads=2, init="standard"), 0)
    x = jnp.full((1, 6), vocab.lower_id(3))  # same token everywhere: only RoPE varies
    _, att = m(x, return_attn=True)
    s = np.asarray(att.scores_BxHxLxL[0])  # (H, L, L)
    for off in range(-5, 6):
        diag = np.array([s[:, i, i + off] for i in range(6) if 0 <= i + off < 6])
        np.testing.assert_allclose(diag, np.broadcast_to(diag[0], diag.shape), atol=1e-5)
    assert np.ptp(np.diagonal(s, 1, 1, 2)[0]) < 1e-5 and np.ptp(s[0, 0]) > 1e-4


def test_scores_are_unscaled_and_weights_softmaxed():
    cfg = _cfg(n_heads=2, init="standard")
    m = model.init_model(cfg, 1)
    x = jax.random.randint(jax.random.PRNGKey(0), (3, 6), 0, vocab.VOCAB_SIZE)
    _, att = m(x, return_attn=True)
    w = jax.nn.softmax(att.scores_BxHxLxL / math.sqrt(cfg.d_head), -1)
    np.testing.assert_allclose(att.weights_BxHxLxL, w, atol=1e-6)


@pytest.mark.parametrize("attention", ["full", "causal"])
def test_causality_via_gradients(attention):
    m = model.init_model(_cfg(attention=attention, init="standard", pos="learned"), 0)
    h0 = m.embed_tokens(jnp.asarray([[1, 0, 27, 53, 0, 2]]))
    i = 2
    jac = jax.jacobian(lambda h: m.block(h)[0, i].sum())(h0)  # (1, L, d)
    later = np.abs(np.asarray(jac[0, i + 1:])).max()
    if attention == "causal":
        assert later == 0.0  # the ARM's output at i ignores later positions
    else:
        assert later > 1e-6  # the MDM's does not


def test_logits_at_equals_full_forward():
    for attention in ("full", "causal"):
        m = model.init_model(_cfg(attention=attention, init="standard", n_heads=2), 0)
        x = jax.random.randint(jax.random.PRNGKey(2), (4, 6), 0, vocab.VOCAB_SIZE)
        pos = jnp.array([0, 5, 2, 3])
        np.testing.assert_allclose(model.logits_at(m, x, pos), m(x)[jnp.arange(4), pos],
                                   atol=1e-5)


def test_radd_init_is_radds():
    d = 64
    p = model.split_model(model.init_model(_cfg(d_model=d, pos="learned", init="radd"), 0))[1]
    for n in ("ln1", "ln2", "lnf"):  # LayerNorm weight AND bias start at 1
        assert (p[f"{n}_scale"] == 1).all() and (p[f"{n}_bias"] == 1).all()
    assert (p["w_head"] == 0).all() and (p["b_head"] == 0).all()  # zero output layer
    assert "b_qkv" not in p and "b_out" not in p  # no qkv / attention-output bias
    for name, fan_in in (("embed", d), ("pos_embed", d), ("w_qkv", d), ("w_out", d),
                         ("w_mlp1", d), ("b_mlp1", d), ("w_mlp2", 4 * d), ("b_mlp2", 4 * d)):
        a, b = np.asarray(p[name]), 1 / math.sqrt(fan_in)  # kaiming-uniform(a=sqrt 5)
        assert np.abs(a).max() <= b and np.abs(a).max() > 0.9 * b, name
        if a.size > 1000:  # uniform, not normal: std = b / sqrt 3
            assert abs(a.std() - b / math.sqrt(3)) < 0.05 * b, name


def test_standard_init_is_gpt2s():
    p = model.split_model(model.init_model(_cfg(d_model=64, init="standard"), 0))[1]
    assert (p["ln1_bias"] == 0).all() and (p["ln1_scale"] == 1).all()
    assert abs(float(p["w_qkv"].std()) - 0.02) < 0.002
    assert abs(float(p["w_out"].std()) - 0.02 / math.sqrt(2)) < 0.002
    assert (p["b_mlp1"] == 0).all() and float(p["w_head"].std()) > 0.01


def test_same_seed_same_init_for_mdm_and_arm():
    a = model.init_params(_cfg(attention="full"), jax.random.PRNGKey(3))
    b = model.init_params(_cfg(attention="causal"), jax.random.PRNGKey(3))
    assert all(np.array_equal(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_bad_model_config():
    for kw in ({"pos": "alibi"}, {"d_model": 15, "n_heads": 2}, {"d_model": 6, "n_heads": 2},
               {"init": "xavier"}, {"dropout": 1.0}, {"seq_len": 1}):
        with pytest.raises(ValueError):
            _cfg(**kw)
