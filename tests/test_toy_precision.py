"""--precision bf16: bf16 matmuls with float32 weights, optimizer state, LayerNorm and softmax
(RADD trains under bf16 autocast); fp32 stays the default and old configs load."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toy_jax import configs, model, trainer, vocab


def _mcfg(precision, **kw):
    return configs.ModelConfig(**{"d_model": 32, "seq_len": 6, "init": "standard",
                                  "precision": precision, **kw})


@pytest.mark.parametrize("attention", ["full", "causal"])
def test_bf16_logits_close_to_fp32(attention):
    params = model.init_params(_mcfg("fp32", attention=attention), jax.random.PRNGKey(0))
    x = jax.random.randint(jax.random.PRNGKey(1), (8, 6), 0, vocab.VOCAB_SIZE)
    out = {}
    for prec in ("fp32", "bf16"):
        g = model.graphdef_for(_mcfg(prec, attention=attention))
        logits, att = model.apply(g, params, x, return_attn=True)
        assert logits.dtype == jnp.float32 and att.weights_BxHxLxL.dtype == jnp.float32
        out[prec] = np.asarray(logits), np.asarray(att.weights_BxHxLxL)
    scale = np.abs(out["fp32"][0]).max()
    assert scale > 0.1  # a non-trivial comparison (the standard init has a non-zero head)
    # bf16 keeps 8 significant bits (relative rounding 2^-9 ~ 0.2 %) per operand
    np.testing.assert_allclose(out["bf16"][0], out["fp32"][0], rtol=0, atol=0.02 * scale)
    np.testing.assert_allclose(out["bf16"][1], out["fp32"][1], rtol=0, atol=0.01)
    assert not np.array_equal(out["bf16"][0], out["fp32"][0])  # bf16 really ran


def test_bf16_training_keeps_fp32_weights_and_optimizer():
    cfg = configs.make_config(L=4, preset="quick", model="mdm", seeds=(0,),
                              model_overrides=dict(d_model=16, precision="bf16"),
                              train_overrides=dict(steps=2, batch_size=8, track_every=0,
                                                   log_every=1, warmup_steps=1))
    tm = trainer.train(cfg)["mdm"]
    state_leaves = jax.tree.leaves((tm.params, tm.ema))
    assert all(a.dtype == jnp.float32 for a in state_leaves)
    mcfg, tcfg = cfg.configs_for("mdm")
    st = trainer.init_states(mcfg, tcfg, (0,))
    st, m = trainer.make_chunk(tm.graphdef, mcfg, tcfg, 4, 1, False)(st)
    assert np.isfinite(np.asarray(m["loss"])).all()
    floats = [a for a in jax.tree.leaves(st.opt_state) if jnp.issubdtype(a.dtype, jnp.floating)]
    assert floats and all(a.dtype == jnp.float32 for a in floats)
    before = trainer.init_states(mcfg, tcfg, (0,)).params
    assert any(not np.array_equal(a, b) for a, b in
               zip(jax.tree.leaves(before), jax.tree.leaves(st.params)))  # it did update


def test_precision_config_default_and_old_configs():
    assert configs.ModelConfig().precision == "fp32"
    cfg = configs.make_config(L=4, preset="quick", model="mdm")
    d = cfg.to_dict()
    del d["model"]["precision"]  # a config.json written before the field existed
    assert configs.RunConfig.from_dict(d) == cfg
    with pytest.raises(ValueError, match="precision"):
        dataclasses.replace(cfg.model, precision="fp16")


def test_precision_flag():
    from toy_jax.train import build_parser, config_from_args

    args = build_parser().parse_args(["--L", "4", "--preset", "quick", "--precision", "bf16"])
    assert config_from_args(args).model.precision == "bf16"
    args = build_parser().parse_args(["--L", "4", "--preset", "quick"])
    assert config_from_args(args).model.precision == "fp32"
