"""Shared helpers for the largescale_torch tests (no tests here).

The tests are hermetic: they pass the Berglund et al. data directory explicitly (the shared
checkout at `../shared/data/reversal_curse` from the repository root) or build tiny files,
and `tests/conftest.py` runs them with REVERSAL_CURSE_DATA unset and the network blocked.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "reversal_curse"
_MARKER = Path("data") / "celebrity_relations" / "parent_child_pairs.csv"
# Any outbound HTTP(S) of a subprocess goes to a closed local port and fails at once.
DEAD_PROXY = "http://127.0.0.1:9"


def find_data_dir() -> str | None:
    """The shared data checkout; never read from the environment."""
    return str(SHARED_DATA) if (SHARED_DATA / _MARKER).is_file() else None


@pytest.fixture(scope="session")
def data_dir() -> str:
    d = find_data_dir()
    if d is None:
        pytest.skip(f"Berglund et al. data not found at {SHARED_DATA}")
    return d


def subprocess_env(data_dir: str | None = None) -> dict:
    """Environment for CLI subprocesses: no data variable, hub offline, HTTP(S) to a dead proxy.

    The data directory is passed on the command line (`--data-dir`), never through the
    environment; `data_dir` is accepted for backwards compatibility and ignored.
    """
    env = dict(os.environ)
    env.pop("REVERSAL_CURSE_DATA", None)
    env["HF_HUB_OFFLINE"] = "1"
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[var] = DEAD_PROXY
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["OMP_NUM_THREADS"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    env.pop("WANDB_MODE", None)
    return env
