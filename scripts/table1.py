"""Collect finetune.py run directories into Table 1 (mean +- s.e.m. over seeds beside the paper).

    python scripts/table1.py [ROOT_OR_RUN_DIR ...] [--final] [--metric exact|prefix] [--out table1.md]

Every directory below the given paths holding a results.json is one run. How runs, base-model
and poem evaluations are grouped and shown: `largescale_torch.table1`.
Exit codes: 0 done, 2 bad arguments, 1 unreadable or missing runs, 130 interrupted.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from largescale_torch.table1 import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
