"""Losses and readings of the miniature on constructed inputs and models of known behaviour."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from largescale_torch.data import Example
from largescale_torch.losses import mdm_corrupt, mdm_loss, mdm_pretrain_corrupt, mdm_pretrain_loss
from largescale_torch.mini import readings as R
from largescale_torch.mini.corpus import word_tokenizer


def test_pretraining_loss_masks_prompt_and_answer_alike_sft_masks_the_answer_only():
    B, L, P = 400, 12, 5  # first P tokens: prompt; last two of row 0: padding
    ids = torch.randint(5, 50, (B, L))
    attention = torch.ones(B, L, dtype=torch.long)
    attention[0, -2:] = 0
    response = torch.zeros(B, L, dtype=torch.bool)
    response[:, P:] = True
    g = torch.Generator().manual_seed(0)
    _, m_pre, _ = mdm_pretrain_corrupt(ids, attention, 3, generator=g)
    _, m_sft, _ = mdm_corrupt(ids, response, 3, generator=torch.Generator().manual_seed(0))
    assert not m_sft[:, :P].any() and m_sft[:, P:].any()
    assert not m_pre[0, -2:].any()
    rate_prompt, rate_answer = m_pre[1:, :P].float().mean(), m_pre[1:, P:].float().mean()
    assert rate_prompt > 0.4 and abs(rate_prompt - rate_answer) < 0.05  # E[p_mask] = 0.5 on both
    # Weighted CE: a masked token with CE c contributes c / p_mask / (real tokens of its row).
    logits = torch.zeros(2, 4, 7)
    x = torch.tensor([[1, 2, 3, 4], [1, 2, 3, 4]])
    masked = torch.tensor([[True, False, False, False], [True, True, False, False]])
    p = torch.tensor([0.5, 0.25])
    att = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    ce = np.log(7)
    expected = (ce / 0.5 / 4 + 2 * ce / 0.25 / 2) / 2
    assert abs(float(mdm_pretrain_loss(logits, x, masked, p, att)) - expected) < 1e-5
    assert torch.equal(mdm_pretrain_loss(logits, x, masked, p, att), mdm_loss(logits, x, masked, p, att.bool()))


NAMES = ["Ann Lee", "Bo Kim", "Cy Fox", "Di Ray", "Ed Sun"]
OBJECTS = ["Fay", "Gus", "Hal", "Ivy", "Jo"]


class KnowsReverse(torch.nn.Module):
    """A constructed MDM: at the masked slot after "<object> 's parent is" it puts all mass on the
    paired subject's tokens (one position each); `knows=False` gives every token the same logit."""

    def __init__(self, tok, knows: bool):
        super().__init__()
        self.tok, self.knows, self.V = tok, knows, len(tok)
        self.config = SimpleNamespace(vocab_size=len(tok))
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        B, L = input_ids.shape
        logits = torch.zeros(B, L, self.V)
        if not self.knows:
            return SimpleNamespace(logits=logits)
        obj = {self.tok.convert_tokens_to_ids(o): s for o, s in zip(OBJECTS, NAMES)}
        mask = self.tok.mask_token_id
        for b in range(B):
            row = input_ids[b].tolist()
            subj = next(obj[t] for t in row if t in obj)
            first = row.index(mask)
            for j, t in enumerate(self.tok(" " + subj, add_special_tokens=False).input_ids):
                logits[b, first + j, t] = 20.0
        return SimpleNamespace(logits=logits)


def _setup():
    texts = [t for n, o in zip(NAMES, OBJECTS) for t in (f"{n}'s child is {o}", f"{o}'s parent is {n}")]
    tok = word_tokenizer(texts)
    ids = SimpleNamespace(mask=tok.mask_token_id, pad=tok.pad_token_id, eos=tok.eos_token_id, bos=tok.bos_token_id)
    reverse = [Example(f"{o}'s parent is", n, (n,)) for n, o in zip(NAMES, OBJECTS)]
    return tok, ids, reverse


def test_rank_reading_first_for_a_model_that_knows_the_reverse_chance_for_one_that_does_not():
    tok, ids, reverse = _setup()
    knows = R.rank_reading(KnowsReverse(tok, True), tok, ids, reverse, is_mdm=True)
    assert knows["mean_rank"] == 1.0 and knows["top1"] == 1.0 and knows["n_candidates"] == 5
    blind = R.rank_reading(KnowsReverse(tok, False), tok, ids, reverse, is_mdm=True)
    assert blind["mean_rank"] == blind["chance_rank"] == 3.0  # (N + 1) / 2


def test_rank_of_breaks_ties_at_half_and_counts_better_candidates():
    assert R.rank_of(np.array([0.0, 0.0, 0.0, 0.0]), 2) == 2.5
    assert R.rank_of(np.array([1.0, 3.0, 2.0]), 2) == 2.0
    assert R.rank_of(np.array([5.0, 3.0, 2.0]), 0) == 1.0


def test_arm_scores_sum_the_candidate_and_its_eos():
    """A constructed ARM whose next-token distribution is uniform: log p(c, EOS | prompt) = -(|c| + 1) log V."""
    tok, ids, reverse = _setup()
    uniform = KnowsReverse(tok, False)
    slots = R.query_slots(tok, ids, reverse, NAMES, is_mdm=False)
    cands = [tok(" " + n, add_special_tokens=False).input_ids for n in NAMES]
    slot, after = R.score_slots(uniform, False, slots, cands, ids.mask, ids.pad)
    V = len(tok)
    assert np.allclose(slot, -2 * np.log(V)) and np.allclose(after, -np.log(V))


def test_positive_control_finds_the_entity_inside_the_training_statement():
    tok, ids, reverse = _setup()
    train = [Example(f"{n}'s child is", o, (o,)) for n, o in zip(NAMES, OBJECTS)]
    slots = R.statement_slots(tok, ids, train, NAMES, is_mdm=True)
    assert [s.target for s in slots] == list(range(5))
    assert all(s.left == (tok.bos_token_id,) for s in slots)  # the subject opens the statement
    right = slots[0].right_by_len[2]
    assert tok.convert_ids_to_tokens(list(right[:4])) == ["##'s", "child", "is", "Fay"]
    assert len(right) == 3 + 1 + 31 and set(right[4:]) == {tok.eos_token_id}  # completion, EOS up to 32


def test_length_matched_rank_ignores_a_preference_for_short_answers():
    """Scores that only prefer fewer tokens: plain ranks 1.5 (short) and 3.5 (long); length-matched 1.5 = chance."""
    slots = [R.Slot((), {}, t) for t in range(4)]
    lengths = [1, 1, 2, 2]
    score = np.tile(np.array([-1.0, -1.0, -2.0, -2.0]), (4, 1))
    out = R.rank_summary(score, slots, lengths)
    assert out["mean_rank"] == (1.5 + 1.5 + 3.5 + 3.5) / 4 and out["chance_rank"] == 2.5
    assert out["length_matched_rank"] == out["length_matched_chance"] == 1.5


def test_rank_reading_stores_per_query_ranks_in_query_order():
    tok, ids, reverse = _setup()
    knows = R.rank_reading(KnowsReverse(tok, True), tok, ids, reverse, is_mdm=True)
    blind = R.rank_reading(KnowsReverse(tok, False), tok, ids, reverse, is_mdm=True)
    assert knows["ranks"] == [1.0] * 5 and blind["ranks"] == [3.0] * 5
    assert knows["n_answers"] == knows["n_candidates"] == 5


class MaskLoving(torch.nn.Module):
    """A constructed MDM whose every position puts logit 50 on the mask token and 0 elsewhere."""

    def __init__(self, tok):
        super().__init__()
        self.V, self.mask = len(tok), tok.mask_token_id

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        logits = torch.zeros(*input_ids.shape, self.V)
        logits[..., self.mask] = 50.0
        return SimpleNamespace(logits=logits)


def test_mdm_scores_leave_the_mask_token_out_of_the_softmax():
    """Uniform over the V - 1 other tokens: each slot token scores -log(V - 1), however much mass [M] had."""
    tok, ids, reverse = _setup()
    slots = R.query_slots(tok, ids, reverse, NAMES, is_mdm=True)
    cands = [tok(" " + n, add_special_tokens=False).input_ids for n in NAMES]
    slot, after = R.score_slots(MaskLoving(tok), True, slots, cands, ids.mask, ids.pad)
    assert np.allclose(slot, -2 * np.log(len(tok) - 1)) and not after.any()


CHILDREN = ["Hailee Steinfeld", "Bo Kim", "Cy Fox", "Di Ray"]
PARENTS = ["Cheri Steinfeld", "Al Kim", "Ed Sun", "Jo Lee"]


class CopiesPrompt(torch.nn.Module):
    """A constructed MDM that knows no fact: every masked position favours the tokens of the prompt."""

    def __init__(self, tok):
        super().__init__()
        self.V, self.mask, self.special = len(tok), tok.mask_token_id, set(tok.all_special_ids)

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        logits = torch.zeros(*input_ids.shape, self.V)
        for b, row in enumerate(input_ids.tolist()):
            seen = [t for t in row if t not in self.special]
            for i, t in enumerate(row):
                if t == self.mask:
                    logits[b, i, seen] = 5.0
        return SimpleNamespace(logits=logits)


def test_overlap_split_and_the_surname_copy_baseline():
    texts = [t for p, c in zip(PARENTS, CHILDREN) for t in (f"{p}'s child is {c}", f"{c}'s parent is {p}")]
    tok = word_tokenizer(texts)
    ids = SimpleNamespace(mask=tok.mask_token_id, pad=tok.pad_token_id, eos=tok.eos_token_id, bos=tok.bos_token_id)
    reverse = [Example(f"{c}'s parent is", p, (p,), entity=c) for p, c in zip(PARENTS, CHILDREN)]
    names = PARENTS + CHILDREN
    assert R.prompt_entity("Hailee Steinfeld's parent is", names) == "Hailee Steinfeld"
    assert R.name_words("State of Fuko") == {"State", "Fuko"}
    blind = R.rank_reading(KnowsReverse(tok, False), tok, ids, reverse, is_mdm=True, names=names)
    assert blind["shares_word"] == [True, True, False, False]
    assert blind["overlap"] == {"n": 2, "mean_rank": 2.5, "chance": 2.5, "shortcut_rank": 1.0}
    assert blind["no_overlap"] == {"n": 2, "mean_rank": 2.5, "chance": 2.5, "shortcut_rank": 2.5}
    assert blind["shortcut_ranks"] == [1.0, 1.0, 2.5, 2.5] and blind["all"]["shortcut_rank"] == 1.75
    # Copying the prompt's surname, with no knowledge of any parent, ranks exactly where the shortcut does.
    copier = R.rank_reading(CopiesPrompt(tok), tok, ids, reverse, is_mdm=True, names=names)
    assert copier["ranks"] == copier["shortcut_ranks"] and copier["mean_rank"] == 1.75 < copier["chance_rank"]
    assert copier["overlap"]["mean_rank"] == 1.0 and copier["no_overlap"]["mean_rank"] == 2.5


def test_entity_aware_rank_counts_paraphrases_of_the_right_answer_as_right():
    """Two people with two descriptions each: N = 2 entities, an entity scoring the best of its answers."""
    slots = [R.Slot((), {}, 0), R.Slot((), {}, 2)]
    groups, right = [[0, 1], [2, 3]], [0, 1]
    score = np.array([[-5.0, -1.0, -2.0, -3.0],   # person 0: its 2nd paraphrase beats all of person 1's
                      [-1.0, -4.0, -3.0, -2.0]])  # person 1: person 0's best beats both of person 1's
    out = R.rank_summary(score, slots, [1, 1, 1, 1], groups, right)
    assert out["ranks"] == [1.0, 2.0] and out["n_candidates"] == 2 and out["n_answers"] == 4
    assert out["chance_rank"] == 1.5 and R.rank_summary(score, slots, [1, 1, 1, 1])["ranks"] == [4.0, 3.0]
    # Through rank_reading: paraphrased targets of one entity form one candidate; a blind model is at chance.
    tok, ids, _ = _setup()
    forward = [Example(f"{o}'s parent is", n, (n,), entity=e) for (n, o), e in zip(zip(NAMES, OBJECTS), "AABBB")]
    blind = R.rank_reading(KnowsReverse(tok, False), tok, ids, forward, is_mdm=True)
    assert blind["n_candidates"] == 2 and blind["n_answers"] == 5 and blind["mean_rank"] == blind["chance_rank"] == 1.5


def test_entity_aware_rank_is_the_plain_rank_when_each_entity_has_one_answer():
    rng = np.random.default_rng(0)
    score = rng.integers(0, 3, (6, 6)).astype(float)  # ties on purpose
    slots = [R.Slot((), {}, t) for t in (0, 1, 2, 3, 4, 5)]
    lengths = [1, 2, 1, 2, 1, 3]
    plain = R.rank_summary(score, slots, lengths)
    ranks = [R.rank_of(score[q], q) for q in range(6)]
    assert plain["ranks"] == ranks
    perm = [3, 0, 5, 1, 4, 2]  # entities listed in another order than the candidates
    grouped = R.rank_summary(score, slots, lengths, [[n] for n in perm], [perm.index(q) for q in range(6)])
    assert grouped == plain
    tok, ids, reverse = _setup()
    with_entity = [Example(e.prompt, e.target, e.accepted, entity=o) for e, o in zip(reverse, OBJECTS)]
    for model in (KnowsReverse(tok, True), KnowsReverse(tok, False)):
        a = R.rank_reading(model, tok, ids, reverse, is_mdm=True)
        b = R.rank_reading(model, tok, ids, with_entity, is_mdm=True)
        assert {k: v for k, v in a.items() if k != "shares_word"} == {k: v for k, v in b.items() if k != "shares_word"}
