"""Figures 5, 6 and 9 (and the assumption check) from toy run directories only.

    python scripts/make_figures.py              # every run under runs/ -> runs/figures/
    python scripts/make_figures.py --runs runs/paper_L20_s0 runs/paper_L10_s0_6000
    python scripts/make_figures.py --runs RUN ... --extra-runs runs/study_quick/mdm_learned/L20

The figures, analysis.json and analysis.md it writes: `toy_jax.figures` (also `--help`).
Exit codes (`plumbing.cli`): 0 done, 1 failure (no run found), 2 bad arguments, 130 interrupted.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from toy_jax.figures import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
