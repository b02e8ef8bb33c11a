"""Table 2 of the paper with seeds: L x {MDM, ARM} x seeds, mean ± s.e.m. beside the paper.

    python scripts/reproduce_table2.py --preset quick                  # whole table, CPU
    python scripts/reproduce_table2.py --preset paper --L 10 20         # Table 8 settings

One resumable run directory per L under --out; the table (and a .json beside it) is rewritten
after every L. What is run and read: `toy_jax.table2` (also `--help`).
Exit codes (`toy_jax.cli`): 0 done, 1 failure, 2 bad arguments or config, 130 interrupted.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from toy_jax.table2 import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
