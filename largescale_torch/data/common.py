"""Task containers and the dataset/direction registry."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from largescale_torch.constants import DATASET_DIRECTIONS


@dataclass(frozen=True)
class Example:
    """One query: the model sees `prompt` and must produce `target`.

    `accepted` lists every answer counted as correct (the either-parent rule of Appendix D);
    it always contains `target`.
    """

    prompt: str
    target: str
    accepted: tuple[str, ...]
    entity: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Task:
    """Training examples (forward direction only) and the two evaluation sets."""

    dataset: str
    direction: str
    train: tuple[Example, ...]
    forward: tuple[Example, ...]
    reverse: tuple[Example, ...]
    selection: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "direction": self.direction,
            "counts": {"train": len(self.train), "forward": len(self.forward), "reverse": len(self.reverse)},
            "selection": self.selection,
            "train": [e.to_dict() for e in self.train],
            "forward": [e.to_dict() for e in self.forward],
            "reverse": [e.to_dict() for e in self.reverse],
        }


def check_dataset_direction(dataset: str, direction: str) -> None:
    if dataset not in DATASET_DIRECTIONS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASET_DIRECTIONS)}")
    allowed = DATASET_DIRECTIONS[dataset]
    if direction not in allowed:
        raise ValueError(
            f"direction {direction!r} does not fit dataset {dataset!r}; choose one of {', '.join(allowed)}"
        )


def build_task(dataset: str, direction: str, data_dir: str | None = None, seed: int = 0,
               d2p_completions: str = "name") -> Task:
    """Build one dataset in one training direction.

    `seed` is the data-selection seed (Parent-Child subset, T-REx-style names), not the
    training seed, so that the three training seeds of Table 1 share one dataset.
    `d2p_completions`: "name" (bare names as D2P training answers) or "verbatim".
    """
    check_dataset_direction(dataset, direction)
    if dataset == "parent_child":
        from largescale_torch.data.parent_child import build_parent_child

        return build_parent_child(direction, data_dir=data_dir, seed=seed)
    if dataset == "person_description":
        from largescale_torch.data.person_description import build_person_description

        return build_person_description(direction, data_dir=data_dir, d2p_completions=d2p_completions)
    from largescale_torch.data.trex import build_trex

    return build_trex(seed=seed)
