"""The containers every dataset builder returns: one query (`Example`) and one task (`Task`).

Builders import only this module; `registry.py` maps dataset names to builders, so no
module of the package imports its importer.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


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
