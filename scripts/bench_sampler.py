"""Time LLaDA's sampler: exact vs confidence-threshold decoding (and prefix cache), batched vs one at a time.

    python scripts/bench_sampler.py [--run DIR] [--taus 0.9 0.7 0.5] [--out results/bench_decoding_trex] [--threads 1]
    python scripts/bench_sampler.py --loop [--queries 64] [--batch-size 64]

What is timed and written: `largescale_torch.bench_sampler` and largescale_torch/bench.py.
Exit codes: 0 done, 2 bad arguments, 1 runtime failure, 130 interrupted.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from largescale_torch.bench_sampler import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
