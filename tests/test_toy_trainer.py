import json

import jax
import numpy as np
import pytest

from toy_jax import configs, rundir, trainer
from toy_jax.checkpoint import Checkpointer


def _cfg(**train):
    return configs.make_config(
        L=4, preset="quick", model="mdm", seeds=(0, 1),
        model_overrides=dict(d_model=16),
        train_overrides=dict(dict(steps=4, batch_size=8, track_every=0, log_every=2,
                                  ckpt_every=2, warmup_steps=2), **train))


def _leaves(tree):
    return [np.asarray(a) for a in jax.tree.leaves(tree)]


def test_vmapped_seeds_equal_separate_runs():
    cfg = _cfg()
    both = trainer.train(cfg)["mdm"]  # seeds 0 and 1 in one vmapped program
    one = trainer.train(cfg, seeds=(1,))["mdm"]  # seed 1 alone
    for tree in ("params", "ema"):
        for a, b in zip(_leaves(trainer.seed_slice(getattr(both, tree), 1)),
                        _leaves(trainer.seed_slice(getattr(one, tree), 0))):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    p0, p1 = (_leaves(trainer.seed_slice(both.params, i)) for i in (0, 1))
    assert any(not np.allclose(a, b) for a, b in zip(p0, p1))  # seeds really differ


def test_ema_warmup_rule():
    d = [float(trainer.ema_decay(n, 0.9999)) for n in (1, 2, 10, 10 ** 6)]
    np.testing.assert_allclose(d, [2 / 11, 3 / 12, 11 / 20, 0.9999], rtol=1e-6)


def test_checkpoint_round_trip_and_resume(tmp_path):
    cfg = _cfg()

    def run(d, stop_at=None):
        ck = Checkpointer(tmp_path / d)
        try:
            return trainer.train_model(cfg, "mdm", ckpt=ck, metrics_path=tmp_path / f"{d}.jsonl",
                                       progress=False, stop_at=stop_at)
        finally:
            ck.close()

    straight = run("a")
    run("b", stop_at=2)  # interrupted after the step-2 checkpoint
    resumed = run("b")
    assert resumed.timing["steps_run"] == 2 and straight.timing["steps_run"] == 4
    for tree in ("params", "ema"):
        for a, b in zip(_leaves(getattr(straight, tree)), _leaves(getattr(resumed, tree))):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    rows = [json.loads(l) for l in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["seed"] == 0] == [2, 4]
    # round trip: the checkpoint restores exactly the trained state
    ck = Checkpointer(tmp_path / "a")
    st = ck.restore(trainer.init_states(*cfg.configs_for("mdm"), cfg.seeds))
    ck.close()
    assert int(np.asarray(st.step)[0]) == 4
    for a, b in zip(_leaves(st.params), _leaves(straight.params)):
        np.testing.assert_array_equal(a, b)


def test_run_dir_tracking_and_loader(tmp_path):
    cfg = _cfg(track_every=2)
    rundir.prepare_run_dir(cfg, tmp_path)
    ck = Checkpointer(tmp_path / "checkpoints" / "mdm")
    try:
        trainer.train_model(cfg, "mdm", ckpt=ck, metrics_path=tmp_path / "metrics.jsonl",
                            progress=False)
    finally:
        ck.close()
    run = rundir.load_run(tmp_path)  # rebuilds the model from the directory alone
    rows = run.metrics("mdm")
    assert len(rows) == 4  # 2 chunks x 2 seeds
    for k in ("attn_fwd_weight", "attn_rev_score", "infill_rev_p_target",
              "ema_infill_fwd_greedy_acc", "ema_attn_rev_weight", "loss", "lr"):
        assert all(np.isfinite(r[k]) for r in rows), k
    assert run.step("mdm") == 4 and run.config == cfg
    m = run.model("mdm", seed=1, ema=True)
    assert m(np.zeros((1, 4), np.int32)).shape == (1, 4, 53)
    per_seed = {"mdm": {s: {"forward": {"x": float(s)}} for s in cfg.seeds}}
    res = rundir.build_results(cfg, per_seed, {})
    assert res["models"]["mdm"]["forward"]["x"] == 0.5  # mean over seeds 0 and 1
    assert res["models_sem"]["mdm"]["forward"]["x"] == 0.5
    assert res["headline"] == {"mdm": "ema"} and set(res["per_seed"]) == {"0", "1"}


def test_different_config_refused(tmp_path):
    rundir.prepare_run_dir(_cfg(), tmp_path)
    with pytest.raises(rundir.RunDirError, match="different config"):
        rundir.prepare_run_dir(_cfg(lr=1e-2), tmp_path)


def test_probe_of_raw_and_ema_equals_separate_probes(tmp_path):
    """The chunk probes raw and EMA weights in one vmapped call; it equals two separate calls."""
    from toy_jax import tracking

    cfg = _cfg(track_every=2, steps=2)
    mcfg, tcfg = cfg.configs_for("mdm")
    g = trainer.graphdef_for(mcfg)
    st, m = trainer.make_chunk(g, mcfg, tcfg, cfg.L, 2, True)(
        trainer.init_states(mcfg, tcfg, cfg.seeds))
    probe = tracking.make_probe(cfg.L, "mdm")
    for i in range(len(cfg.seeds)):
        for prefix, tree in (("", st.params), ("ema_", st.ema)):
            ref = tracking.track(trainer.merge(g, trainer.seed_slice(tree, i)), probe)
            for k, v in ref.items():
                # ranks and accuracies are means of discrete values, where a near-tie can
                # flip under a different summation order (one flip moves them by ~1/N)
                tol = 0.05 if ("rank" in k or "acc" in k) else 1e-5
                np.testing.assert_allclose(np.asarray(m[prefix + k])[i], v, rtol=1e-4,
                                           atol=tol, err_msg=prefix + k)


def test_estimate_line_before_the_run(capsys):
    """One line with the measured s/step and the total estimate, after compilation."""
    cfg = _cfg(steps=8)  # 4 chunks of 2 steps
    tm = trainer.train_model(cfg, "mdm", progress=False, announce=True)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "s/step after compilation" in out[0], out
    assert "for 8 steps" in out[0] and "2 seed(s)" in out[0]
    t = tm.timing
    assert t["steps_run"] == 8 and t["first_chunk_s"] > 0 and t["ms_per_step"] > 0
    trainer.train_model(cfg, "mdm", progress=False, announce=False)
    assert capsys.readouterr().out == ""
    # every model still to train counts, the later ones with the first model's compile time
    both = configs.make_config(L=4, preset="paper", model="both")
    line = trainer._estimate_line(both, "mdm", 2.0, 3000, 30.0)
    assert "about 200 min for 3000 steps x 2 models" in line and "--preset quick" in line
    assert "x 2 models" not in trainer._estimate_line(both, "arm", 2.0, 3000, 30.0)


def test_compile_cache_switch(monkeypatch, tmp_path):
    old = jax.config.jax_compilation_cache_dir
    try:
        monkeypatch.setenv(trainer.CACHE_ENV, "0")
        assert trainer.enable_compile_cache() is None
        monkeypatch.setenv(trainer.CACHE_ENV, str(tmp_path / "cache"))
        assert trainer.enable_compile_cache() == str(tmp_path / "cache")
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "cache")
        assert (tmp_path / "cache").is_dir()
    finally:
        jax.config.update("jax_compilation_cache_dir", old)
