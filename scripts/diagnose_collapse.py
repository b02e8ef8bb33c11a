"""Why does the toy MDM collapse for some seeds? Measure it, and classify seeds by outcome.

    python scripts/diagnose_collapse.py train --init radd --seeds 0 1 2 3 --steps 300 --out DIR
    python scripts/diagnose_collapse.py classify RUN_DIR [RUN_DIR ...] --at 400 --out FILE.json
    python scripts/diagnose_collapse.py record DIR --out results/collapse_diagnostics_NAME.json

What each command measures and the classification rule: `toy_jax.collapse` (also `--help`).
Exit codes (`plumbing.cli`): 0 done, 1 failure, 2 bad arguments, 130 interrupted.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from toy_jax.collapse import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
