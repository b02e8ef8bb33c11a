"""Digest of the paper-preset GPU run directories into small JSON files under results/.

    python scripts/digest_shared_runs.py --runs ../shared/runs/h200-2026-11-28 --out results/h200_2026-11-28.json

Writes `--out` (per-seed end-of-training numbers, forward status, tracked peaks, provenance with
the SHA-256 of every file read) and `<out stem>_curves.json` (tracked metrics over training);
what is read and written: `toy_jax.shared_runs`. `scripts/make_results.py` builds RESULTS.md
from these files. Exit codes: 0 done, 1 an unusable run directory, 2 bad arguments, 130 Ctrl-C.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from toy_jax.shared_runs import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
