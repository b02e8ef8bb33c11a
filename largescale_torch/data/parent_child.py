"""Parent-Child (Berglund et al. 2024; Appendix D): 250 child-parent pairs with parent type."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from largescale_torch.data.types import Example, Task
from largescale_torch.data.source import PARENT_CHILD_CSV, data_file, read_csv, resolve_data_dir

N_PAIRS = 250
PARENT_TYPES = ("mother", "father")
P2C_TEMPLATE = "{parent}'s child is"
C2P_TEMPLATE = "{child}'s parent is"


def clean_rows(rows: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    """(child, parent, parent_type) rows with both names and a known type, de-duplicated, file order."""
    seen, out = set(), []
    for row in rows:
        child, parent, ptype = row["child"], row["parent"], row["parent_type"].lower()
        if not child or not parent or ptype not in PARENT_TYPES or child == parent:
            continue
        if (child, parent) in seen:
            continue
        seen.add((child, parent))
        out.append((child, parent, ptype))
    return out


def select_pairs(rows: list[tuple[str, str, str]], n: int = N_PAIRS, seed: int = 0) -> list[tuple[str, str, str]]:
    """The documented selection rule.

    Visit the cleaned rows in the order of `numpy.random.default_rng(seed).permutation`
    and keep a row when neither of its two names already occurs in the kept set (as a child
    or a parent); stop at `n`. Every name then occurs once, so both "{parent}'s child is"
    and "{child}'s parent is" queries have a single paired answer. The result is returned
    in file order.
    """
    order = np.random.default_rng(seed).permutation(len(rows))
    used, kept = set(), []
    for i in order:
        child, parent, _ = rows[i]
        if child in used or parent in used:
            continue
        used.update((child, parent))
        kept.append(int(i))
        if len(kept) == n:
            break
    if len(kept) < n:
        raise ValueError(f"parent_child_pairs.csv yields only {len(kept)} disjoint pairs, need {n}")
    return [rows[i] for i in sorted(kept)]


def build_parent_child(direction: str, data_dir: str | None = None, seed: int = 0, n: int = N_PAIRS) -> Task:
    """P2C trains "{parent}'s child is" -> child; C2P trains "{child}'s parent is" -> parent.

    Forward evaluation reuses the training prompts; reverse evaluation swaps the roles.
    Accepted answers are every parent of the child (resp. every child of the parent) listed
    anywhere in the CSV: the either-parent rule of Appendix D.
    """
    root = resolve_data_dir(data_dir)
    rows = clean_rows(read_csv(data_file(root, PARENT_CHILD_CSV), ("child", "parent", "parent_type")))
    parents_of, children_of = defaultdict(list), defaultdict(list)
    for child, parent, _ in rows:
        parents_of[child].append(parent)
        children_of[parent].append(child)
    pairs = select_pairs(rows, n=n, seed=seed)

    def p2c(child: str, parent: str) -> Example:
        return Example(P2C_TEMPLATE.format(parent=parent), child, tuple(children_of[parent]), entity=child)

    def c2p(child: str, parent: str) -> Example:
        return Example(C2P_TEMPLATE.format(child=child), parent, tuple(parents_of[child]), entity=child)

    fwd, rev = (p2c, c2p) if direction == "p2c" else (c2p, p2c)
    train = tuple(fwd(c, p) for c, p, _ in pairs)
    selection = {
        "rule": f"numpy default_rng({seed}).permutation over cleaned rows; keep rows whose names are all new; first {n}",
        "seed": seed,
        "pairs": [{"child": c, "parent": p, "parent_type": t} for c, p, t in pairs],
    }
    return Task(
        "parent_child", direction, train, train, tuple(rev(c, p) for c, p, _ in pairs), selection
    )
