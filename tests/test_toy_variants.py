"""The Table 2 variants and their machinery: per-model positions, the lambda-DCE loss, a
larger output layer, the vmapped / KV-cached evaluation, the noise-free top-k readings, the
grid runner and the verdict tables."""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toy_jax import configs, evaluate, experiments, losses, model, trainer, verdict, vocab


# ------------------------------------------------------------------ configs
def test_quick_preset_gives_the_arm_learned_positions_only():
    cfg = configs.make_config(L=8, preset="quick")
    assert cfg.configs_for("arm")[0].pos == "learned"
    assert cfg.configs_for("mdm")[0].pos == "rope"
    paper = configs.make_config(L=8, preset="paper")
    assert {paper.configs_for(n)[0].pos for n in ("mdm", "arm")} == {"rope"}
    forced = configs.make_config(L=8, preset="quick", model_overrides={"pos": "rope"})
    assert forced.configs_for("arm")[0].pos == "rope"  # an explicit --pos applies to all
    d = cfg.to_dict()
    for m in d["models"]:
        m.pop("pos")  # a config.json written before per-model positions
    old = configs.RunConfig.from_dict(d)
    assert old.configs_for("arm")[0].pos == "rope" and old != cfg


def test_quick_preset_trains_the_mdm_longer_and_old_runs_extend(tmp_path):
    from toy_jax import rundir

    cfg = configs.make_config(L=8, preset="quick")
    assert (cfg.steps_of("mdm"), cfg.steps_of("arm")) == (3000, 1500)
    forced = configs.make_config(L=8, preset="quick", train_overrides={"steps": 40})
    assert (forced.steps_of("mdm"), forced.steps_of("arm")) == (40, 40)
    d = cfg.to_dict()  # a quick run from before the MDM's own steps: both models 1,500
    for m in d["models"]:
        m.pop("steps")
    old = configs.RunConfig.from_dict(d)
    assert old.steps_of("mdm") == 1500 and rundir._extends(old, cfg)
    assert not rundir._extends(cfg, old)  # fewer steps: refused
    fewer = configs.make_config(L=8, preset="quick", train_overrides={"steps": 1000})
    assert not rundir._extends(old, fewer)
    other = configs.make_config(L=8, preset="quick", model_overrides={"d_model": 32})
    assert not rundir._extends(old, other)  # another change beside the steps


def test_bad_variant_values_are_refused():
    with pytest.raises(ValueError, match="vocab_size"):
        configs.ModelConfig(seq_len=4, vocab_size=10)
    with pytest.raises(ValueError, match="loss"):
        configs.TrainConfig(loss="nope")


# ------------------------------------------------------------------ lambda-DCE
def test_lambda_dce_masks_a_uniform_number_of_tokens_weighted_L_over_k():
    L, B = 6, 4000
    seen = {}

    def logits_fn(x_t):
        seen["n"] = (x_t == vocab.MASK).sum(-1)
        return jnp.zeros(x_t.shape + (vocab.N_TARGETS,))

    x = jnp.full((B, L), vocab.PAD, jnp.int32)
    loss = losses.lambda_dce_loss(logits_fn, jax.random.PRNGKey(0), x)
    # every row: (L/k) * k * log T = L log T, whatever k is
    np.testing.assert_allclose(loss, L * np.log(vocab.N_TARGETS), rtol=1e-5)
    counts = np.bincount(np.asarray(seen["n"]), minlength=L + 1)
    assert counts[0] == 0 and counts[1:].min() > 0.8 * B / L and counts[1:].max() < 1.2 * B / L


def test_lambda_dce_and_t_dce_estimate_the_same_loss():
    """Same expectation, different estimator: Monte-Carlo means agree on a random model."""
    L = 5
    mcfg = configs.ModelConfig(d_model=16, seq_len=L, init="standard")
    g, p = model.split_model(model.init_model(mcfg, 3))
    from toy_jax import data

    x = jnp.asarray(data.make_sequences(data.forward_placements(L)[::7], L))
    x = jnp.tile(x, (20, 1))
    fn = lambda xt: model.apply(g, p, xt)  # noqa: E731
    est = {}
    for name, f in (("t", losses.mdm_loss), ("lam", losses.lambda_dce_loss)):
        vals = [float(f(fn, jax.random.PRNGKey(i), x, 1e-3)) for i in range(12)]
        est[name] = (np.mean(vals), np.std(vals, ddof=1) / np.sqrt(len(vals)))
    (a, sa), (b, sb) = est["t"], est["lam"]
    assert abs(a - b) < 4 * np.hypot(sa, sb) + 0.01 * a, est


def test_the_trainer_uses_the_configured_mdm_loss(monkeypatch):
    calls = []
    real = losses.lambda_dce_loss
    monkeypatch.setitem(losses.MDM_LOSSES, "lambda_dce",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    cfg = configs.make_config(L=4, preset="quick", model="mdm",
                              model_overrides=dict(d_model=8),
                              train_overrides=dict(loss="lambda_dce", steps=1, batch_size=4,
                                                   track_every=0, log_every=1, ckpt_every=1))
    trainer.train(cfg)
    assert calls


# ------------------------------------------------------------------ larger output layer
def test_vocab_size_widens_the_head_and_letter_readings_stay_among_letters():
    mcfg = configs.ModelConfig(d_model=16, seq_len=4, init="radd", vocab_size=100)
    g, p = model.split_model(model.init_model(mcfg, 0))
    assert p["w_head"].shape == (16, 100)
    r = evaluate.evaluate_params(g, p, "mdm", 4)  # zero head: uniform over the 100 outputs
    for d in ("forward", "reverse"):
        np.testing.assert_allclose(r[d]["infill"]["p_target"], 1 / 100, rtol=1e-5)
        np.testing.assert_allclose(r[d]["infill"]["rank"], 50.5)
        np.testing.assert_allclose(r[d]["infill_letter"]["p_target"], 1 / 52, rtol=1e-5)
        np.testing.assert_allclose(r[d]["infill_letter"]["rank"], 26.5)


# ------------------------------------------------------------------ evaluation
@pytest.mark.parametrize("objective,attention,pos", [("mdm", "full", "rope"),
                                                     ("arm", "causal", "learned"),
                                                     ("arm", "causal", "rope")])
def test_cached_generation_equals_recomputing(objective, attention, pos):
    L = 6
    mcfg = configs.ModelConfig(d_model=16, seq_len=L, attention=attention, pos=pos)
    g, p = model.split_model(model.init_model(mcfg, 1))
    p = jax.tree.map(lambda a: a * 20.0 if a.ndim == 2 else a, p)  # peaked, varied outputs
    from toy_jax import data

    pl = data.placements(L, "forward")
    cue, _, _, _ = data.query_spec(pl, "forward")
    x, cue = jnp.asarray(data.make_sequences(pl, L)), jnp.asarray(cue, jnp.int32)
    noise = jax.random.gumbel(jax.random.PRNGKey(0), (len(pl), L, 3))
    for greedy in (True, False):
        a = evaluate._generate(g, p, x, cue, noise, objective, greedy)
        b = evaluate._generate_cached(g, p, x, cue, noise, objective, greedy)
        assert (np.asarray(a) == np.asarray(b)).all()
        assert len(np.unique(np.asarray(a)[:, -1])) > 2  # the check is not vacuous


def test_stacked_and_chunked_evaluation_equal_one_at_a_time():
    L = 5
    mcfg = configs.ModelConfig(d_model=16, seq_len=L)
    g = model.graphdef_for(mcfg)
    ps = [model.split_model(model.init_model(mcfg, s))[1] for s in (0, 1)]
    stack = jax.tree.map(lambda *a: jnp.stack(a), *ps)
    both = evaluate.evaluate_stacked(g, stack, "mdm", L)
    chunked = evaluate.evaluate_stacked(g, stack, "mdm", L, configs.EvalConfig(batch_size=7))
    for i, p in enumerate(ps):
        one = evaluate.evaluate_params(g, p, "mdm", L)
        for d in evaluate.DIRECTIONS:
            for proto in evaluate.PROTOCOLS:
                for m in ("topk_success", "greedy_acc"):
                    assert both[i][d][proto][m] == one[d][proto][m]
                    assert chunked[i][d][proto][m] == one[d][proto][m]
                np.testing.assert_allclose(both[i][d][proto]["p_target"],
                                           one[d][proto]["p_target"], rtol=1e-5)


def test_topk_expectations_on_constructed_logits():
    lg = jnp.log(jnp.asarray([[0.5, 0.3, 0.1, 0.1], [0.5, 0.3, 0.15, 0.05]]))
    r = evaluate.topk_expectations(lg, jnp.asarray([1, 3]), 2)
    np.testing.assert_allclose(r["topk_expected"], [0.3 / 0.8, 0.0], rtol=1e-6)
    np.testing.assert_allclose(r["topk_uniform"], [0.5, 0.0])
    np.testing.assert_allclose(r["in_topk"], [1.0, 0.0])


# ------------------------------------------------------------------ grid and verdict
def _tiny(L, **train):
    return configs.make_config(
        L=L, preset="quick", model="both", seeds=(0, 1), model_overrides=dict(d_model=8),
        train_overrides=dict(steps=4, batch_size=4, warmup_steps=1, track_every=2,
                             ckpt_every=4, **train))


def test_grid_runs_resumes_and_renders_a_verdict(tmp_path):
    cells = [("baseline", 3, _tiny(3)), ("lambda_dce", 3, _tiny(3, loss="lambda_dce"))]
    log = []
    dirs = experiments.run_grid(cells, tmp_path, progress=False, log=log.append)
    assert all(experiments.is_finished(c, d) for (_, _, c), d in zip(cells, dirs))
    again = []
    experiments.run_grid(cells, tmp_path, progress=False, log=again.append)
    assert all("reused" in line for line in again)
    rec = verdict.digest([(v, d) for (v, _, _), d in zip(cells, dirs)], "cmd")
    json.dumps(rec)
    mdm = rec["cells"][0]["models"]["mdm"]["seeds"]["0"]["ema"]
    assert set(mdm["final"]) == set(verdict.FINAL) and "rev_top3_exp" in mdm["curve"]
    assert mdm["curve"]["rev_top3_exp"]["steps"] == [2, 4]
    t = verdict.tables(rec, "v")
    head = t["v"].splitlines()[0].split("|")
    rows = [ln for ln in t["v"].splitlines() if ln.startswith("| lambda_dce | 3 | MDM | EMA")]
    assert len(rows) == 1 and "±" in rows[0].split("|")[head.index(" Δ vs baseline ")]
    assert "forward completion" in t["v_forward"]
    assert t["v_arm_positions"].count("\n| baseline | 3 |") == 1  # ARM hazard from checkpoints
    assert verdict.plot(rec, tmp_path / "v.png").stat().st_size > 0


def test_named_grids_cover_table2_and_the_dry_run_lists_them(tmp_path):
    lines = []
    experiments.study("table2_verdict", "paper", tmp_path, dry_run=True, log=lines.append)
    text = lines[0]
    for L in (10, 20, 30, 40):
        for v in ("baseline", "lambda_dce", "vocab_gpt2"):
            assert f"{v:<12} L={L:<3}" in text
    assert "seeds=8" in text and "12 cells" in text
    assert not any(tmp_path.iterdir())  # a dry run writes nothing
    with pytest.raises(ValueError, match="unknown grid"):
        experiments.study("nope", "paper", tmp_path, dry_run=True)


def test_gpu_script_dry_run_lists_the_paper_grid(tmp_path):
    """The prepared GPU command (scripts/gpu_table2_verdict.sh) as a user runs it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, OUT=str(tmp_path), PYTHONPATH=str(root))
    r = subprocess.run(["bash", "scripts/gpu_table2_verdict.sh", "--dry-run"], cwd=root,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    for L in (10, 20, 30, 40):
        assert f"vocab_gpt2   L={L:<3}" in r.stdout and f"baseline     L={L:<3}" in r.stdout
    assert "steps=3000" in r.stdout and "seeds=8" in r.stdout
    assert not any(tmp_path.iterdir())
    bad = subprocess.run([sys.executable, "scripts/toy_grid.py", "--seeds", "0"], cwd=root,
                         env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_extending_one_model_keeps_the_other_models_evaluation(tmp_path, monkeypatch):
    """A run whose MDM alone trains on (per-model steps) evaluates only the MDM again."""
    import dataclasses

    from toy_jax import rundir

    cfg = _tiny(3)
    first = rundir.run_experiment(cfg, tmp_path, progress=False)
    longer = dataclasses.replace(cfg, models=tuple(
        dataclasses.replace(m, steps=8) if m.name == "mdm" else m for m in cfg.models))
    calls = []
    real = rundir.evaluate_trained
    monkeypatch.setattr(rundir, "evaluate_trained",
                        lambda c, name, *a: calls.append(name) or real(c, name, *a))
    again = rundir.run_experiment(longer, tmp_path, progress=False)
    assert calls == ["mdm"]
    assert again["per_seed"]["0"]["arm"] == first["per_seed"]["0"]["arm"]
    assert again["timing"]["mdm"]["steps_run"] == 4
