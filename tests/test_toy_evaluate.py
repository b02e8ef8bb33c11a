import copy

import numpy as np

from toy_jax import configs, evaluate, model, vocab


def test_untrained_model_is_chance():
    # RADD init: zero output layer -> uniform prediction over the N_TARGETS outputs
    cfg = configs.ModelConfig(d_model=16, seq_len=4, init="radd")
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


def test_untrained_model_letter_level():
    cfg = configs.ModelConfig(d_model=16, seq_len=4, init="radd")
    g, p = model.split_model(model.init_model(cfg, 0))
    r = evaluate.evaluate_params(g, p, "mdm", 4)
    for d in ("forward", "reverse"):
        m = r[d]["infill_letter"]
        np.testing.assert_allclose(m["rank"], 26.5)  # middle of the 52 letters
        np.testing.assert_allclose(m["p_target"], 1 / 52, rtol=1e-5)
    assert set(r["forward"]) == set(evaluate.PROTOCOLS)


def _results(fwd_completion: dict) -> dict:
    """A constructed results.json: the MDM of each seed with the given forward completion."""
    def block(f):
        m = dict(topk_success=f, greedy_acc=f, p_target=f, rank=1.0)
        return {"forward": {p: dict(m) for p in evaluate.PROTOCOLS},
                "reverse": {p: dict(m, topk_success=0.25, greedy_acc=0.0)
                            for p in evaluate.PROTOCOLS}}
    per_seed = {str(s): {"mdm": {**block(0.0), "ema": block(f)}}
                for s, f in fwd_completion.items()}
    return {"seeds": list(fwd_completion), "headline": {"mdm": "ema"}, "per_seed": per_seed}


def test_summary_flags_seeds_that_did_not_learn():
    from toy_jax.train import summary

    assert evaluate.forward_status(0.95) == "learned"
    assert evaluate.forward_status(evaluate.LEARNED_AT) == "learned"
    assert evaluate.forward_status(0.7) == "partial"
    assert evaluate.forward_status(0.1) == "collapsed"
    text = summary(_results({0: 0.02, 1: 0.996, 2: 0.7}))
    lines = text.splitlines()
    rows = {ln.split()[1]: ln for ln in lines if ln.startswith("mdm ")}
    assert rows["0"].endswith("collapsed") and rows["1"].endswith("learned")
    assert rows["2"].endswith("partial")
    assert " 99.6/ 99.6" in rows["1"] and " 25.0/  0.0" in rows["1"]  # percent, EMA weights
    warn = [ln for ln in lines if ln.startswith("WARNING")]
    assert len(warn) == 1 and "mdm seed 0 did NOT learn the forward rule" in warn[0]
    assert sum(ln.startswith("NOTE: mdm seed 2") for ln in lines) == 1
    assert "1 learned" in text  # the mean over the learned seeds only, beside the mean
    ok = summary(_results({0: 0.99, 1: 0.97}))
    assert "WARNING" not in ok and "Every seed of every model learned" in ok


def test_reevaluate_run_adds_the_letter_level_reading(tmp_path):
    """A finished run from before the letter-level reading is scored again from its
    checkpoints: the new reading appears, every earlier number is unchanged."""
    import json

    from toy_jax import rundir

    cfg = configs.make_config(L=3, preset="quick", model="both", seeds=(0,),
                              model_overrides=dict(d_model=8),
                              train_overrides=dict(steps=2, batch_size=4, warmup_steps=1,
                                                   track_every=0, log_every=2, ckpt_every=2))
    new = rundir.run_experiment(cfg, tmp_path, progress=False)
    old = copy.deepcopy(new)
    for block in [old["models"][m] for m in old["models"]] + \
            [old["models"][m]["ema"] for m in old["models"]]:
        for d in ("forward", "reverse"):
            del block[d]["infill_letter"]
    (tmp_path / "results.json").write_text(json.dumps(old))
    again = rundir.reevaluate_run(tmp_path)
    assert again["models"] == new["models"] and again["timing"] == new["timing"]
    assert json.loads((tmp_path / "results.json").read_text())["models"] == new["models"]
