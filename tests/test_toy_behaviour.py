"""Behavioural tests of the toy experiment's central comparison (Section 4.3, Table 2).

Each test checks a property that a wrong forward/reverse bookkeeping would break, and would fail
on it: the trainer's batches hold forward placements only (checked on the batches the jitted
training step draws, at the point where the loss is computed); the evaluator scores constructed
models whose behaviour is known exactly (a model that knows only the forward rule scores 100 %
forward and 0 % reverse in every reading, one that knows both scores 100 % both ways; pad first
and target second is 0 % greedy `infill` and 100 % `infill_letter`), for the MDM and the ARM
prediction offsets; and a short real training run learns the forward rule.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toy_jax import configs, data, evaluate, losses, trainer, vocab

L = 5
IMPOSSIBLE = -1e9  # logit of outputs a constructed model never produces


# ----------------------------------------------------------------- constructed models
@dataclass(frozen=True)
class Oracle:
    """A constructed model with known behaviour, standing in for the network behind
    `evaluate.query_logits` (hashable: it is the static `graphdef` of the jitted evaluators).

    objective 'mdm': full attention, the prediction for an [M] is read at the [M] itself.
    objective 'arm': causal, the logits at position i predict position i + 1 from x[:i+1]
    only; an input holding [M] (which an ARM never sees in training) gives the pad `0`.
    knows: 'forward' = answers the partner letter only when the lowercase comes first in the
    sequence (what training on forward placements teaches), 'both' = answers it always,
    'pad_first' = always ranks the pad first and the partner second.
    """

    objective: str
    knows: str

    def logits(self, x_BxL, pos_B):
        B, n = x_BxL.shape
        j = jnp.arange(n)[None, :]
        q = pos_B[:, None]
        if self.objective == "arm":  # causal: the positions after the query are unseen
            x_BxL = jnp.where(j <= q, x_BxL, vocab.PAD)
        is_lo = (x_BxL >= vocab.LOWER0) & (x_BxL < vocab.UPPER0)
        is_up = (x_BxL >= vocab.UPPER0) & (x_BxL < vocab.MASK)
        n_lo, n_up = is_lo.sum(-1), is_up.sum(-1)
        letter = jnp.where(is_lo, x_BxL - vocab.LOWER0,
                           jnp.where(is_up, x_BxL - vocab.UPPER0, 0)).max(-1)
        lo_pos = jnp.where(is_lo, j, -1).max(-1)
        up_pos = jnp.where(is_up, j, -1).max(-1)
        one_lo = (n_lo == 1) & (n_up == 0)  # only the lowercase is visible: partner = uppercase
        one_up = (n_up == 1) & (n_lo == 0)
        if self.objective == "mdm":
            target = pos_B  # the [M] being predicted
            at_mask = x_BxL[jnp.arange(B), pos_B] == vocab.MASK
        else:
            target = pos_B + 1
            at_mask = ~(x_BxL == vocab.MASK).any(-1)  # an [M] in view: out of distribution
        lower_first = (one_lo & (lo_pos < target)) | (one_up & (target < up_pos))
        if self.knows == "forward":
            answer = at_mask & lower_first
        else:
            answer = at_mask & (one_lo | one_up)
        partner = jnp.where(one_lo, vocab.UPPER0 + letter, vocab.LOWER0 + letter)
        cue = jnp.where(one_lo, vocab.LOWER0 + letter, vocab.UPPER0 + letter)
        rows = jnp.arange(B)
        lg = jnp.full((B, vocab.N_TARGETS), IMPOSSIBLE)
        lg = lg.at[rows, cue].set(-100.0)  # a wrong letter: never the target
        if self.knows == "pad_first":
            lg = lg.at[rows, vocab.PAD].set(0.0)
            return lg.at[rows, partner].set(jnp.where(answer, -1.0, IMPOSSIBLE))
        lg = lg.at[rows, vocab.PAD].set(jnp.where(answer, -50.0, 0.0))
        return lg.at[rows, partner].set(jnp.where(answer, 0.0, IMPOSSIBLE))


@pytest.fixture
def with_oracle(monkeypatch):
    """Route the evaluator's one model call to the Oracle passed as graphdef."""
    monkeypatch.setattr(evaluate, "query_logits",
                        lambda graphdef, params, x_BxL, pos_B: graphdef.logits(x_BxL, pos_B))


def _evaluate(oracle: Oracle) -> dict:
    return evaluate.evaluate_params(oracle, {}, oracle.objective, L, configs.EvalConfig())


def _table(r: dict, metric: str) -> dict:
    return {(d, p): r[d][p][metric] for d in evaluate.DIRECTIONS for p in evaluate.PROTOCOLS}


@pytest.mark.parametrize("objective", ["mdm", "arm"])
def test_forward_only_model_scores_forward_not_reverse(with_oracle, objective):
    """Catches: 'reverse' evaluated on the forward placements, the ARM read at the target
    position instead of the one before it, a reading that leaks the answer."""
    r = _evaluate(Oracle(objective, "forward"))
    want = {(d, p): 1.0 if d == "forward" else 0.0
            for d in evaluate.DIRECTIONS for p in evaluate.PROTOCOLS}
    for metric in ("greedy_acc", "topk_success"):
        assert _table(r, metric) == want, metric
    for p in ("infill", "infill_letter"):
        assert r["forward"][p]["rank"] == 1.0 and r["reverse"][p]["rank"] > 1.0, p


@pytest.mark.parametrize("objective", ["mdm", "arm"])
def test_model_knowing_both_directions_scores_both(with_oracle, objective):
    r = _evaluate(Oracle(objective, "both"))
    for metric in ("greedy_acc", "topk_success"):
        assert set(_table(r, metric).values()) == {1.0}, metric
    for d in evaluate.DIRECTIONS:
        assert r[d]["infill"]["rank"] == 1.0 and r[d]["infill_letter"]["rank"] == 1.0


@pytest.mark.parametrize("objective", ["mdm", "arm"])
def test_letter_level_reading_excludes_pad(with_oracle, objective):
    """Pad first, target second: 0 % greedy infill, 100 % letter-level (issue of Figure 5)."""
    r = _evaluate(Oracle(objective, "pad_first"))
    for d in evaluate.DIRECTIONS:
        inf, let = r[d]["infill"], r[d]["infill_letter"]
        assert inf["greedy_acc"] == 0.0 and inf["rank"] == 2.0
        np.testing.assert_allclose(inf["p_target"], 1 / (1 + np.e), rtol=1e-5)
        assert let["greedy_acc"] == 1.0 and let["topk_success"] == 1.0 and let["rank"] == 1.0
        np.testing.assert_allclose(let["p_target"], 1.0, rtol=1e-6)
        assert 0.0 < inf["topk_success"] < 1.0  # the pad is sampled most of the time


def test_evaluation_placements_are_the_right_sets():
    """The queries themselves: forward cue lowercase before target uppercase, reverse the
    uppercase before its lowercase, and the two sets are disjoint."""
    for d in evaluate.DIRECTIONS:
        pl = data.placements(L, d)
        cue_pos, tgt_pos, cue_id, tgt_id = data.query_spec(pl, d)
        assert np.all(cue_pos < tgt_pos)
        lower_cue = (cue_id >= vocab.LOWER0) & (cue_id < vocab.UPPER0)
        assert np.all(lower_cue == (d == "forward"))
    seqs = {d: {tuple(r) for r in data.make_sequences(data.placements(L, d), L)}
            for d in evaluate.DIRECTIONS}
    assert not seqs["forward"] & seqs["reverse"]


# ------------------------------------------------------------------------ training data
def _is_forward(x_NxL: np.ndarray) -> np.ndarray:
    """Per sequence: exactly one lowercase and its uppercase, the lowercase first, pad elsewhere."""
    lo = (x_NxL >= vocab.LOWER0) & (x_NxL < vocab.UPPER0)
    up = (x_NxL >= vocab.UPPER0) & (x_NxL < vocab.MASK)
    pad = x_NxL == vocab.PAD
    ok = (lo.sum(1) == 1) & (up.sum(1) == 1) & ((lo | up | pad).all(1))
    lo_pos, up_pos = lo.argmax(1), up.argmax(1)
    rows = np.arange(len(x_NxL))
    same = x_NxL[rows, lo_pos] - vocab.LOWER0 == x_NxL[rows, up_pos] - vocab.UPPER0
    return ok & same & (lo_pos < up_pos)


def test_is_forward_helper():
    assert _is_forward(data.make_sequences(data.forward_placements(L), L)).all()
    assert not _is_forward(data.make_sequences(data.reverse_placements(L), L)).any()


def test_trainer_batches_are_forward_placements(monkeypatch):
    """The clean sequences that reach the loss inside the jitted, vmapped training program
    (`trainer.make_step` via `trainer.train`) are forward placements, for both objectives."""
    seen = []

    def spy(loss):
        def wrapped(logits_fn, key, x_BxL, *rest):
            jax.debug.callback(lambda x: seen.append(np.asarray(x)), x_BxL)
            return loss(logits_fn, key, x_BxL, *rest)
        return wrapped

    for table, name in ((losses.MDM_LOSSES, "t_dce"), (losses.LOSSES, "arm")):
        monkeypatch.setitem(table, name, spy(table[name]))  # what `losses.loss_for` returns
    clear = getattr(trainer.make_chunk, "cache_clear", lambda: None)
    clear()  # no compiled program built without the spy
    steps, batch, seeds = 6, 24, (0, 1)
    cfg = configs.make_config(L=L, preset="quick", model="both", seeds=seeds,
                              model_overrides=dict(d_model=8),
                              train_overrides=dict(steps=steps, batch_size=batch, warmup_steps=1,
                                                   track_every=0, log_every=3, ckpt_every=3))
    try:
        trainer.train(cfg)
    finally:
        clear()  # and none left behind with it
    x = np.concatenate([a.reshape(-1, L) for a in seen])
    assert len(x) == 2 * steps * len(seeds) * batch  # every step of every seed and model
    assert _is_forward(x).all(), f"{(~_is_forward(x)).sum()} of {len(x)} training sequences " \
                                 "are not forward placements"
    # the batches cover the training set, not a fixed few sequences
    assert len({tuple(r) for r in x}) > 0.5 * data.n_placements(L)


# ------------------------------------------------------------------- a real training run
FWD_THRESHOLD = 0.5


def test_short_training_learns_forward_rule():
    """A real training run on a tiny config learns the forward rule.

    The ARM (quick preset, L = 4, hidden 32, 300 steps of batch 64) is trained and its forward
    completion is generated greedily. Chance: a model that has not learned the rule emits a
    given uppercase after the cue with probability about 1/53 per generated position (at most
    3 positions at L = 4, so < 6 %); a model that learned only the marginal "an uppercase
    follows" but not which one gets 1/26 (4 %). This config reached 88-100 % greedy forward
    completion and 100 % letter-level forward infill on seeds 0-5 (0 % reverse), so
    FWD_THRESHOLD = 50 % is far above chance and still clear of the seed-to-seed spread. The
    letter-level infill reading of the same model must also exceed it: next to the cue, the
    right uppercase is the most probable letter.
    """
    cfg = configs.make_config(L=4, preset="quick", model="arm", seeds=(0,),
                              model_overrides=dict(d_model=32),
                              train_overrides=dict(steps=300, batch_size=64, warmup_steps=20,
                                                   track_every=0, log_every=300,
                                                   ckpt_every=300))
    tm = trainer.train(cfg)["arm"]
    r = evaluate.evaluate_direction(tm.graphdef, trainer.seed_slice(tm.params, 0), "arm", 4,
                                    "forward", cfg.eval)
    assert r["completion"]["greedy_acc"] > FWD_THRESHOLD, r["completion"]
    assert r["infill_letter"]["greedy_acc"] > FWD_THRESHOLD, r["infill_letter"]
