"""T-REx-style (synthetic): 90 fictional entities, 6 relations, 5 name-free phrasings each.

The paper's T-REx subset (Appendix D) is not public and T-REx cannot be fetched here, so
this is a generated set of the same shape, built deterministically from a seed: fictional
names from a syllable generator, 15 (subject, object) pairs per relation, 5 forward and
5 reverse phrasings per relation. Training and forward evaluation use the 5 forward
phrasings of every pair (450 queries); reverse evaluation the 5 reverse ones (450).
"""
from __future__ import annotations

import numpy as np

from largescale_torch.data.types import Example, Task

N_ENTITIES = 90
ONSETS = ("b", "br", "c", "d", "dr", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "th", "v", "w", "z")
VOWELS = ("a", "e", "i", "o", "u", "ae", "ai", "ei", "ou")
CODAS = ("", "", "l", "n", "r", "s", "th", "nd", "rn", "x")

# relation -> (subject kind, object kind, forward phrasings "{s}...", reverse phrasings "{o}...")
RELATIONS = {
    "capital": ("place", "city", (
        "{s} has its largest and most important capital city in",
        "The capital of {s} is",
        "The seat of government of {s} is located in",
        "The country of {s} is governed from its capital,",
        "The capital city of {s} is called",
    ), (
        "{o} is the capital of",
        "The country whose capital is {o} is",
        "{o} serves as the capital city of",
        "As a capital city, {o} belongs to",
        "{o} is the seat of government of",
    )),
    "founder": ("org", "person", (
        "{s} was founded by",
        "The founder of {s} is",
        "The company {s} was started by",
        "The person who established {s} is",
        "{s} owes its existence to its founder,",
    ), (
        "{o} is the founder of",
        "The company founded by {o} is",
        "{o} started the company",
        "The firm established by {o} is",
        "{o} is best known for founding",
    )),
    "author": ("work", "person", (
        "{s} was written by",
        "The author of {s} is",
        "The novel {s} was penned by",
        "The writer behind {s} is",
        "{s} is a book by",
    ), (
        "{o} is the author of",
        "The novel written by {o} is",
        "{o} wrote the book",
        "The best-known book by {o} is",
        "{o} is famous for writing",
    )),
    "birthplace": ("person", "place", (
        "{s} was born in",
        "The birthplace of {s} is",
        "{s} came into the world in the town of",
        "The hometown where {s} was born is",
        "{s} spent early childhood in the birth town of",
    ), (
        "{o} is the birthplace of",
        "The person born in {o} is",
        "The town of {o} is where this person was born:",
        "{o} is proud to be the hometown of",
        "Born in {o}, the famous native is",
    )),
    "headquarters": ("org", "city", (
        "{s} has its headquarters in",
        "The head office of {s} is located in",
        "The company {s} is based in the city of",
        "The main offices of {s} are in",
        "{s} runs its operations from its headquarters in",
    ), (
        "{o} hosts the headquarters of",
        "The company headquartered in {o} is",
        "The city of {o} is home to the head office of",
        "{o} is where the main offices belong to",
        "Based in {o}, the company is called",
    )),
    "director": ("film", "person", (
        "{s} was directed by",
        "The director of {s} is",
        "The film {s} was made by director",
        "The filmmaker behind {s} is",
        "{s} is a film by the director",
    ), (
        "{o} is the director of",
        "The film directed by {o} is",
        "{o} directed the film",
        "The best-known film of director {o} is",
        "{o} is famous for directing",
    )),
}
RELATION_NAMES = tuple(RELATIONS)


def _word(rng: np.random.Generator, syllables: int) -> str:
    parts = []
    for _ in range(syllables):
        parts.append(ONSETS[rng.integers(len(ONSETS))] + VOWELS[rng.integers(len(VOWELS))])
    parts.append(CODAS[rng.integers(len(CODAS))])
    return "".join(parts).capitalize()


def _name(rng: np.random.Generator, kind: str) -> str:
    if kind == "person":
        return f"{_word(rng, int(rng.integers(1, 3)))} {_word(rng, int(rng.integers(2, 4)))}"
    if kind == "city":
        return f"{('State of ', 'Port ', 'Fort ', '')[rng.integers(4)]}{_word(rng, 2)}"
    if kind == "org":
        return f"{_word(rng, 2)} {('Industries', 'Corporation', 'Labs', 'Holdings')[rng.integers(4)]}"
    if kind == "work":
        return f"The {_word(rng, 2)} {('Chronicles', 'Legacy', 'Tides', 'Garden')[rng.integers(4)]}"
    if kind == "film":
        return f"{_word(rng, 2)} {('Rising', 'Nights', 'Horizon', 'Falls')[rng.integers(4)]}"
    return _word(rng, int(rng.integers(2, 4)))  # place


def generate_pairs(seed: int = 0, n_entities: int = N_ENTITIES) -> list[tuple[str, str, str]]:
    """(relation, subject, object) triples; every name is unique and no name contains another."""
    if n_entities % len(RELATIONS):
        raise ValueError(f"n_entities must be a multiple of {len(RELATIONS)}")
    rng = np.random.default_rng(seed)
    used: list[str] = []

    def fresh(kind: str) -> str:
        while True:
            name = _name(rng, kind)
            low = name.lower()
            if all(low not in u.lower() and u.lower() not in low for u in used):
                used.append(name)
                return name

    per_relation = n_entities // len(RELATIONS)
    triples = []
    for rel, (s_kind, o_kind, _, _) in RELATIONS.items():
        for _ in range(per_relation):
            triples.append((rel, fresh(s_kind), fresh(o_kind)))
    return triples


def build_trex(seed: int = 0, n_entities: int = N_ENTITIES) -> Task:
    triples = generate_pairs(seed, n_entities)
    train, reverse = [], []
    for rel, s, o in triples:
        _, _, fwd_templates, rev_templates = RELATIONS[rel]
        train += [Example(t.format(s=s), o, (o,), entity=s) for t in fwd_templates]
        reverse += [Example(t.format(o=o), s, (s,), entity=s) for t in rev_templates]
    selection = {
        "rule": f"synthetic T-REx-style set generated with numpy default_rng({seed})",
        "triples": [{"relation": r, "subject": s, "object": o} for r, s, o in triples],
    }
    return Task("trex", "forward", tuple(train), tuple(train), tuple(reverse), selection)
