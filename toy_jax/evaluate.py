"""Forward and reverse evaluation of a trained toy model (Table 2, Appendix E.2).

Three readings of the paper's protocol, all reported:

* `infill` (position given): the target position is set to [M] and every other position of the
  placement is visible (the MDM sees the whole sequence; the ARM, being causal, effectively sees
  the prefix before the target). The target is predicted at its position (MDM objective) or
  from the position before it (ARM objective). The choice is over all N_TARGETS outputs, the pad
  `0` included, so it asks two questions at once: is a letter at this position at all, and
  which one.
* `infill_letter` (letter-level): the same queries and the same logits, with the pad output `0`
  excluded before the choice (`[M]` is never an output), i.e. "which of the 52 letters goes at
  the [M]?". This is the comparison of Figure 5 (the target against every other vocabulary
  character). For the ARM it is the letter it predicts next at the position before the target.
  A model that puts `0` first and the right letter second scores 0 in `infill` and 1 here; in
  training a lowercase never follows its uppercase, so a trained MDM can know the pairing and
  still prefer `0` on reverse queries.
* `completion` (position free): the prompt is the placement up to and including the cue letter;
  every later position is generated, one position per step from left to right (the ARM by
  next-token prediction; the MDM by unmasking the left-most [M] each step while the later ones
  stay [M]). Success: the partner letter appears somewhere after the cue.

Metrics per reading: `topk_success` (sampling from the k = 3 most probable outputs, fixed
evaluation seed; Appendix E.2), `greedy_acc` (argmax instead of sampling), `p_target` (mean
probability of the target) and `rank` (mean rank of the target, 1 = most probable, ties count
one half; among the N_TARGETS outputs, or among the 52 letters for `infill_letter`, whose
`p_target` is likewise renormalised over the letters: p(target) / (1 - p(`0`))). For
`completion`, `p_target` and `rank` are teacher-forced: the true prefix up to the target
position, the target and everything after it masked (MDM) or unseen (ARM); for the ARM these
equal the infill values. Every placement of the set is evaluated.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from toy_jax import data, vocab
from toy_jax.configs import EvalConfig
from toy_jax.losses import prediction_offset
from toy_jax.model import logits_at, merge

DIRECTIONS = ("forward", "reverse")
PROTOCOLS = ("infill", "completion", "infill_letter")
METRICS = ("topk_success", "greedy_acc", "p_target", "rank")

# A seed's training outcome, read from its forward completion top-k success at the end.
COLLAPSE_BELOW = 0.5  # below: the seed collapsed (it did not learn the forward rule at all)
LEARNED_AT = 0.9  # at or above: the seed learned the forward rule


def forward_status(forward_completion: float) -> str:
    """'learned' (>= LEARNED_AT), 'collapsed' (< COLLAPSE_BELOW) or 'partial' in between."""
    if forward_completion >= LEARNED_AT:
        return "learned"
    return "collapsed" if forward_completion < COLLAPSE_BELOW else "partial"


def topk_sample(key, logits_BxT, k: int):
    """Sample from the renormalised distribution over the k most probable outputs."""
    vals, idx = jax.lax.top_k(logits_BxT, k)
    choice = jax.random.categorical(key, vals, axis=-1)
    return jnp.take_along_axis(idx, choice[:, None], axis=-1)[:, 0]


def target_stats(logits_BxT, target_B):
    """(p(target), rank of target) per row; rank 1 = most probable, ties count one half
    (an untrained zero-output model ranks every target (N_TARGETS + 1) / 2)."""
    p = jax.nn.softmax(logits_BxT, -1)
    tl = jnp.take_along_axis(logits_BxT, target_B[:, None], -1)
    rank = 1.0 + (logits_BxT > tl).sum(-1) + 0.5 * ((logits_BxT == tl).sum(-1) - 1)
    return jnp.take_along_axis(p, target_B[:, None], -1)[:, 0], rank


def query_logits(graphdef, params, x_BxL, pos_B):
    """Logits (B, N_TARGETS) at one query position per sequence, dropout off: the one model
    call behind every reading (tests replace it by constructed models with known behaviour)."""
    return logits_at(merge(graphdef, params), x_BxL, pos_B)


def letters_only(logits_BxT):
    """The logits with the pad output `0` excluded (-inf): a choice among the 52 letters."""
    return logits_BxT.at[:, vocab.PAD].set(-jnp.inf)


def _reading(logits_BxT, tgt_id, key, top_k):
    p, rank = target_stats(logits_BxT, tgt_id)
    return dict(topk_success=(topk_sample(key, logits_BxT, top_k) == tgt_id),
                greedy_acc=(logits_BxT.argmax(-1) == tgt_id), p_target=p, rank=rank)


@partial(jax.jit, static_argnames=("graphdef", "objective", "top_k"))
def _infill(graphdef, params, x_BxL, tgt_pos, tgt_id, key, objective, top_k):
    """Per-query `infill` and `infill_letter` metrics (one model call for both)."""
    x_in = x_BxL.at[jnp.arange(x_BxL.shape[0]), tgt_pos].set(vocab.MASK)
    lg = query_logits(graphdef, params, x_in, tgt_pos - prediction_offset(objective))
    return {"infill": _reading(lg, tgt_id, key, top_k),
            "infill_letter": _reading(letters_only(lg), tgt_id, jax.random.fold_in(key, 1),
                                      top_k)}


@partial(jax.jit, static_argnames=("graphdef", "objective", "top_k", "greedy"))
def _generate(graphdef, params, x_BxL, cue_pos, key, objective, top_k, greedy):
    """Fill every position after the cue, left to right; earlier positions stay as given."""
    B, L = x_BxL.shape
    off = prediction_offset(objective)
    x = jnp.where(jnp.arange(L)[None, :] > cue_pos[:, None], vocab.MASK, x_BxL)

    def body(p, x):
        lg = query_logits(graphdef, params, x, jnp.full((B,), p - off))
        tok = lg.argmax(-1) if greedy else topk_sample(jax.random.fold_in(key, p), lg, top_k)
        return x.at[:, p].set(jnp.where(p > cue_pos, tok, x[:, p]))

    return jax.lax.fori_loop(1, L, body, x)


@partial(jax.jit, static_argnames=("graphdef", "objective"))
def _completion_teacher_forced(graphdef, params, x_BxL, tgt_pos, tgt_id, objective):
    L = x_BxL.shape[1]
    x_in = jnp.where(jnp.arange(L)[None, :] >= tgt_pos[:, None], vocab.MASK, x_BxL)
    return target_stats(query_logits(graphdef, params, x_in,
                                     tgt_pos - prediction_offset(objective)), tgt_id)


def _batches(n: int, size: int):
    size = size or n
    return [slice(i, min(n, i + size)) for i in range(0, n, size)]


def evaluate_direction(graphdef, params, objective: str, L: int, direction: str,
                       eval_cfg: EvalConfig = EvalConfig()) -> dict:
    """{'infill': {...}, 'completion': {...}, 'infill_letter': {...}} for one direction, all
    placements, one seed; each reading holds the four METRICS."""
    pl = data.placements(L, direction)
    cue_pos, tgt_pos, _, tgt_id = (np.asarray(a, np.int32) for a in data.query_spec(pl, direction))
    x = data.make_sequences(pl, L)
    base = jax.random.fold_in(jax.random.PRNGKey(eval_cfg.eval_seed), DIRECTIONS.index(direction))
    k_inf, k_cmp = jax.random.split(base)
    acc = {proto: {m: [] for m in METRICS} for proto in PROTOCOLS}
    for bi, sl in enumerate(_batches(len(pl), eval_cfg.batch_size)):
        xb, cb, tb, ib = (jnp.asarray(a[sl]) for a in (x, cue_pos, tgt_pos, tgt_id))
        r = _infill(graphdef, params, xb, tb, ib, jax.random.fold_in(k_inf, bi),
                    objective, eval_cfg.top_k)
        for proto, d in r.items():
            for m, v in d.items():
                acc[proto][m].append(np.asarray(v))
        after = jnp.arange(L)[None, :] > cb[:, None]
        for greedy, m in ((False, "topk_success"), (True, "greedy_acc")):
            gen = _generate(graphdef, params, xb, cb, jax.random.fold_in(k_cmp, bi),
                            objective, eval_cfg.top_k, greedy)
            acc["completion"][m].append(np.asarray(((gen == ib[:, None]) & after).any(-1)))
        p, rank = _completion_teacher_forced(graphdef, params, xb, tb, ib, objective)
        acc["completion"]["p_target"].append(np.asarray(p))
        acc["completion"]["rank"].append(np.asarray(rank))
    return {proto: {m: float(np.concatenate(v).astype(np.float64).mean()) for m, v in d.items()}
            for proto, d in acc.items()}


def evaluate_params(graphdef, params, objective: str, L: int,
                    eval_cfg: EvalConfig = EvalConfig()) -> dict:
    """{'forward': {reading: {...}}, 'reverse': {...}} for one weight set (readings: PROTOCOLS)."""
    return {d: evaluate_direction(graphdef, params, objective, L, d, eval_cfg)
            for d in DIRECTIONS}
