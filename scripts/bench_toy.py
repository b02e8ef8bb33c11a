"""Benchmark one training step of the toy MDM (paper config, L = 20) in JAX and in PyTorch.

    python scripts/bench_toy.py                      # JAX, torch.compile and eager torch
    python scripts/bench_toy.py --no-eager           # JAX and torch.compile only
    python scripts/bench_toy.py --no-torch --steps 10

JAX against the same step under torch.compile and as a plain eager PyTorch loop (identical
work: `toy_jax.bench` says what is matched and what cannot be); `--help` lists the flags.

Exit codes (`plumbing.cli`): 0 done, 1 failure, 2 bad arguments, 130 interrupted.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    """Parse the flags (`toy_jax.bench.build_parser`) and run the benchmark."""
    from toy_jax.bench import main as bench_main  # lazy: toy_jax.bench loads jax

    return bench_main(argv)


if __name__ == "__main__":
    sys.exit(main())
