"""toy_jax.bench: the PyTorch comparator does the JAX training step's work (batch sampling,
forward, L_MDM, clipping, AdamW with warm-up, EMA), and the benchmark writes the JAX,
torch.compile and eager torch timings with their ratios."""
import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

torch = pytest.importorskip("torch")

from toy_jax import bench, configs, data, losses, model, trainer, vocab  # noqa: E402

L = 4


def _cfgs(**train):
    cfg = configs.make_config(L=L, preset="quick", model="mdm",
                              model_overrides=dict(d_model=16, n_heads=2),
                              train_overrides=dict(batch_size=6, **train))
    return cfg.configs_for("mdm")


def _fixed_batch(B=6, seed=0):
    """Training sequences, t in [t_eps, 1) and masks (numpy), with every row masked somewhere."""
    rng = np.random.default_rng(seed)
    fwd = data.forward_placements(L)
    x = data.make_sequences(fwd[rng.integers(0, len(fwd), B)], L)
    t = (1e-3 + (1 - 1e-3) * rng.random(B)).astype(np.float32)
    masked = rng.random((B, L)) < t[:, None]
    masked[:, 0] = True
    return x, masked, t


def test_loss_formula_matches_jax_on_the_same_logits():
    rng = np.random.default_rng(1)
    B, T = 5, vocab.N_TARGETS
    logits = (3 * rng.normal(size=(B, L, T))).astype(np.float32)
    x = rng.integers(0, T, size=(B, L)).astype(np.int64)
    masked = rng.random((B, L)) < 0.5
    masked[0] = False  # a row without masks contributes 0, not nan
    t = np.array([0.9, 0.05, 0.5, 0.3, 1e-3], np.float32)  # the 1/t weight matters
    want = float(losses.mdm_loss_from_masks(jnp.asarray(logits), jnp.asarray(x, jnp.int32),
                                            jnp.asarray(masked), jnp.asarray(t)))
    got = float(bench.torch_mdm_loss_from_masks(torch.from_numpy(logits), torch.from_numpy(x),
                                                torch.from_numpy(masked), torch.from_numpy(t)))
    assert got == pytest.approx(want, rel=1e-5)
    # not a per-token mean, nor unweighted: those differ by far more than the tolerance
    nll = float(bench.torch_mdm_loss_from_masks(torch.from_numpy(logits), torch.from_numpy(x),
                                                torch.from_numpy(masked), torch.ones(B)))
    assert abs(nll - want) > 0.1 * abs(want)


def test_batches_are_training_sequences():
    fwd = torch.from_numpy(data.forward_placements(L)).long()
    got = bench.torch_make_sequences(fwd, L).numpy()
    np.testing.assert_array_equal(got, data.make_sequences(data.forward_placements(L), L))
    ts = bench.TorchStep(*_cfgs(), L, bench.jax_initial_params(*_cfgs()))
    x = ts.sample_batch().numpy()
    assert x.shape == (6, L)
    lower = (x >= vocab.LOWER0) & (x < vocab.UPPER0)
    assert (lower.sum(1) == 1).all() and (lower.argmax(1) < (x >= vocab.UPPER0).argmax(1)).all()
    t = bench.torch_sample_t(10_000, 1e-3).numpy()
    assert t.min() >= 1e-3 and t.max() < 1 and abs(t.mean() - 0.5) < 0.02
    ts_ = bench.torch_sample_t(8, 1e-3, "stratified").numpy()
    np.testing.assert_allclose(np.diff(np.sort((ts_ - 1e-3) / (1 - 1e-3))), 1 / 8, atol=1e-5)


@pytest.mark.parametrize("pos", ["rope", "learned"])
def test_forward_loss_and_grads_at_init_match_jax(pos):
    mcfg, tcfg = _cfgs()
    mcfg = dataclasses.replace(mcfg, pos=pos)
    p0 = bench.jax_initial_params(mcfg, tcfg)
    ts = bench.TorchStep(mcfg, tcfg, L, p0)
    x, masked, t = _fixed_batch()
    x_t = np.where(masked, vocab.MASK, x)
    g = model.graphdef_for(mcfg)

    def jloss(params):
        logits = model.apply(g, params, jnp.asarray(x_t))
        return losses.mdm_loss_from_masks(logits, jnp.asarray(x), jnp.asarray(masked),
                                          jnp.asarray(t))

    want, jgrads = jax.value_and_grad(jloss)({k: jnp.asarray(v) for k, v in p0.items()})
    logits = bench.torch_logits(ts.params, torch.from_numpy(x_t).long(), mcfg, ts.rope)
    got = bench.torch_mdm_loss_from_masks(logits, torch.from_numpy(x).long(),
                                          torch.from_numpy(masked), torch.from_numpy(t))
    got.backward()
    got = float(got.detach())
    assert got == pytest.approx(float(want), rel=1e-5)
    # at GPT-2 init the logits are near zero: about log(53) per masked token, weighted by 1/t
    uniform = math.log(vocab.N_TARGETS) * float(np.mean(masked.sum(1) / t))
    assert got == pytest.approx(uniform, rel=0.05)
    for k, v in jgrads.items():
        np.testing.assert_allclose(ts.params[k].grad.numpy(), np.asarray(v), rtol=1e-4,
                                   atol=1e-5 * float(np.abs(v).max()) + 1e-8, err_msg=k)


def test_update_matches_optax_with_clipping_warmup_and_ema():
    # clipping active, lr rising each step, weight decay on, EMA decay reaching its cap
    mcfg, tcfg = _cfgs(lr=1e-2, warmup_steps=3, grad_clip=0.05, weight_decay=0.1,
                       ema_decay=0.2)
    p0 = bench.jax_initial_params(mcfg, tcfg)
    ts = bench.TorchStep(mcfg, tcfg, L, p0)
    params = {k: jnp.asarray(v) for k, v in p0.items()}
    ema, tx = params, trainer.make_optimizer(tcfg)
    opt_state = tx.init(params)
    rng = np.random.default_rng(2)
    for n in range(1, 5):  # the update of trainer.make_step, given the gradients
        grads = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in p0.items()}
        updates, opt_state = tx.update({k: jnp.asarray(v) for k, v in grads.items()},
                                       opt_state, params)
        params = optax.apply_updates(params, updates)
        d = trainer.ema_decay(jnp.float32(n), tcfg.ema_decay)
        ema = jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, ema, params)
        for k, p in ts.params.items():
            p.grad = torch.from_numpy(grads[k].copy())  # clipping scales in place
        gnorm = ts.update()
        assert float(gnorm) == pytest.approx(float(optax.global_norm(grads)), rel=1e-5)
        assert float(gnorm) > tcfg.grad_clip
        for i, k in enumerate(ts.params):
            np.testing.assert_allclose(ts.params[k].detach().numpy(), np.asarray(params[k]),
                                       rtol=1e-5, atol=1e-6, err_msg=f"{k} step {n}")
            np.testing.assert_allclose(ts.ema[i].numpy(), np.asarray(ema[k]), rtol=1e-5,
                                       atol=1e-6, err_msg=f"ema {k} step {n}")
    assert float(ts.lr) == pytest.approx(tcfg.lr)  # warm-up done after 3 updates
    assert float(ts.n) == 4


def test_bench_end_to_end_writes_three_timings_and_ratios(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--L", str(L), "--preset", "quick", "--steps", "1", "--repeats", "1",
                       "--warmup", "2", "--no-tracking", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    ms = {k: res[k]["ms_per_step"] for k in ("torch", "torch_eager")}
    ms["jax"] = res["jax"]["train"]["ms_per_step"]
    assert all(v > 0 and math.isfinite(v) for v in ms.values()), ms
    assert res["jax_over_torch"] == pytest.approx(ms["jax"] / ms["torch"])
    assert res["jax_over_torch_eager"] == pytest.approx(ms["jax"] / ms["torch_eager"])
    assert res["torch_over_eager"] == pytest.approx(ms["torch"] / ms["torch_eager"])
    assert len(res["jax_over_torch_per_round"]) == 1
    assert res["torch"]["mode"] == "torch.compile" and res["torch_eager"]["mode"] == "eager"
    # the same threads on every side, and no compilation inside the timed chunks
    assert res["jax"]["threads"] == res["torch"]["threads"] == res["torch_eager"]["threads"]
    assert res["threads"] == res["jax"]["threads"] >= 1
    assert isinstance(res["warnings"], list)
    assert res["torch"]["graphs_compiled_in_warmup"] >= 1
    assert res["torch"]["graphs_compiled_while_timing"] == 0
    text = capsys.readouterr().out
    for s in ("JAX / torch.compile =", "JAX / eager torch =", "torch.compile / eager torch ="):
        assert s in text


def test_script_is_the_package_entry_point():
    """scripts/bench_toy.py (run, not imported) exits through toy_jax.bench.main."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "bench_toy.py"
    r = subprocess.run([sys.executable, str(script), "--L", "1"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip() == ("bench_toy.py: error: need L >= 2, steps >= 1, repeats >= 1, "
                                "warmup >= 1")
