"""Person-Description (Berglund et al. 2024, june_version_7921032488; Appendix D).

The upstream set has 30 fictitious people per direction, each with 30 training phrasings
(`*_prompts_train.jsonl`), 10 held-out forward phrasings (`*_prompts_test.jsonl`) and 10
reverse phrasings (`*_reverse_prompts_test.jsonl`). The paper uses 10 entities x 30
descriptions; we take the first 10 people in training-file order.

D2P training completions: 200 of the 300 upstream rows continue after the name ("Uriah
Hawthorne now enjoys a quite life.") while every D2P forward target is the bare name, and the
paper's D2P example completes with the bare name. By default (`d2p_completions="name"`) each
D2P training completion is cut to the person's name (every upstream completion starts with
it); `"verbatim"` keeps the upstream text.
"""
from __future__ import annotations

from collections import defaultdict

from largescale_torch.data.types import Example, Task
from largescale_torch.data.source import (
    PERSON_DESCRIPTION_DIR,
    data_file,
    read_prompt_completion_jsonl,
    resolve_data_dir,
)

N_ENTITIES = 10
TRAIN_PER_ENTITY = 30
TEST_PER_ENTITY = 10
D2P_COMPLETIONS = ("name", "verbatim")


def _load(root, name: str) -> list[dict[str, str]]:
    return read_prompt_completion_jsonl(data_file(root, f"{PERSON_DESCRIPTION_DIR}/{name}.jsonl"))


def _assign(rows, names, field: str, path: str) -> dict[str, list[dict[str, str]]]:
    """Group rows by the single person whose name occurs in `field`."""
    groups = defaultdict(list)
    for i, row in enumerate(rows):
        hits = [n for n in names if n in row[field]]
        if len(hits) != 1:
            raise ValueError(f"malformed data file {path}: row {i + 1} names {len(hits)} known people")
        groups[hits[0]].append(row)
    return groups


def _examples(rows, name: str, bare_name: bool = False) -> list[Example]:
    out = []
    for r in rows:
        text = r["completion"].strip()
        if bare_name:
            if not text.startswith(name):
                raise ValueError(f"D2P completion {text!r} does not start with the name {name!r}")
            text = name
        out.append(Example(r["prompt"], text, (text,), entity=name))
    return out


def build_person_description(direction: str, data_dir: str | None = None, n_entities: int = N_ENTITIES,
                             d2p_completions: str = "name") -> Task:
    """P2D: person in the prompt, description as completion; D2P the other way round.

    Train: all 30 training rows of each chosen person. Forward: the 10 held-out phrasings of
    the training direction (`{dir}_prompts_test`). Reverse: the 10 reverse phrasings
    (`{dir}_reverse_prompts_test`). Completions are used verbatim (leading space removed),
    except D2P training completions, cut to the bare name unless `d2p_completions="verbatim"`.
    """
    if d2p_completions not in D2P_COMPLETIONS:
        raise ValueError(f"unknown D2P completion mode {d2p_completions!r}; choose one of {', '.join(D2P_COMPLETIONS)}")
    root = resolve_data_dir(data_dir)
    train_rows = _load(root, f"{direction}_prompts_train")
    test_rows = _load(root, f"{direction}_prompts_test")
    reverse_rows = _load(root, f"{direction}_reverse_prompts_test")
    # The file whose completions are bare names gives the list of people.
    name_rows = reverse_rows if direction == "p2d" else test_rows
    names = list(dict.fromkeys(r["completion"].strip() for r in name_rows))
    name_field_train = "prompt" if direction == "p2d" else "completion"
    name_field_test = "prompt" if direction == "p2d" else "completion"
    name_field_reverse = "completion" if direction == "p2d" else "prompt"
    base = f"{PERSON_DESCRIPTION_DIR}/{direction}"
    train_g = _assign(train_rows, names, name_field_train, f"{base}_prompts_train.jsonl")
    test_g = _assign(test_rows, names, name_field_test, f"{base}_prompts_test.jsonl")
    rev_g = _assign(reverse_rows, names, name_field_reverse, f"{base}_reverse_prompts_test.jsonl")
    order = list(train_g)  # dicts keep first-appearance order
    if len(order) < n_entities:
        raise ValueError(f"{base}_prompts_train.jsonl has {len(order)} people, need {n_entities}")
    chosen = order[:n_entities]
    for name in chosen:
        counts = (len(train_g[name]), len(test_g[name]), len(rev_g[name]))
        if counts != (TRAIN_PER_ENTITY, TEST_PER_ENTITY, TEST_PER_ENTITY):
            raise ValueError(f"malformed person-description files: {name!r} has train/test/reverse counts {counts}")
    bare = direction == "d2p" and d2p_completions == "name"
    train = tuple(e for n in chosen for e in _examples(train_g[n], n, bare_name=bare))
    forward = tuple(e for n in chosen for e in _examples(test_g[n], n))
    reverse = tuple(e for n in chosen for e in _examples(rev_g[n], n))
    selection = {"rule": f"first {n_entities} people in {direction}_prompts_train.jsonl order", "people": chosen}
    if direction == "d2p":
        selection["d2p_completions"] = d2p_completions
    return Task("person_description", direction, train, forward, reverse, selection)
