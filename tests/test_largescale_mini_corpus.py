"""Miniature data: the background corpus teaches every name and no tested fact; the tokenizer keeps names whole."""
from __future__ import annotations

import pytest
from test_largescale_common import data_dir  # noqa: F401

from largescale_torch.mini import corpus as C
from largescale_torch.mini.run import MiniConfig, build_data


@pytest.fixture(scope="module")
def built(data_dir):  # noqa: F811
    return build_data(MiniConfig(n_pairs=30, mentions=6), data_dir)


def test_no_tested_fact_occurs_in_the_background_corpus(built):
    tasks, corpus, _ = built
    assert {t.dataset for t in tasks} == set(C.TASK_NAMES)
    for t in tasks:
        for a, b in t.pairs:
            assert not any(a in s and b in s for s in corpus if a and b), (a, b)
        phrases = C.relation_phrases(t)
        assert phrases  # e.g. "'s child is", "is the capital of"
        assert not any(p in s for p in phrases for s in corpus)
    assert "'s child is" in C.relation_phrases(tasks[0]) and "'s parent is" in C.relation_phrases(tasks[0])


def test_every_name_occurs_often_on_both_sides_of_a_sentence(built):
    tasks, corpus, _ = built
    for name in (n for t in tasks for n in t.names):
        hits = [s for s in corpus if name in s]
        assert len(hits) >= 6, name
        others = [n for t in tasks for n in t.names if n != name and n not in name and name not in n]
        pairs = [(s.index(name), s.index(o)) for s in hits for o in others if o in s]
        assert any(i < j for i, j in pairs) and any(i > j for i, j in pairs), name  # before and after another name


def test_check_no_leak_refuses_a_stated_fact_or_relation(built):
    tasks, corpus, _ = built
    a, b = tasks[0].pairs[0]
    with pytest.raises(ValueError, match="states the fact"):
        C.check_no_leak([*corpus, f"{a} waved at {b} ."], tasks)
    with pytest.raises(ValueError, match="relation phrase"):
        C.check_no_leak([*corpus, "Nobody's child is here ."], tasks)


def test_corpus_is_deterministic_in_its_seed(built):
    tasks, corpus, _ = built
    names = list(dict.fromkeys(n for t in tasks for n in t.names))
    forbidden = {frozenset(p) for t in tasks for p in t.pairs if all(p)}
    assert C.background_corpus(names, forbidden, 6, 0) == corpus
    assert C.background_corpus(names, forbidden, 6, 1) != corpus


def test_tokenizer_keeps_names_whole_and_round_trips_answers(built):
    tasks, _, tok = built
    pc = tasks[0]
    parent, child = pc.pairs[0]
    prompt_ids = tok(pc.train[0].prompt).input_ids
    name_ids = tok(" " + parent, add_special_tokens=False).input_ids
    assert prompt_ids[0] == tok.bos_token_id and prompt_ids[1: 1 + len(name_ids)] == name_ids  # "X Y's" -> X, Y, 's
    for t in tasks:
        for e in (*t.train, *t.forward, *t.reverse):
            ids = tok(" " + e.target, add_special_tokens=False).input_ids
            assert tok.unk_token_id not in ids and tok.decode(ids) == e.target
