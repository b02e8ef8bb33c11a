"""Stage 3 readings that separate content from position: entity rank, the positive control, Figure 7.

Entity rank (Berglund et al.'s log-probability test, for both model kinds). For a query and each
candidate entity c of the set (every distinct answer of that evaluation set), a score:
  ARM  s(c) = log p(c, EOS | prompt) = sum_j log p(c_j | prompt, c_<j) + log p(EOS | prompt, c);
  MDM  s(c) = sum_j log p_theta(x_j = c_j | prompt, [M]^|c|, EOS^(32-|c|)), the one-shot masked
       pseudo-likelihood: the answer slot laid out as in training (answer, then EOS up to the
       sampler's 32 positions) with exactly |c| masks, all read from one forward pass.
Candidates of different token lengths are compared by total log-probability. The rank of the
right answer is 1 + #{c: s(c) > s(right)} + #{c != right: s(c) = s(right)} / 2, so a model that
scores every candidate alike ranks at chance, (N + 1) / 2 for N candidates.

Entity-aware rule (`rank_summary` with `groups`): the candidates are grouped by the entity (the
fact, `Example.entity`) whose answers they are, an entity scores the best of its answers, and the
right entity is ranked among the N distinct entities by the formula above (chance (N + 1) / 2).
So Person-Description's paraphrased descriptions of the right person (45 strings, 10 people) are
never counted as wrong answers; where every entity has one answer (Parent-Child, T-REx-style) the
rule is the plain candidate rank.

Surname-copy split (`rank_reading` with `names`): queries whose right answer shares a name word
with the entity named in the prompt ("Hailee Steinfeld's parent is" -> "Cheri Steinfeld") versus
those that share none, each with the rank a model-free shortcut would get (candidates scored 1
if they share a word with the prompt's entity, else 0; ties at half).

Positive control: the forward training statement itself with its reverse-answer entity (the
subject, e.g. the parent of "P's child is C") replaced by the candidates, scored the same way:
the MDM infills the masked slot from the right context it was trained on (the real-text
analogue of the toy's reverse infill); the ARM's score is the likelihood of the whole statement
with c substituted ("joint": log p(c | left) + log p(rest | left, c); the left part is common to
all candidates), which lets it use the trained continuation by Bayes' rule, and its "prefix"
score log p(c | left) alone is what left-to-right generation can use.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from largescale_torch.analysis import _pearson, attention_scores, first_token_stats
from largescale_torch.batching import encode, left_pad, positions_from_mask
from largescale_torch.constants import GEN_LENGTH


@dataclass(frozen=True)
class Slot:
    """One query: token ids left of the answer slot, and right of it (a function of the slot length)."""

    left: tuple[int, ...]
    right_by_len: dict  # k -> tuple of ids after a k-token slot
    target: int  # index of the right candidate


def rank_of(scores_N: np.ndarray, target: int) -> float:
    """1 + #better + #tied / 2 (other candidates): chance level (N + 1) / 2 for uninformative scores."""
    s = scores_N[target]
    others = np.delete(scores_N, target)
    return 1.0 + float((others > s).sum()) + 0.5 * float((others == s).sum())


@torch.no_grad()
def _logprobs(model, seqs: list[list[int]], windows: list[tuple[int, int]], pad_id: int, batch_size: int,
              next_token: bool, exclude: int | None = None) -> list[torch.Tensor]:
    """Per sequence, positions [a, b) of it: the log-softmax rows (b-a) x V, or with `next_token` the
    log-probability of each next token (position i predicts token i + 1). `exclude`: a token id left
    out of the softmax (logit -inf), the MDM's mask token, which the sampler never predicts either."""
    out = []
    for s in range(0, len(seqs), batch_size):
        chunk, wins = seqs[s: s + batch_size], windows[s: s + batch_size]
        x, attn = left_pad(chunk, pad_id)
        lp = model(input_ids=x, attention_mask=attn, position_ids=positions_from_mask(attn)).logits.float()
        if exclude is not None:
            lp[..., exclude] = -torch.inf
        lp = lp.log_softmax(-1)
        L = x.shape[1]
        for i, (c, (a, b)) in enumerate(zip(chunk, wins)):
            rows = lp[i, L - len(c) + a: L - len(c) + b]
            out.append(rows.gather(1, x[i, L - len(c) + a + 1: L - len(c) + b + 1, None])[:, 0] if next_token
                       else rows.clone())
    return out


def score_slots(model, is_mdm: bool, slots: list[Slot], cands: list[list[int]], mask_id: int, pad_id: int,
                batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(slot_QxN, after_QxN): log p of each candidate's tokens in the slot, and (ARM) of the right part after it.

    MDM: one forward pass per query and candidate length, every candidate of that length read
    from the same masked positions, the mask token excluded from the softmax; `after` is 0 (the
    right part is given, not predicted).
    """
    Q, N = len(slots), len(cands)
    slot, after = np.zeros((Q, N)), np.zeros((Q, N))
    if is_mdm:
        lengths = sorted({len(c) for c in cands})
        jobs = [(q, k) for q in range(Q) for k in lengths]
        seqs = [list(slots[q].left) + [mask_id] * k + list(slots[q].right_by_len[k]) for q, k in jobs]
        wins = [(len(slots[q].left), len(slots[q].left) + k) for q, k in jobs]
        for (q, k), lp in zip(jobs, _logprobs(model, seqs, wins, pad_id, batch_size, next_token=False,
                                                 exclude=mask_id)):
            for n, c in enumerate(cands):
                if len(c) == k:
                    slot[q, n] = float(lp[torch.arange(k), torch.tensor(c)].sum())
        return slot, after
    jobs = [(q, n) for q in range(Q) for n in range(N)]
    seqs = [list(slots[q].left) + list(cands[n]) + list(slots[q].right_by_len[len(cands[n])]) for q, n in jobs]
    wins = [(len(slots[q].left) - 1, len(seq) - 1) for (q, _), seq in zip(jobs, seqs)]
    for (q, n), tok_lp in zip(jobs, _logprobs(model, seqs, wins, pad_id, batch_size, next_token=True)):
        k = len(cands[n])
        slot[q, n] = float(tok_lp[:k].sum())
        after[q, n] = float(tok_lp[k:].sum())
    return slot, after


def _answer_ids(tokenizer, text: str) -> list[int]:
    return tokenizer(" " + text, add_special_tokens=False).input_ids


def query_slots(tokenizer, ids, examples, candidates: list[str], is_mdm: bool,
                gen_length: int = GEN_LENGTH) -> list[Slot]:
    """Slots of "prompt [answer]": MDM answer EOS-padded to gen_length (training layout), ARM answer + EOS."""
    index = {c: i for i, c in enumerate(candidates)}
    lengths = {len(_answer_ids(tokenizer, c)) for c in candidates}
    right = {k: (ids.eos,) * (gen_length - k) if is_mdm else (ids.eos,) for k in lengths}
    return [Slot(tuple(encode(tokenizer, e.prompt, e.target).prompt), right, index[e.target]) for e in examples]


def _find(seq: list[int], sub: list[int]) -> int:
    for i in range(len(seq) - len(sub) + 1):
        if seq[i: i + len(sub)] == sub:
            return i
    return -1


def statement_slots(tokenizer, ids, train, candidates: list[str], is_mdm: bool,
                    gen_length: int = GEN_LENGTH) -> list[Slot]:
    """Slots of the forward training statements with the reverse-answer entity cut out of the prompt.

    The entity is the candidate whose tokens occur in the prompt (the longest if several); rows
    where none does are skipped. The rest is laid out as in training (completion, then EOS).
    """
    out = []
    for e in train:
        enc = encode(tokenizer, e.prompt, e.target)
        prompt = list(enc.prompt)
        found = sorted(((len(_answer_ids(tokenizer, c)), i, c) for i, c in enumerate(candidates)
                        if _find(prompt, _answer_ids(tokenizer, c)) >= 0), reverse=True)
        if not found:
            continue
        k, target, name = found[0]
        at = _find(prompt, _answer_ids(tokenizer, name))
        tail = prompt[at + k:] + list(enc.completion)
        right = tuple(tail + [ids.eos] * (gen_length - len(enc.completion))) if is_mdm else tuple(tail + [ids.eos])
        lengths = {len(_answer_ids(tokenizer, c)) for c in candidates}
        out.append(Slot(tuple(prompt[:at]), {n: right for n in lengths}, target))
    return out


def _entity_rank(score_N: np.ndarray, groups: list[list[int]], right: int, keep=None) -> tuple[float, int]:
    """(rank, number of ranked entities): an entity scores the best of its candidates (only those in
    `keep`, a boolean mask, if given; entities left without one drop out); the right entity ranked by `rank_of`."""
    members = [[n for n in g if keep is None or keep[n]] for g in groups]
    live = [i for i, g in enumerate(members) if g]
    best = np.array([score_N[members[i]].max() for i in live])
    return rank_of(best, live.index(right)), len(live)


def rank_summary(score_QxN: np.ndarray, slots: list[Slot], lengths_N: list[int],
                 groups: list[list[int]] | None = None, right_Q: list[int] | None = None) -> dict:
    """Mean rank over queries, its chance level, the length-matched rank, and the per-query ranks.

    `groups[g]` lists the candidates that answer entity g and `right_Q[q]` is query q's entity
    (entity-aware rule, module doc); by default every candidate is its own entity and the right
    one is `Slot.target`. The length-matched rank counts only candidates with as many tokens as
    the right entity's best-scoring answer (chance: the mean of (N_k + 1) / 2 over queries, N_k
    entities with such a candidate): a score that merely prefers short names, as a sum of
    log-probabilities does, moves the plain rank but not this one.
    """
    lengths = np.asarray(lengths_N)
    if groups is None:
        groups, right_Q = [[n] for n in range(len(lengths))], [s.target for s in slots]
    ranks, matched, matched_n = [], [], []
    for q, g in enumerate(right_Q):
        ranks.append(_entity_rank(score_QxN[q], groups, g)[0])
        best = max(groups[g], key=lambda n: score_QxN[q, n])
        r, n = _entity_rank(score_QxN[q], groups, g, keep=lengths == lengths[best])
        matched.append(r)
        matched_n.append(n)
    r, N = np.asarray(ranks, dtype=float), len(groups)
    nan = float("nan")
    return {"mean_rank": float(r.mean()) if len(r) else nan, "top1": float((r == 1).mean()) if len(r) else nan,
            "chance_rank": (N + 1) / 2, "n_candidates": N, "n_answers": len(lengths), "n_queries": len(r),
            "length_matched_rank": float(np.mean(matched)) if matched else nan,
            "length_matched_chance": float(np.mean([(n + 1) / 2 for n in matched_n])) if matched_n else nan,
            "ranks": [float(x) for x in r]}


def name_words(text: str) -> set[str]:
    """The words of a name that can be copied: lowercase particles ("of", "de") are left out."""
    return {w for w in re.findall(r"\w+", text) if not w.islower()}


def prompt_entity(prompt: str, names) -> str:
    """The longest of `names` that occurs in the prompt as whole words ("" if none does)."""
    found = [n for n in names if n and re.search(rf"(?<!\w){re.escape(n)}(?!\w)", prompt)]
    return max(found, key=len, default="")


def overlap_split(ranks_Q: list[float], shortcut_Q: list[float], shares_Q: list[bool], chance: float) -> dict:
    """Mean rank, chance and the shortcut's mean rank over all queries and the two subsets of `shares_Q`
    (means of an empty subset: None, null in the JSON)."""
    def part(keep):
        idx = [q for q, k in enumerate(keep) if k]
        mean = lambda xs: float(np.mean([xs[q] for q in idx])) if idx else None  # noqa: E731
        return {"n": len(idx), "mean_rank": mean(ranks_Q), "chance": chance, "shortcut_rank": mean(shortcut_Q)}

    return {"all": part([True] * len(shares_Q)), "overlap": part(shares_Q),
            "no_overlap": part([not s for s in shares_Q])}


def rank_reading(model, tokenizer, ids, examples, is_mdm: bool, names=None) -> dict:
    """Mean rank of the right entity among all entities of the set (entity-aware rule), with chance
    level, per-query ranks and the surname-copy split (module doc).

    `names`: the entity names that prompts may contain (the task's names); the prompt's entity is
    the longest of them found in the prompt. Default: the candidates and the examples' entities.
    """
    cands = list(dict.fromkeys(e.target for e in examples))
    keys = list(dict.fromkeys(e.entity or e.target for e in examples))
    groups = [list(dict.fromkeys(cands.index(e.target) for e in examples if (e.entity or e.target) == k))
              for k in keys]
    right = [keys.index(e.entity or e.target) for e in examples]
    tokens = [_answer_ids(tokenizer, c) for c in cands]
    slots = query_slots(tokenizer, ids, examples, cands, is_mdm)
    slot, after = score_slots(model, is_mdm, slots, tokens, ids.mask, ids.pad)
    out = rank_summary(slot + after, slots, [len(t) for t in tokens], groups, right)
    names = list(dict.fromkeys(cands + [e.entity for e in examples])) if names is None else list(names)
    cand_words = [name_words(c) for c in cands]
    shortcut = np.zeros((len(examples), len(cands)))
    for q, e in enumerate(examples):
        words = name_words(prompt_entity(e.prompt, names))
        shortcut[q] = [float(bool(w & words)) for w in cand_words]
    shares = [bool(cand_words[cands.index(e.target)] & name_words(prompt_entity(e.prompt, names)))
              for e in examples]
    shortcut_ranks = rank_summary(shortcut, slots, [1] * len(cands), groups, right)["ranks"]
    out.update(shares_word=shares, shortcut_ranks=shortcut_ranks,
               **overlap_split(out["ranks"], shortcut_ranks, shares, out["chance_rank"]))
    return out


def positive_control(model, tokenizer, ids, train, reverse, is_mdm: bool) -> dict:
    """Rank of the reverse-answer entity masked out of its own training statement (see module doc)."""
    cands = list(dict.fromkeys(e.target for e in reverse))
    tokens = [_answer_ids(tokenizer, c) for c in cands]
    slots = statement_slots(tokenizer, ids, train, cands, is_mdm)
    slot, after = score_slots(model, is_mdm, slots, tokens, ids.mask, ids.pad)
    out = rank_summary(slot + after, slots, [len(t) for t in tokens])
    if not is_mdm:
        out["prefix"] = rank_summary(slot, slots, [len(t) for t in tokens])
    return out


def first_token_reading(model, tokenizer, ids, reverse, is_mdm: bool) -> dict:
    """Figure 7 (a)/(b): probability and vocabulary rank of the right first answer token on reverse queries."""
    stats = first_token_stats(model, tokenizer, ids, reverse, is_mdm)
    p, r = np.array([s["prob"] for s in stats]), np.array([s["rank"] for s in stats])
    return {"prob_mean": float(p.mean()), "rank_median": float(np.median(r)), "rank_mean": float(r.mean()),
            "n": len(stats), "vocab": int(model.config.vocab_size)}


def attention_reading(model, tokenizer, ids, train, reverse, gen_length: int = GEN_LENGTH) -> dict:
    """Figure 7 (c) in the training layouts: Pearson correlation across facts, per layer and head, of
    q_[M]^T R k_B in the forward statement with A masked ("[M]^|A| rel B", training layout) and in the
    reverse query ("B rel' [M]^|A| EOS..."): q of the first [M], k of B's last token (Section 4.2).

    `train[i]` and `reverse[i]` must state the same fact; facts whose A is not in the training
    prompt or whose B is not in the reverse prompt (Person-Description's paraphrases) are skipped.
    """
    fwd_scores, rev_scores = [], []
    for t, r in zip(train, reverse):
        a_ids, b_ids = _answer_ids(tokenizer, r.target), _answer_ids(tokenizer, t.target)
        enc = encode(tokenizer, t.prompt, t.target)
        p, rp = list(enc.prompt), list(encode(tokenizer, r.prompt, r.target).prompt)
        at, bt = _find(p, a_ids), _find(rp, b_ids)
        if at < 0 or bt < 0:
            continue
        k = len(a_ids)
        fwd = p[:at] + [ids.mask] * k + p[at + k:] + list(enc.completion)
        fwd_key = len(fwd) - 1
        fwd += [ids.eos] * (gen_length - len(enc.completion))
        rev = rp + [ids.mask] * k + [ids.eos] * (gen_length - k)
        fwd_scores.append(attention_scores(model, fwd, at, fwd_key))
        rev_scores.append(attention_scores(model, rev, len(rp), bt + len(b_ids) - 1))
    if len(fwd_scores) < 3:
        return {"n_pairs": len(fwd_scores), "corr_mean": float("nan"), "corr_per_layer": []}
    corr = _pearson(np.stack(fwd_scores), np.stack(rev_scores))  # layers x heads
    return {"n_pairs": len(fwd_scores), "corr_mean": float(np.nanmean(corr)),
            "corr_per_layer": np.nanmean(corr, axis=1).tolist()}
