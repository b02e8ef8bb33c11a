"""A grid of toy variants x seeds x L: which settings collapse, how long reverse inference lasts.

    python scripts/sweep.py --preset quick --L 10 --seeds 0 1 2 3 \\
        --variant "base=" --variant "std=--init standard" --variant "emb1=--embed-init normal" \\
        --out runs/sweep_quick
    python scripts/sweep.py --preset paper --L 20 --seeds 0 1 2 3 4 5 6 7 --variant "base=" \\
        --variant "vdm=--t-sampler stratified" --out runs/sweep_paper --dry-run

One resumable run directory per (variant, L) under --out, and OUT/summary.{json,md} with
OUT/reverse_curves.png rewritten after every run; `--dry-run` estimates the time. The grid,
the summary and the estimate: `toy_jax.sweep` (also `--help`).
Exit codes: 0 done, 1 failure, 2 bad arguments or grid, 130 interrupted (rerun to resume).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from toy_jax.sweep import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
