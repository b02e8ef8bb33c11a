"""Shared helpers for the largescale_torch tests (no tests here)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def find_data_dir() -> str | None:
    for cand in (os.environ.get("REVERSAL_CURSE_DATA"), str(REPO.parent / "shared" / "data" / "reversal_curse")):
        if cand and (Path(cand) / "data" / "celebrity_relations" / "parent_child_pairs.csv").is_file():
            return cand
    return None


@pytest.fixture(scope="session")
def data_dir() -> str:
    d = find_data_dir()
    if d is None:
        pytest.skip("Berglund et al. data not found (set REVERSAL_CURSE_DATA)")
    return d


def subprocess_env(data_dir: str) -> dict:
    env = dict(os.environ)
    env["REVERSAL_CURSE_DATA"] = data_dir
    env["OMP_NUM_THREADS"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    env.pop("WANDB_MODE", None)
    return env
