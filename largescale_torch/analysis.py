"""Figure 7: first-token probability and rank on reverse queries, and MDM attention-score correlation.

(a)/(b) For every reverse query, the probability and rank (1 = top) of the ground-truth first
completion token (the first token of " " + paired target): for an ARM at the last prompt
position, for the MDM at the first of `gen_length` masked positions after the prompt (for an MDM
with shifted logits, Dream, that prediction is read one position earlier: `losses.align_logits`).

(c) Attention-score correlation (Section 4.2/4.4, Appendix F.1 adapted to Parent-Child). The
model trained on "X rel_fwd Y" must answer the reverse query "Y rel_rev X". Let A = X (the
reverse answer) and B = Y. The forward context is "[M]..[M] rel_fwd B" (A's tokens masked),
the reverse context is "B rel_rev [M]..[M]". In each context we take the query vector of the
first [M] and the key vector of B's last token (the same token id in both contexts whenever B
has two or more words), both after RoPE, in every layer and head, and record the raw score
q^T R(Delta) k. Delta1 / Delta2 are the token distances between the two positions in the
forward / reverse context. Pairs are grouped by Delta1 + Delta2; within a group the Pearson
correlation across pairs between forward and reverse scores is computed per layer and head.
The reference value of a group is `theory.bounds.trace_bound(Delta1 + Delta2, D, theta)`: Theorem
4.1's bound when Delta1 = Delta2 (and 0 <= rho <= 1); for Delta1 != Delta2 only an analogue, not a
theorem (a fixed rho can fall below it; theory/README.md).
For Dream, whose output at position i predicts token i + 1, the query is the one whose output
predicts A's first token: at the position before the first [M] (BOS in the forward context,
the last relation token in the reverse one), with BOS prepended to both contexts so that the
forward one has such a position. Dream's attention is RoPE on q/k exactly as in Qwen2 (q/k biases
included in the captured projections), so the scores are the same quantity as LLaDA's.
"""
from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager

import numpy as np
import torch

from largescale_torch.batching import encode, left_pad, positions_from_mask
from largescale_torch.constants import GEN_LENGTH
from largescale_torch.losses import align_logits
from theory.bounds import trace_bound


@contextmanager
def causal_attention(model):
    """Run `model` with a causal attention mask inside the block (the causal-mask control of Figure 7).

    The weights are untouched; only `config.is_causal`, which transformers reads when it builds
    the attention mask, is switched on and restored afterwards.
    """
    config = (model.get_base_model() if hasattr(model, "get_base_model") else model).config
    old = getattr(config, "is_causal", True)
    config.is_causal = True
    try:
        yield model
    finally:
        config.is_causal = old


@torch.no_grad()
def first_token_stats(model, tokenizer, ids, examples, is_mdm: bool, gen_length: int = GEN_LENGTH,
                      batch_size: int = 16, chat: bool = False, logits_shift: bool = False) -> list[dict]:
    """Probability and rank of the first answer token, the prompt laid out as in training (`chat`).

    `logits_shift` (Dream): the MDM's prediction for the first masked position is read from the
    logits one position earlier, the last prompt token.
    """
    device = next(model.parameters()).device
    enc = [encode(tokenizer, e.prompt, e.target, chat=chat) for e in examples]
    out = []
    for s in range(0, len(enc), batch_size):
        chunk = enc[s: s + batch_size]
        seqs = [list(e.prompt) + ([ids.mask] * gen_length if is_mdm else []) for e in chunk]
        x, attn = left_pad(seqs, ids.pad)
        x, attn = x.to(device), attn.to(device)
        logits = model(input_ids=x, attention_mask=attn, position_ids=positions_from_mask(attn)).logits
        if is_mdm:
            logits = align_logits(logits, logits_shift)
        col = x.shape[1] - gen_length if is_mdm else x.shape[1] - 1
        lg = logits[:, col].float()
        gt = torch.tensor([e.completion[0] for e in chunk], device=device)
        prob = lg.softmax(-1).gather(1, gt[:, None])[:, 0]
        rank = 1 + (lg > lg.gather(1, gt[:, None])).sum(-1)
        out += [{"prob": float(p), "rank": int(r)} for p, r in zip(prob, rank)]
    return out


def _tok(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False).input_ids


def pair_contexts(tokenizer, ids, a: str, b: str, rel_fwd: str, rel_rev: str, logits_shift: bool = False):
    """Token ids and (query, key) positions of "[M]*|A| rel_fwd B" and "B rel_rev [M]*|A|".

    The query is the first [M]; with `logits_shift` (Dream) the position before it, whose output
    predicts it, and both contexts start with BOS so that the forward one has that position.
    """
    if logits_shift and ids.bos is None:
        raise ValueError("a shifted-logit MDM needs a BOS token for the attention analysis")
    adds_bos = ids.bos is not None and tokenizer("x").input_ids[:1] == [ids.bos]
    bos = [ids.bos] if adds_bos or logits_shift else []
    a_fwd, a_rev = _tok(tokenizer, a), _tok(tokenizer, " " + a)
    b_fwd, b_rev = _tok(tokenizer, " " + b), _tok(tokenizer, b)
    fwd = bos + [ids.mask] * len(a_fwd) + _tok(tokenizer, rel_fwd) + b_fwd
    q_f, k_f = len(bos), len(fwd) - 1
    rev = bos + b_rev + _tok(tokenizer, rel_rev)
    k_r = len(bos) + len(b_rev) - 1
    q_r = len(rev)
    rev = rev + [ids.mask] * len(a_rev)
    if logits_shift:
        q_f, q_r = q_f - 1, q_r - 1
    return (fwd, q_f, k_f), (rev, q_r, k_r)


class _QKCapture:
    """Records each attention layer's RoPE-rotated queries and keys (heads expanded for GQA)."""

    def __init__(self, model):
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        self.rope = apply_rotary_pos_emb
        self.layers = [m for m in model.modules() if type(m).__name__.endswith("Attention") and hasattr(m, "q_proj")]
        if not self.layers:
            raise ValueError("no attention layers with q_proj found")
        self.records: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.handles = [m.register_forward_pre_hook(self._hook, with_kwargs=True) for m in self.layers]

    def _hook(self, module, args, kwargs):
        h = kwargs.get("hidden_states", args[0] if args else None)
        cos, sin = kwargs["position_embeddings"]
        B, L, _ = h.shape
        D = module.head_dim
        q = module.q_proj(h).view(B, L, -1, D).transpose(1, 2)
        k = module.k_proj(h).view(B, L, -1, D).transpose(1, 2)
        q, k = self.rope(q, k, cos, sin)
        k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
        self.records.append((q.float(), k.float()))

    def close(self):
        for h in self.handles:
            h.remove()


@torch.no_grad()
def attention_scores(model, seq: list[int], q_pos: int, k_pos: int) -> np.ndarray:
    """Raw scores q_[M]^T R(Delta) k_B per (layer, head): array of shape layers x heads."""
    device = next(model.parameters()).device
    cap = _QKCapture(model)
    try:
        x = torch.tensor([seq], device=device)
        model(input_ids=x, attention_mask=torch.ones_like(x))
    finally:
        cap.close()
    return np.stack([(q[0, :, q_pos] * k[0, :, k_pos]).sum(-1).cpu().numpy() for q, k in cap.records])


def attention_correlation(model, tokenizer, ids, pairs: list[dict], direction: str, head_dim: int,
                          rope_theta: float, min_group: int = 5, logits_shift: bool = False) -> dict:
    """Per Delta1+Delta2 group: Pearson correlation of forward vs reverse scores per layer/head."""

    if direction == "p2c":  # trained "{parent}'s child is {child}": A = parent, B = child
        rel_fwd, rel_rev, a_key, b_key = "'s child is", "'s parent is", "parent", "child"
    else:  # trained "{child}'s parent is {parent}": A = child, B = parent
        rel_fwd, rel_rev, a_key, b_key = "'s parent is", "'s child is", "child", "parent"
    groups = defaultdict(list)
    for pair in pairs:
        (fs, fq, fk), (rs, rq, rk) = pair_contexts(tokenizer, ids, pair[a_key], pair[b_key], rel_fwd, rel_rev,
                                                   logits_shift)
        s_f, s_r = attention_scores(model, fs, fq, fk), attention_scores(model, rs, rq, rk)
        groups[abs(fk - fq) + abs(rk - rq)].append((s_f, s_r))
    rows, all_f, all_r = [], [], []
    for delta in sorted(groups):
        f = np.stack([g[0] for g in groups[delta]])  # pairs x layers x heads
        r = np.stack([g[1] for g in groups[delta]])
        all_f.append(f)
        all_r.append(r)
        if len(f) < min_group:
            continue
        corr = _pearson(f, r)
        rows.append({"delta_sum": int(delta), "n_pairs": len(f), "corr_mean": float(np.nanmean(corr)),
                     "corr_per_layer": np.nanmean(corr, axis=1).tolist(), "corr_layer_head": corr.tolist(),
                     "trace_bound": float(trace_bound(float(delta), head_dim, rope_theta))})
    overall = _pearson(np.concatenate(all_f), np.concatenate(all_r)) if all_f else np.zeros((0, 0))
    return {"by_delta": rows, "overall_layer_head": overall.tolist(),
            "overall_mean": float(np.nanmean(overall)) if overall.size else float("nan"),
            "n_pairs": int(sum(len(g) for g in groups.values())), "head_dim": head_dim, "rope_theta": rope_theta,
            "min_group": min_group, "logits_shift": logits_shift}


def _pearson(f: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Correlation over axis 0 for every (layer, head); NaN where a side is constant."""
    fc, rc = f - f.mean(0), r - r.mean(0)
    den = np.sqrt((fc ** 2).sum(0) * (rc ** 2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (fc * rc).sum(0) / den, np.nan)
