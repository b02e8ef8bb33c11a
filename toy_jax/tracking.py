"""Cheap in-training probes (Section 4.3 "Training dynamics", Appendix F.1).

The probe sequences all hold one cue letter, one `[M]` and pad elsewhere, so every key and
value is a function of (token, position) only. `ProbeTables` computes q, k, v once for every
(token, position) pair, and the attention of one query per sequence is assembled from these
tables; the weights, the output projection, the MLP and the head are the model's own
(`ToyTransformer.attention_weights`, `attention_residual`, `mlp_and_head`), run per sequence. This is the same function as the full model
(tests check it against `model.__call__`), at a small fraction of the cost, which keeps the
tracking overhead of training small.

Attention tracking (Appendix F.1): in every forward context "[M] ... B" (a forward placement
with its lowercase replaced by [M]) and every reverse context "B ... [M]" (a reverse placement,
lowercase replaced by [M]), the query is the [M] position and the key is the uppercase cue B.
`score` is the raw q^T R(Delta) k before the 1/sqrt(d_head) scale; `weight` is the softmaxed
attention weight (0 where a causal mask hides the cue, i.e. forward contexts of the ARM).

Infill metrics: forward query "a ... [M]" (target A), reverse query "A ... [M]" (target a); the
prediction for the [M] at position t is read at t (MDM objective) or t - 1 (ARM objective).
Two readings, as in `evaluate`: `infill_*` chooses among all outputs (the pad `0` included),
`infill_*_letter_*` among the 52 letters only (`0` excluded; Figure 5's comparison).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from toy_jax import data, vocab
from toy_jax.configs import EvalConfig
from toy_jax.evaluate import letters_only, target_stats, topk_expectations
from toy_jax.losses import prediction_offset
from toy_jax.model import ToyTransformer


class ProbeSet(NamedTuple):
    """Structured sequences: cue token at cue_pos, [M] at mask_pos, pad elsewhere; one query
    position per sequence. Arrays of shape (N,)."""

    cue_tok: np.ndarray
    cue_pos: np.ndarray
    mask_pos: np.ndarray
    query_pos: np.ndarray
    target: np.ndarray


def attention_contexts(L: int, direction: str) -> ProbeSet:
    """'[M] ... B' (forward) or 'B ... [M]' (reverse): [M] at the lowercase, query = [M]."""
    p = data.placements(L, direction)
    letter, lo, up = p[:, 0], p[:, 1], p[:, 2]
    return ProbeSet(cue_tok=vocab.UPPER0 + letter, cue_pos=up, mask_pos=lo, query_pos=lo,
                    target=vocab.LOWER0 + letter)


def infill_queries(L: int, direction: str, objective: str) -> ProbeSet:
    """Infill queries of `evaluate`: the target position is [M], the rest of the placement
    visible; the query position is the target (MDM) or the one before it (ARM)."""
    p = data.placements(L, direction)
    cue_pos, tgt_pos, cue_id, tgt_id = data.query_spec(p, direction)
    return ProbeSet(cue_tok=cue_id, cue_pos=cue_pos, mask_pos=tgt_pos,
                    query_pos=tgt_pos - prediction_offset(objective), target=tgt_id)


def sequences(ps: ProbeSet, L: int) -> np.ndarray:
    """The token ids (N, L) that a ProbeSet describes (for checks against the full model)."""
    pos = np.arange(L)[None, :]
    x = np.where(pos == ps.cue_pos[:, None], ps.cue_tok[:, None], vocab.PAD)
    return np.where(pos == ps.mask_pos[:, None], vocab.MASK, x).astype(np.int32)


class ProbeTables(NamedTuple):
    h0: jax.Array  # (V, L, d) block input of token v at position p
    q: jax.Array  # (V, L, H, d_head), RoPE applied
    k: jax.Array
    v: jax.Array


def probe_tables(model: ToyTransformer) -> ProbeTables:
    """h0, q, k, v of every (token, position) pair."""
    L = model.cfg.seq_len
    tok_VxL = jnp.broadcast_to(jnp.arange(vocab.VOCAB_SIZE)[:, None], (vocab.VOCAB_SIZE, L))
    h0 = model.embed_tokens(tok_VxL)
    q, k, v = model.qkv(h0)
    return ProbeTables(h0, q, k, v)


def probe_attention(model: ToyTransformer, tab: ProbeTables, ps: ProbeSet):
    """Scores (N, H, L) (unscaled q^T R k) and weights (N, H, L) of the query position."""
    L = model.cfg.seq_len
    n = jnp.asarray
    qtok = _query_token(ps)
    q = tab.q[qtok, n(ps.query_pos)]  # (N, H, D)
    j = jnp.arange(L)[None, None, :]
    f32 = dict(preferred_element_type=jnp.float32)  # scores and softmax in float32 (bf16 too)
    s_pad = jnp.einsum("nhd,jhd->nhj", q, tab.k[vocab.PAD], **f32)
    s_cue = jnp.einsum("nhd,nhd->nh", q, tab.k[n(ps.cue_tok), n(ps.cue_pos)], **f32)[..., None]
    s_msk = jnp.einsum("nhd,nhd->nh", q, tab.k[vocab.MASK, n(ps.mask_pos)], **f32)[..., None]
    cue_j = j == n(ps.cue_pos)[:, None, None]
    msk_j = j == n(ps.mask_pos)[:, None, None]
    scores = jnp.where(cue_j, s_cue, jnp.where(msk_j, s_msk, s_pad))
    return scores, model.attention_weights(scores, n(ps.query_pos)[:, None, None])


def probe_logits(model: ToyTransformer, tab: ProbeTables, ps: ProbeSet):
    """Logits (N, N_TARGETS) at the query position, equal to the full model's (dropout off)."""
    n = jnp.asarray
    _, w = probe_attention(model, tab, ps)  # (N, H, L)
    v_pad = tab.v[vocab.PAD]  # (L, H, D)
    w_cue = jnp.take_along_axis(w, n(ps.cue_pos)[:, None, None], axis=-1)  # (N, H, 1)
    w_msk = jnp.take_along_axis(w, n(ps.mask_pos)[:, None, None], axis=-1)
    o = (jnp.einsum("nhj,jhd->nhd", w, v_pad)
         + w_cue * (tab.v[n(ps.cue_tok), n(ps.cue_pos)] - v_pad[n(ps.cue_pos)])
         + w_msk * (tab.v[vocab.MASK, n(ps.mask_pos)] - v_pad[n(ps.mask_pos)]))
    return model.mlp_and_head(model.attention_residual(tab.h0[_query_token(ps), n(ps.query_pos)], o))


def _query_token(ps: ProbeSet):
    """Token at the query position: [M], the cue, or pad."""
    qp = jnp.asarray(ps.query_pos)
    return jnp.where(qp == jnp.asarray(ps.mask_pos), vocab.MASK,
                     jnp.where(qp == jnp.asarray(ps.cue_pos), jnp.asarray(ps.cue_tok), vocab.PAD))


def cue_attention(model: ToyTransformer, L: int | None = None) -> dict:
    """Per-context attention from [M] to the uppercase cue (Appendix F.1), not averaged.

    Returns numpy arrays: fwd_score / fwd_weight (N, H) over forward contexts "[M] ... B",
    rev_score / rev_weight (N, H) over reverse contexts "B ... [M]", and the placements
    (N, 3) of each (row order of `data.forward_placements` / `data.reverse_placements`);
    Delta = |upper_pos - lower_pos|. Scores are unscaled q^T R(Delta) k.
    """
    L = L or model.cfg.seq_len
    tab = probe_tables(model)
    out = {}
    for d, key in (("forward", "fwd"), ("reverse", "rev")):
        ps = attention_contexts(L, d)
        s, w = probe_attention(model, tab, ps)
        idx = jnp.asarray(ps.cue_pos)[:, None, None]
        out[f"{key}_score"] = np.asarray(jnp.take_along_axis(s, idx, -1)[..., 0])
        out[f"{key}_weight"] = np.asarray(jnp.take_along_axis(w, idx, -1)[..., 0])
        out[f"{key}_placements"] = data.placements(L, d)
    return out


TOP_K = EvalConfig().top_k  # k of the tracked noise-free top-k readings (Appendix E.2's 3)


class Probe(NamedTuple):
    """The four probe sets of one run (static numpy arrays)."""

    attn_fwd: ProbeSet
    attn_rev: ProbeSet
    infill_fwd: ProbeSet
    infill_rev: ProbeSet


def make_probe(L: int, objective: str) -> Probe:
    return Probe(attention_contexts(L, "forward"), attention_contexts(L, "reverse"),
                 infill_queries(L, "forward", objective), infill_queries(L, "reverse", objective))


def track(model: ToyTransformer, probe: Probe) -> dict:
    """Scalars of one weight set (jit-able): mean attention weight / raw score from [M] to the
    cue per head over forward and reverse contexts, and, forward (`fwd`) and reverse (`rev`),
    the infill mean p(target), greedy accuracy, target rank, expected top-k success
    (`topk_expected`, the success probability of top-k sampling with k = TOP_K) and top-k
    membership (`in_topk`) among all outputs (`infill_{d}_*`) and among the 52 letters, pad
    excluded (`infill_{d}_letter_*`)."""
    tab = probe_tables(model)
    out = {}
    for key, ps in (("fwd", probe.attn_fwd), ("rev", probe.attn_rev)):
        s, w = probe_attention(model, tab, ps)
        idx = jnp.asarray(ps.cue_pos)[:, None, None]
        out[f"attn_{key}_score"] = jnp.take_along_axis(s, idx, -1)[..., 0].mean(0)  # (H,)
        out[f"attn_{key}_weight"] = jnp.take_along_axis(w, idx, -1)[..., 0].mean(0)
    for key, ps in (("fwd", probe.infill_fwd), ("rev", probe.infill_rev)):
        logits = probe_logits(model, tab, ps)
        tgt = jnp.asarray(ps.target)
        for reading, lg in (("", logits), ("letter_", letters_only(logits))):
            p, rank = target_stats(lg, tgt)
            out[f"infill_{key}_{reading}p_target"] = p.mean()
            out[f"infill_{key}_{reading}greedy_acc"] = (jnp.argmax(lg, -1) == tgt).mean()
            out[f"infill_{key}_{reading}rank"] = rank.mean()
            for m, v in topk_expectations(lg, tgt, TOP_K).items():
                if m != "topk_uniform":  # = in_topk / k
                    out[f"infill_{key}_{reading}{m}"] = v.mean()
    return out
