"""Dataset name -> builder, in one place; file datasets (JSONL, save_to_disk, LLaDA poems) resolved here.

A `--dataset` value is one of
  - a built-in name: parent_child, person_description, trex (Section 3 / Appendix D);
  - a path ending in `.jsonl`: forward/reverse query pairs (schema in `pairs.py`);
  - a directory written by `datasets.Dataset.save_to_disk` with the same columns;
  - `poems:FILE`: LLaDA's reversal-poem file (`poems.py`).
File datasets have one direction, `forward` (training on the forward statements, as the paper).
"""
from __future__ import annotations

from pathlib import Path

from largescale_torch.constants import DATASET_DIRECTIONS, ConfigError
from largescale_torch.data.pairs import (
    build_pairs_task,
    is_saved_dataset,
    path_checksum,
    read_jsonl_pairs,
    read_saved_pairs,
)
from largescale_torch.data.parent_child import build_parent_child
from largescale_torch.data.person_description import build_person_description
from largescale_torch.data.poems import POEM_PREFIX, build_poem_task, read_poems
from largescale_torch.data.source import data_checksum, resolve_data_dir
from largescale_torch.data.trex import build_trex
from largescale_torch.data.types import Task

BUILDERS = {
    "parent_child": lambda direction, data_dir, seed, d2p: build_parent_child(direction, data_dir=data_dir, seed=seed),
    "person_description": lambda direction, data_dir, seed, d2p: build_person_description(
        direction, data_dir=data_dir, d2p_completions=d2p),
    "trex": lambda direction, data_dir, seed, d2p: build_trex(seed=seed),
}
FILE_DIRECTIONS = ("forward",)
FILE_HELP = "a .jsonl file, a datasets save_to_disk directory or poems:FILE"


def dataset_kind(dataset: str) -> str:
    """builtin | jsonl | saved | poems; ConfigError for anything else."""
    if dataset in BUILDERS:
        return "builtin"
    if dataset.startswith(POEM_PREFIX):
        return "poems"
    if dataset.endswith(".jsonl"):
        return "jsonl"
    if is_saved_dataset(Path(dataset).expanduser()):
        return "saved"
    if Path(dataset).expanduser().is_dir():
        raise ConfigError(f"dataset directory {dataset} is not a datasets save_to_disk directory "
                          "(no dataset_info.json)")
    raise ConfigError(f"unknown dataset {dataset!r}; choose one of {', '.join(BUILDERS)}, or {FILE_HELP}")


def _file_of(dataset: str) -> Path:
    raw = dataset[len(POEM_PREFIX):] if dataset.startswith(POEM_PREFIX) else dataset
    return Path(raw).expanduser()


def canonical_dataset(dataset: str) -> str:
    """Built-in names unchanged; file datasets as absolute paths, so one file is one run identity."""
    kind = dataset_kind(dataset)
    if kind == "builtin":
        return dataset
    path = str(_file_of(dataset).resolve())
    return POEM_PREFIX + path if kind == "poems" else path


def directions(dataset: str) -> tuple[str, ...]:
    return DATASET_DIRECTIONS[dataset] if dataset_kind(dataset) == "builtin" else FILE_DIRECTIONS


def check_dataset_direction(dataset: str, direction: str) -> None:
    allowed = directions(dataset)
    if direction not in allowed:
        raise ConfigError(f"direction {direction!r} does not fit dataset {dataset!r}; choose one of {', '.join(allowed)}")


def build_task(dataset: str, direction: str, data_dir: str | None = None, seed: int = 0,
               d2p_completions: str = "name") -> Task:
    """Build one dataset in one training direction.

    `seed` is the data-selection seed (Parent-Child subset, T-REx-style names), not the
    training seed, so that the three training seeds of Table 1 share one dataset.
    `d2p_completions`: "name" (bare names as D2P training answers) or "verbatim".
    File datasets are validated in full here (ConfigError, one line naming the row).
    """
    check_dataset_direction(dataset, direction)
    kind = dataset_kind(dataset)
    if kind == "builtin":
        return BUILDERS[dataset](direction, data_dir, seed, d2p_completions)
    path = _file_of(dataset)
    name = canonical_dataset(dataset)
    if kind == "poems":
        return build_poem_task(name, read_poems(path))
    rows = read_jsonl_pairs(path) if kind == "jsonl" else read_saved_pairs(path)
    return build_pairs_task(name, rows, str(path.resolve()))


def data_provenance(dataset: str, data_dir: str | None) -> dict:
    """sha256 of what the dataset reads: the Berglund et al. files, the user's file, or nothing (T-REx)."""
    kind = dataset_kind(dataset)
    if dataset == "trex":
        return {"root": None, "sha256": None, "files": {}, "note": "generated in code (data/trex.py)"}
    if kind == "builtin":
        return data_checksum(resolve_data_dir(data_dir))
    return {**path_checksum(_file_of(dataset)), "kind": kind}
