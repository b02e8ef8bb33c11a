"""Ablations that test the paper's account of reverse inference (RoPE-coupled attention).

    python scripts/ablations.py                         # quick preset, L = 10 20, seeds 0 1 2
    python scripts/ablations.py --baselines-from runs/table2_quick   # reuse Table 2's runs

The variants and the table: `toy_jax.ablations` (also `--help`).
Exit codes (`toy_jax.cli`): 0 done, 1 failure, 2 bad arguments or config, 130 interrupted.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from toy_jax.ablations import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
