import numpy as np

from toy_jax import configs, evaluate, model, vocab


def test_untrained_model_is_chance():
    # RADD init: zero output layer -> uniform prediction over the N_TARGETS outputs
    cfg = configs.ModelConfig(d_model=16, seq_len=4)
    g, p = model.split_model(model.init_model(cfg, 0))
    for objective in ("mdm", "arm"):
        r = evaluate.evaluate_params(g, p, objective, 4)
        for d in ("forward", "reverse"):
            for proto in ("infill", "completion"):
                m = r[d][proto]
                np.testing.assert_allclose(m["p_target"], 1 / vocab.N_TARGETS, rtol=1e-5)
                np.testing.assert_allclose(m["rank"], (vocab.N_TARGETS + 1) / 2)
                assert m["greedy_acc"] == 0.0  # ties resolve to pad
                assert 0.0 <= m["topk_success"] <= 1.0


def test_topk_sample_stays_in_topk():
    import jax
    import jax.numpy as jnp

    logits = jnp.tile(jnp.arange(10.0)[None], (500, 1))
    s = np.asarray(evaluate.topk_sample(jax.random.PRNGKey(0), logits, 3))
    assert set(s.tolist()) == {7, 8, 9}
