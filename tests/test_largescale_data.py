"""Dataset builders (counts, determinism, disjoint directions), normalisation, either-parent rule."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from largescale_torch.constants import ConfigError
from largescale_torch.data import build_task
from largescale_torch.data.trex import generate_pairs
from largescale_torch.evaluation import exact_match, normalise, prefix_match
from test_largescale_common import data_dir  # noqa: F401

COUNTS = {
    ("parent_child", "p2c"): (250, 250, 250),
    ("parent_child", "c2p"): (250, 250, 250),
    ("person_description", "p2d"): (300, 100, 100),
    ("person_description", "d2p"): (300, 100, 100),
    ("trex", "forward"): (450, 450, 450),
}


@pytest.mark.parametrize("dataset,direction", list(COUNTS))
def test_counts_determinism_and_disjoint_directions(dataset, direction, data_dir):  # noqa: F811
    a = build_task(dataset, direction, data_dir=data_dir)
    b = build_task(dataset, direction, data_dir=data_dir)
    assert (len(a.train), len(a.forward), len(a.reverse)) == COUNTS[(dataset, direction)]
    assert a == b
    train_prompts = {e.prompt for e in a.train}
    assert not train_prompts & {e.prompt for e in a.reverse}
    # the reverse statement is never trained: no training text contains a reverse prompt + answer
    train_text = {f"{e.prompt} {e.target}" for e in a.train}
    assert not train_text & {f"{e.prompt} {e.target}" for e in a.reverse}
    assert all(e.target in e.accepted for e in (*a.train, *a.forward, *a.reverse))


def test_parent_child_selection_rule(data_dir):  # noqa: F811
    p2c = build_task("parent_child", "p2c", data_dir=data_dir)
    c2p = build_task("parent_child", "c2p", data_dir=data_dir)
    pairs = p2c.selection["pairs"]
    assert pairs == c2p.selection["pairs"] and len(pairs) == 250
    names = [p["child"] for p in pairs] + [p["parent"] for p in pairs]
    assert len(set(names)) == 500  # every name once: unambiguous queries
    assert {p["parent_type"] for p in pairs} <= {"mother", "father"}
    other = build_task("parent_child", "p2c", data_dir=data_dir, seed=1).selection["pairs"]
    assert other != pairs
    assert p2c.train[0].prompt.endswith("'s child is") and p2c.reverse[0].prompt.endswith("'s parent is")
    assert [e.prompt for e in p2c.reverse] == [e.prompt for e in c2p.train]


def test_either_parent_rule(data_dir):  # noqa: F811
    task = build_task("parent_child", "p2c", data_dir=data_dir)
    both = [e for e in task.reverse if len(e.accepted) == 2]
    assert len(both) > 100
    e = both[0]
    other = [a for a in e.accepted if a != e.target][0]
    assert exact_match(e.target, e.accepted) and exact_match(f" {other}.", e.accepted)
    assert not exact_match("Nobody Known", e.accepted)


def test_normalisation():
    assert normalise('  The Acclaimed   Director, "A Journey Through Time.".  ') == \
        'the acclaimed director, "a journey through time'
    assert exact_match(" chris hemsworth", ("Chris Hemsworth",))
    assert exact_match("Chris Hemsworth.", ("Chris Hemsworth",))
    assert not exact_match("Chris Hemsworth is an actor", ("Chris Hemsworth",))
    assert not exact_match("Chris", ("Chris Hemsworth",))
    assert prefix_match("Chris Hemsworth is an actor", ("Chris Hemsworth",))
    assert not prefix_match("Chris Hemsworthy", ("Chris Hemsworth",))


def test_trex_shape_and_seed():
    triples = generate_pairs(0)
    assert len(triples) == 90 and len({r for r, _, _ in triples}) == 6
    names = [s for _, s, _ in triples] + [o for _, _, o in triples]
    assert len(set(names)) == 180
    assert generate_pairs(0) == triples and generate_pairs(1) != triples


def test_bad_data_dir_errors(tmp_path, data_dir):  # noqa: F811
    with pytest.raises(ConfigError, match="does not exist"):
        build_task("parent_child", "p2c", data_dir=str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="missing data file"):
        build_task("person_description", "p2d", data_dir=str(tmp_path))
    csv = tmp_path / "data" / "celebrity_relations" / "parent_child_pairs.csv"
    csv.parent.mkdir(parents=True)
    csv.write_text("kid,mom\na,b\n")
    with pytest.raises(ValueError, match="malformed.*missing column"):
        build_task("parent_child", "p2c", data_dir=str(tmp_path))
    pd = tmp_path / "data" / "reverse_experiments" / "june_version_7921032488"
    shutil.copytree(Path(data_dir) / "data" / "reverse_experiments" / "june_version_7921032488", pd)
    (pd / "p2d_prompts_train.jsonl").write_text('{"prompt": "x"}\n')
    with pytest.raises(ValueError, match="malformed.*line 1"):
        build_task("person_description", "p2d", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="does not fit"):
        build_task("trex", "p2c")


def test_d2p_training_completions_are_bare_names_unless_verbatim(data_dir):  # noqa: F811
    bare = build_task("person_description", "d2p", data_dir=data_dir)
    verbatim = build_task("person_description", "d2p", data_dir=data_dir, d2p_completions="verbatim")
    assert [e.prompt for e in bare.train] == [e.prompt for e in verbatim.train]
    assert all(e.target == e.entity and e.accepted == (e.entity,) for e in bare.train)
    longer = [e for e in verbatim.train if e.target != e.entity]
    assert len(longer) == 290 and all(e.target.startswith(e.entity) for e in longer)
    assert sum(normalise(e.target) != normalise(e.entity) for e in verbatim.train) == 200  # text after the name
    assert "Uriah Hawthorne now enjoys a quite life." in {e.target for e in verbatim.train}
    assert bare.forward == verbatim.forward and bare.reverse == verbatim.reverse  # evaluation unchanged
    # P2D completions are descriptions and stay verbatim
    p2d = build_task("person_description", "p2d", data_dir=data_dir)
    assert all(len(e.target) > len(e.entity) for e in p2d.train)
    with pytest.raises(ValueError, match="D2P completion mode"):
        build_task("person_description", "d2p", data_dir=data_dir, d2p_completions="short")
