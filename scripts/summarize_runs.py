"""Per-seed summary of toy run directories as a markdown table (reads only results.json / metrics.jsonl).

    python scripts/summarize_runs.py runs/paper_L20_s0 runs/other_run [--out table.md]

The columns: `toy_jax.summarize`. Exit codes: 0 done, 1 a malformed results.json or an
unwritable --out, 2 bad arguments (a run without results.json), 130 interrupted.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from toy_jax.summarize import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
