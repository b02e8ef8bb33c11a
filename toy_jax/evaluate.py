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


def topk_pick(logits_BxT, gumbel_Bxk):
    """Sample from the renormalised distribution over the k most probable outputs, given the
    Gumbel noise of the draw (Gumbel-max: argmax over the top k of logit + noise)."""
    vals, idx = jax.lax.top_k(logits_BxT, gumbel_Bxk.shape[-1])
    choice = jnp.argmax(vals + gumbel_Bxk, axis=-1)
    return jnp.take_along_axis(idx, choice[:, None], axis=-1)[:, 0]


def topk_sample(key, logits_BxT, k: int):
    """`topk_pick` with fresh noise from `key`."""
    return topk_pick(logits_BxT, jax.random.gumbel(key, (logits_BxT.shape[0], k)))


def target_stats(logits_BxT, target_B):
    """(p(target), rank of target) per row; rank 1 = most probable, ties count one half
    (an untrained zero-output model ranks every target (N_TARGETS + 1) / 2)."""
    p = jax.nn.softmax(logits_BxT, -1)
    tl = jnp.take_along_axis(logits_BxT, target_B[:, None], -1)
    rank = 1.0 + (logits_BxT > tl).sum(-1) + 0.5 * ((logits_BxT == tl).sum(-1) - 1)
    return jnp.take_along_axis(p, target_B[:, None], -1)[:, 0], rank


def topk_expectations(logits_BxT, target_B, k: int):
    """Noise-free readings of "sample from the top k" per row: `topk_expected` = p(target) /
    sum of the top-k probabilities if the target is among the top k, else 0 (the success
    probability of `topk_pick`); `topk_uniform` = 1/k if the target is among the top k (a
    uniform draw among them); `in_topk` = 1 if it is."""
    vals, idx = jax.lax.top_k(logits_BxT, k)
    p_k = jax.nn.softmax(vals, -1)
    hit = idx == target_B[:, None]
    in_k = hit.any(-1)
    return dict(topk_expected=jnp.where(hit, p_k, 0.0).sum(-1),
                topk_uniform=in_k / k, in_topk=in_k.astype(jnp.float32))


def query_logits(graphdef, params, x_BxL, pos_B):
    """Logits (B, N_TARGETS) at one query position per sequence, dropout off: the one model
    call behind every reading (tests replace it by constructed models with known behaviour)."""
    return logits_at(merge(graphdef, params), x_BxL, pos_B)


# Left-to-right generation keeps q, k, v of every position and recomputes only the position
# just written (exact for one block); False: recompute the whole sequence through
# `query_logits` at every step (the reference; tests with constructed models use it).
KV_CACHE = True


def letters_only(logits_BxT):
    """The logits with the pad output `0` (and any output beyond the toy's symbols, see
    `ModelConfig.vocab_size`) excluded (-inf): a choice among the 52 letters."""
    return logits_BxT.at[:, vocab.PAD].set(-jnp.inf).at[:, vocab.N_TARGETS:].set(-jnp.inf)


def _reading(logits_BxT, tgt_id, gumbel_Bxk):
    p, rank = target_stats(logits_BxT, tgt_id)
    return dict(topk_success=(topk_pick(logits_BxT, gumbel_Bxk) == tgt_id),
                greedy_acc=(logits_BxT.argmax(-1) == tgt_id), p_target=p, rank=rank,
                **topk_expectations(logits_BxT, tgt_id, gumbel_Bxk.shape[-1]))


def _infill(graphdef, params, x_BxL, tgt_pos, tgt_id, g_inf, g_let, objective):
    """Per-query `infill` and `infill_letter` metrics (one model call for both)."""
    x_in = x_BxL.at[jnp.arange(x_BxL.shape[0]), tgt_pos].set(vocab.MASK)
    lg = query_logits(graphdef, params, x_in, tgt_pos - prediction_offset(objective))
    return {"infill": _reading(lg, tgt_id, g_inf),
            "infill_letter": _reading(letters_only(lg), tgt_id, g_let)}


def _pick(lg, gumbel_Bxk, greedy):
    return lg.argmax(-1) if greedy else topk_pick(lg, gumbel_Bxk)


def _generate(graphdef, params, x_BxL, cue_pos, gumbel_BxLxk, objective, greedy):
    """Fill every position after the cue, left to right; earlier positions stay as given
    (recomputing the sequence at every step)."""
    B, L = x_BxL.shape
    off = prediction_offset(objective)
    x = jnp.where(jnp.arange(L)[None, :] > cue_pos[:, None], vocab.MASK, x_BxL)

    def body(p, x):
        lg = query_logits(graphdef, params, x, jnp.full((B,), p - off))
        tok = _pick(lg, gumbel_BxLxk[:, p], greedy)
        return x.at[:, p].set(jnp.where(p > cue_pos, tok, x[:, p]))

    return jax.lax.fori_loop(1, L, body, x)


def _generate_cached(graphdef, params, x_BxL, cue_pos, gumbel_BxLxk, objective, greedy):
    """`_generate` with the keys and values of every position cached (position-first, so a
    step writes one contiguous slice): a step computes the query position's output and the
    key and value of the one position it writes (exact for one block)."""
    model = merge(graphdef, params)
    B, L = x_BxL.shape
    off = prediction_offset(objective)
    x = jnp.where(jnp.arange(L)[None, :] > cue_pos[:, None], vocab.MASK, x_BxL)
    h0, q, k, v = (model.embed_tokens(x),) + tuple(model.qkv(model.embed_tokens(x)))
    at_pos = lambda a, p: jax.lax.dynamic_index_in_dim(a, p, axis=1, keepdims=False)

    def body(p, carry):
        xT, kT, vT, h_last, q_last = carry
        # the query: position p itself (MDM: its [M] or the given token, never rewritten
        # before it is read), or p - 1 (ARM: the position written in the previous step)
        h_q, q_q = (at_pos(h0, p), at_pos(q, p)) if off == 0 else (h_last, q_last)
        lg = _query_output(model, h_q, q_q, kT, vT, p - off)
        write = p > cue_pos
        tok = jnp.where(write, _pick(lg, gumbel_BxLxk[:, p], greedy), xT[p])
        h_p = model.embed_tokens(tok[:, None], positions_L=p[None])
        q_p, k_p, v_p = model.qkv(h_p, positions_L=p[None])
        w3 = write[:, None, None]
        h_new = jnp.where(write[:, None], h_p[:, 0], at_pos(h0, p))
        q_new = jnp.where(w3, q_p[:, 0], at_pos(q, p))
        kT = kT.at[p].set(jnp.where(w3, k_p[:, 0], kT[p]))
        vT = vT.at[p].set(jnp.where(w3, v_p[:, 0], vT[p]))
        return xT.at[p].set(tok), kT, vT, h_new, q_new

    init = (x.T, jnp.swapaxes(k, 0, 1), jnp.swapaxes(v, 0, 1), h0[:, 0], q[:, 0])
    return jax.lax.fori_loop(1, L, body, init)[0].T


def _query_output(model, h_BxD, q_BxHxD, kT_LxBxHxD, vT_LxBxHxD, qpos):
    """Logits (B, N_TARGETS) of the query at position `qpos` (the same for every row) from its
    block input and query and position-first keys and values (`model.logits_from_qkv`)."""
    s_BxHxL = jnp.einsum("bhd,jbhd->bhj", q_BxHxD, kT_LxBxHxD, preferred_element_type=jnp.float32)
    w = model.attention_weights(s_BxHxL, qpos)
    o = jnp.einsum("bhj,jbhd->bhd", w.astype(vT_LxBxHxD.dtype), vT_LxBxHxD)
    return model.mlp_and_head(model.attention_residual(h_BxD, o))


def _completion_teacher_forced(graphdef, params, x_BxL, tgt_pos, tgt_id, objective):
    L = x_BxL.shape[1]
    x_in = jnp.where(jnp.arange(L)[None, :] >= tgt_pos[:, None], vocab.MASK, x_BxL)
    return target_stats(query_logits(graphdef, params, x_in,
                                     tgt_pos - prediction_offset(objective)), tgt_id)


def _per_query(graphdef, params, x, cue, tgt, tid, g_inf, g_let, g_gen, objective, cached):
    """Every per-query array of one weight set on one chunk of queries."""
    r = _infill(graphdef, params, x, tgt, tid, g_inf, g_let, objective)
    gen = _generate_cached if cached else _generate
    after = jnp.arange(x.shape[1])[None, :] > cue[:, None]
    comp = {m: ((gen(graphdef, params, x, cue, g_gen, objective, greedy) == tid[:, None])
                & after).any(-1) for greedy, m in ((False, "topk_success"), (True, "greedy_acc"))}
    comp["p_target"], comp["rank"] = _completion_teacher_forced(graphdef, params, x, tgt, tid,
                                                                objective)
    return {**r, "completion": comp}


@partial(jax.jit, static_argnames=("graphdef", "objective", "cached", "stacked"))
def _per_query_all(graphdef, params, x, cue, tgt, tid, g_inf, g_let, g_gen, objective, cached,
                   stacked):
    """`_per_query` for S stacked weight sets (leading axis of every parameter) at once."""
    fn = partial(_per_query, graphdef, objective=objective, cached=cached)
    if not stacked:
        return jax.tree.map(lambda a: a[None], fn(params, x, cue, tgt, tid, g_inf, g_let, g_gen))
    return jax.vmap(fn, in_axes=(0,) + (None,) * 7)(params, x, cue, tgt, tid, g_inf, g_let, g_gen)


def chunk_rows(n_sets: int, L: int, d_model: int, n_queries: int, budget_bytes: int,
               n_outputs: int = vocab.N_TARGETS) -> int:
    """Queries per evaluation chunk: the generation cache (block input, q, k, v in float32)
    and a few copies of the logits of `n_sets` weight sets fit in `budget_bytes`."""
    per_row = max(1, n_sets * (L * d_model + n_outputs) * 4 * 4)
    return int(max(1, min(n_queries, budget_bytes // per_row)))


def eval_noise(eval_cfg: EvalConfig, direction: str, n: int, L: int):
    """The Gumbel noise of every top-k draw of one direction: infill (n, k), letter-level
    infill (n, k), generation (n, L, k). Drawn per query, not per chunk, so results do not
    depend on how the queries are chunked, and shared by every weight set (common random
    numbers)."""
    base = jax.random.fold_in(jax.random.PRNGKey(eval_cfg.eval_seed), DIRECTIONS.index(direction))
    k_inf, k_cmp = jax.random.split(base)
    k = eval_cfg.top_k
    return (jax.random.gumbel(jax.random.fold_in(k_inf, 0), (n, k)),
            jax.random.gumbel(jax.random.fold_in(k_inf, 1), (n, k)),
            jax.random.gumbel(k_cmp, (n, L, k)))


def evaluate_direction_stacked(graphdef, params_stack, objective: str, L: int, direction: str,
                               eval_cfg: EvalConfig = EvalConfig()) -> list[dict]:
    """`evaluate_direction` for S weight sets stacked on a leading axis (e.g. seeds, raw and
    EMA), vmapped in one compiled program per chunk of queries; a list of S results."""
    pl = data.placements(L, direction)
    cue_pos, tgt_pos, _, tgt_id = (np.asarray(a, np.int32) for a in data.query_spec(pl, direction))
    x = data.make_sequences(pl, L)
    n = len(pl)
    noise = eval_noise(eval_cfg, direction, n, L)
    leaves = jax.tree.leaves(params_stack)
    stacked = bool(leaves)
    S = leaves[0].shape[0] if stacked else 1
    if eval_cfg.batch_size:
        rows = min(n, eval_cfg.batch_size)
    else:
        rows = chunk_rows(S, L, _d_model(params_stack), n,
                          2 ** 30 if jax.default_backend() == "cpu" else 2 ** 33,
                          _n_outputs(params_stack))
    acc = []
    for i in range(0, n, rows):
        idx = np.arange(i, i + rows)
        idx = np.minimum(idx, n - 1)  # the last chunk is padded to the same shape (no recompile)
        keep = min(rows, n - i)
        args = [jnp.asarray(a[idx]) for a in (x, cue_pos, tgt_pos, tgt_id)]
        args += [a[jnp.asarray(idx)] for a in noise]
        out = _per_query_all(graphdef, params_stack, *args, objective=objective,
                             cached=KV_CACHE and stacked, stacked=stacked)
        acc.append(jax.tree.map(lambda a: np.asarray(a)[:, :keep], out))
    cat = jax.tree.map(lambda *a: np.concatenate(a, axis=1), *acc)
    return [{proto: {m: float(v[s].astype(np.float64).mean()) for m, v in d.items()}
             for proto, d in cat.items()} for s in range(S)]


def _n_outputs(params_stack) -> int:
    head = params_stack.get("b_head") if isinstance(params_stack, dict) else None
    return int(head.shape[-1]) if head is not None else vocab.N_TARGETS


def _d_model(params_stack) -> int:
    """Hidden size of stacked parameters (1 for a constructed model without parameters)."""
    emb = params_stack.get("embed") if isinstance(params_stack, dict) else None
    return int(emb.shape[-1]) if emb is not None else 1


def evaluate_direction(graphdef, params, objective: str, L: int, direction: str,
                       eval_cfg: EvalConfig = EvalConfig()) -> dict:
    """{'infill': {...}, 'completion': {...}, 'infill_letter': {...}} for one direction, all
    placements, one weight set; each reading holds METRICS (and, for the infill readings,
    the noise-free top-k readings of `topk_expectations`)."""
    stacked = jax.tree.map(lambda a: jnp.asarray(a)[None], params)
    return evaluate_direction_stacked(graphdef, stacked, objective, L, direction, eval_cfg)[0]


def evaluate_params(graphdef, params, objective: str, L: int,
                    eval_cfg: EvalConfig = EvalConfig()) -> dict:
    """{'forward': {reading: {...}}, 'reverse': {...}} for one weight set (readings: PROTOCOLS)."""
    return {d: evaluate_direction(graphdef, params, objective, L, d, eval_cfg)
            for d in DIRECTIONS}


def evaluate_stacked(graphdef, params_stack, objective: str, L: int,
                     eval_cfg: EvalConfig = EvalConfig()) -> list[dict]:
    """`evaluate_params` for S stacked weight sets: a list of S {'forward', 'reverse'}."""
    per_dir = {d: evaluate_direction_stacked(graphdef, params_stack, objective, L, d, eval_cfg)
               for d in DIRECTIONS}
    n = len(per_dir[DIRECTIONS[0]])
    return [{d: per_dir[d][s] for d in DIRECTIONS} for s in range(n)]
