"""The training knobs of the toy: --embed-init, --ln-bias, --t-sampler (and their defaults)."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toy_jax import configs, losses, model, trainer, vocab
from toy_jax.train import build_parser, config_from_args, main

# config.json of a paper-preset MDM run written before these knobs existed (no embed_init,
# ln_bias or t_sampler keys): it must still load, as the defaults it implies.
OLD_CONFIG = {
    "L": 20, "preset": "paper", "seeds": [0, 1, 2, 3, 4, 5, 6, 7],
    "eval": {"batch_size": 0, "eval_seed": 1234, "top_k": 3},
    "model": {"attention": "full", "d_model": 256, "dropout": 0.02, "init": "radd",
              "mlp_ratio": 4, "n_heads": 1, "pos": "rope", "rope_base": 10000.0, "seq_len": 20},
    "models": [{"attention": "full", "name": "mdm", "objective": "mdm"}],
    "train": {"adam_b1": 0.9, "adam_b2": 0.999, "adam_eps": 1e-08, "batch_size": 256,
              "ckpt_every": 100000, "ema_decay": 0.9999, "grad_clip": 1.0, "log_every": 50,
              "lr": 0.0003, "objective": "mdm", "steps": 3000, "t_eps": 0.001,
              "track_every": 50, "warmup_steps": 1000, "weight_decay": 0.0},
}
# the flags that reproduce that run (paper_L20_mdm_8seeds/radd_L20) with "--init radd"
BASE = ["--preset", "paper", "--L", "20", "--model", "mdm", "--seed", *map(str, range(8)),
        "--track-every", "50", "--ckpt-every", "100000"]
# every variant of the 2026-11-28 H200 runs, as flags alone
VARIANTS = {
    "radd": ["--init", "radd"], "standard": ["--init", "standard"],
    "learned": ["--init", "radd", "--pos", "learned"],
    "emb1": ["--init", "radd", "--embed-init", "normal"],
    "lnb0": ["--init", "radd", "--ln-bias", "0"],
    "vdm": ["--init", "radd", "--t-sampler", "stratified"],
    "bf16": ["--init", "radd", "--precision", "bf16"],
}


def _cfg(argv):
    return config_from_args(build_parser().parse_args(argv))


def _params(**kw):
    cfg = configs.ModelConfig(**{"d_model": 256, "seq_len": 8, **kw})
    return model.init_params(cfg, jax.random.PRNGKey(0))


def test_old_config_loads_as_the_defaults():
    cfg = configs.RunConfig.from_dict(OLD_CONFIG)
    assert cfg.model.embed_init is None and cfg.model.ln_bias is None
    assert cfg.train.t_sampler == "iid"
    assert cfg == _cfg(BASE + ["--init", "radd"])  # the same run, from flags (RADD's init)
    assert _cfg(BASE).model.init == "standard"  # the default init is GPT-2's
    d = cfg.to_dict()  # new config.json files record the knobs
    assert d["model"]["embed_init"] is None and d["model"]["ln_bias"] is None
    assert d["train"]["t_sampler"] == "iid"
    assert configs.RunConfig.from_dict(d) == cfg


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_h200_variant_is_expressible_with_flags(name):
    cfg = _cfg(BASE + VARIANTS[name])
    fields = {**dataclasses.asdict(cfg.model), **dataclasses.asdict(cfg.train)}
    expected = {"radd": {}, "standard": {"init": "standard"}, "learned": {"pos": "learned"},
                "emb1": {"embed_init": "normal"}, "lnb0": {"ln_bias": 0.0},
                "vdm": {"t_sampler": "stratified"}, "bf16": {"precision": "bf16"}}[name]
    base = {**dataclasses.asdict(configs.RunConfig.from_dict(OLD_CONFIG).model),
            **dataclasses.asdict(configs.RunConfig.from_dict(OLD_CONFIG).train)}
    for k, v in fields.items():  # exactly the variant's fields differ from the default run
        assert v == expected.get(k, base.get(k, v)), (name, k, v)
    assert set(expected) <= set(fields)
    assert configs.RunConfig.from_dict(cfg.to_dict()) == cfg


def test_defaults_are_what_init_says():
    for init, emb, bias in (("radd", "radd", 1.0), ("standard", "gpt2", 0.0)):
        implicit = _params(init=init, pos="learned", d_model=16)
        explicit = _params(init=init, pos="learned", d_model=16, embed_init=emb, ln_bias=bias)
        for a, b in zip(jax.tree.leaves(implicit), jax.tree.leaves(explicit)):
            np.testing.assert_array_equal(a, b)


def test_embed_init_statistics():
    d = 256
    bound = 1.0 / np.sqrt(d)
    # each choice under the init that does not imply it; learned positions follow too
    p = _params(init="radd", pos="learned", embed_init="normal")
    for e in (p["embed"], p["pos_embed"]):
        assert abs(float(jnp.std(e)) - 1.0) < 0.05 and abs(float(jnp.mean(e))) < 0.05
    q = _params(init="standard", pos="learned", embed_init="radd")
    for e in (q["embed"], q["pos_embed"]):
        assert float(jnp.abs(e).max()) <= bound
        assert abs(float(jnp.std(e)) - bound / np.sqrt(3.0)) < 0.05 * bound
    r = _params(init="radd", embed_init="gpt2")
    assert abs(float(jnp.std(r["embed"])) - 0.02) < 0.001
    # only the embeddings change: the other weights are drawn as before
    a = _params(init="radd", pos="learned")
    assert not np.allclose(a["embed"], p["embed"])
    for k in ("w_qkv", "w_out", "w_mlp1", "w_mlp2", "ln1_bias"):
        np.testing.assert_array_equal(a[k], p[k])


@pytest.mark.parametrize("init", ["radd", "standard"])
def test_ln_bias_sets_every_layernorm_bias(init):
    p = _params(init=init, ln_bias=-0.5, d_model=16)
    for ln in ("ln1", "ln2", "lnf"):
        np.testing.assert_array_equal(p[f"{ln}_bias"], -0.5)
        np.testing.assert_array_equal(p[f"{ln}_scale"], 1.0)
    assert len([k for k in p if k.endswith("_bias") and k.startswith("ln")]) == 3


def test_stratified_t_is_evenly_spread_with_one_u0():
    B, eps = 64, 1e-3
    t = np.asarray(losses.sample_t_stratified(jax.random.PRNGKey(3), B, eps), np.float64)
    assert t.shape == (B,) and t.min() >= eps and t.max() < 1.0
    np.testing.assert_allclose(np.diff(np.sort(t)), (1 - eps) / B, atol=1e-6)
    u = (t - eps) / (1 - eps)
    u0 = np.mod(u - np.arange(B) / B, 1.0)  # the same u0 for every b
    assert np.abs((u0 - u0[0] + 0.5) % 1.0 - 0.5).max() < 1e-5  # (circular distance)
    t2 = np.asarray(losses.sample_t_stratified(jax.random.PRNGKey(4), B, eps))
    assert not np.allclose(np.sort(t), np.sort(t2))  # u0 is random
    # i.i.d. t are not evenly spread
    ti = np.asarray(losses.sample_t(jax.random.PRNGKey(3), B, eps))
    assert np.ptp(np.diff(np.sort(ti))) > 1e-3


def test_t_sampler_reaches_the_training_step(monkeypatch):
    """The trainer's step samples t with the configured sampler (traced only, not compiled)."""
    used = []
    for name, fn in list(losses.T_SAMPLERS.items()):
        monkeypatch.setitem(losses.T_SAMPLERS, name,
                            lambda *a, _n=name, _f=fn: used.append(_n) or _f(*a))
    cfg = configs.make_config(L=3, preset="quick", model="mdm",
                              model_overrides=dict(d_model=8),
                              train_overrides=dict(steps=2, batch_size=8, track_every=0,
                                                   log_every=2))
    for sampler in ("stratified", "iid"):
        c = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, t_sampler=sampler))
        mcfg, tcfg = c.configs_for("mdm")
        step = trainer.make_step(model.graphdef_for(mcfg), mcfg, tcfg, c.L)
        state = jax.eval_shape(lambda: trainer.init_states(mcfg, tcfg, (0,)))
        used.clear()
        _, (loss, _) = jax.eval_shape(jax.vmap(step), state)
        assert used == [sampler] and loss.shape == (1,)


@pytest.mark.parametrize("bad", [["--embed-init", "xavier"], ["--t-sampler", "sobol"],
                                 ["--ln-bias", "nan"], ["--ln-bias", "one"]])
def test_bad_knob_values_give_one_line_errors(bad, capsys):
    with pytest.raises(SystemExit) as e:
        code = main(["--L", "3", *bad])
        raise SystemExit(code)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert bad[0].lstrip("-").replace("-", "_") in err or bad[0] in err
