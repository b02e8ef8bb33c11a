"""Miniature Table 1 on a CPU: pretrain MDM and ARM on a background corpus, finetune on forward facts, ask in reverse.

    python scripts/mini_table1.py [--seeds 1 2 ... 8] [--workers 2] [--runs runs/mini_pretrained] \
        [--out results/mini_pretrained] [--data-dir DIR]

Writes OUT.md, OUT.json and OUT.png, and one run directory per model family, seed and dataset
under --runs (rerun the command to resume). The flags: `largescale_torch.mini.cli`; the
miniature: largescale_torch/mini/ and largescale_torch/README.md ("Miniature Table 1").
Exit codes: 0 done, 2 bad arguments, 1 runtime failure, 130 interrupted (Ctrl-C).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from largescale_torch.mini.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
