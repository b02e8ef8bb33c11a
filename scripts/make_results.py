"""Build the tables of RESULTS.md (and README.md's "What we measured") from the JSON files in results/.

    python scripts/make_results.py                 # rewrite the marked tables in RESULTS.md and README.md
    python scripts/make_results.py --check         # exit 1 if a marked table differs from what results/ gives
    python scripts/make_results.py --figures       # also draw the figures made from the GPU-run digest
    python scripts/make_results.py --record-rerun /tmp/xmachine_L10/table2.json \\
        --rerun-command "..." --rerun-commit 1309a87 --out results/xmachine_L10_amd_epyc.json
    python scripts/make_results.py --record-table2 runs/table2_quick_v3 \\
        --rerun-command "..." --rerun-commit feeb683 --out results/table2_quick_v3.json

How blocks are marked and filled: `toy_jax.results_docs`; the tables: `toy_jax.results_tables`.
Exit codes: 0 done, 1 a stale table (--check) or unusable results/, 2 bad arguments, 130 Ctrl-C.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from toy_jax.results_docs import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
