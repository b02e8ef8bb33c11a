"""Time LLaDA's sampler: exact vs confidence-threshold decoding (and prefix cache), batched vs one at a time.

    python scripts/bench_sampler.py [--run DIR] [--taus 0.9 0.7 0.5] [--out results/bench_decoding_trex] [--threads 1]
    python scripts/bench_sampler.py --loop [--queries 64] [--batch-size 64]

Default: the decoding table (wall time, forward passes per query, agreement with the exact
sampler's answers, exact match and its change) on the same queries, for the exact sampler
(the paper's: 32 positions, 32 steps, one block), threshold decoding per tau, and threshold +
prefix cache per tau. `--run DIR` takes a trained MDM run directory (e.g.
`runs/mini_table1/llada/seed1` from scripts/mini_table1.py: its forward and reverse evaluation
sets); without it, tiny-llada with random weights on Parent-Child. `--out OUT` writes OUT.json
and OUT.md. `--loop` adds the batched-vs-one-at-a-time comparison of the exact sampler.
See largescale_torch/bench.py. Exit codes: 0 done, 2 bad arguments, 1 runtime failure, 130 interrupted.
"""
# The command line of scripts/bench_sampler.py (which only calls `main`); the timing, loading
# and rendering are largescale_torch.bench.
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from largescale_torch.cli import main_interruptible
from largescale_torch.constants import EXIT_BAD_ARGS, EXIT_FAILURE, ConfigError


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python scripts/bench_sampler.py", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--run", default=None, help="trained MDM run directory (default: tiny-llada, random weights)")
    p.add_argument("--weights", default="final", choices=("final", "best_forward", "best_reverse"),
                   help="which saved weights of --run")
    p.add_argument("--taus", type=float, nargs="+", default=[0.9, 0.7, 0.5], help="confidence thresholds")
    p.add_argument("--no-cache", action="store_true", help="leave out the threshold + prefix cache rows")
    p.add_argument("--repeats", type=_positive, default=3, help="timed runs per variant (the best is kept)")
    p.add_argument("--loop", action="store_true", help="also time the batched sampler against batch 1")
    p.add_argument("--queries", type=_positive, default=64,
                   help="tiny-llada: queries per direction; --loop: reverse queries it decodes")
    p.add_argument("--batch-size", type=_positive, default=None,
                   help="queries per sampler call (default: the run's eval batch size; tiny-llada 64)")
    p.add_argument("--threads", type=_positive, default=1, help="torch CPU threads (shared machines: keep 1)")
    p.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    p.add_argument("--data-dir", default=None,
                   help="Berglund et al. data (default: $REVERSAL_CURSE_DATA, else download at a pinned commit)")
    return p


def main(argv=None) -> int:
    return main_interruptible(_main, argv)


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)  # exits 2 on bad flags
    import torch

    from largescale_torch import bench  # lazy (with evaluation): they load torch
    from largescale_torch.evaluation import EvalConfig

    torch.set_num_threads(args.threads)
    try:
        if any(not (t > 0) for t in args.taus):
            raise ConfigError(f"--taus must be > 0, got {args.taus}")
        if args.out and not Path(args.out).parent.is_dir():
            raise ConfigError(f"{Path(args.out).parent} does not exist")
        loaded = (bench.load_run(args.run, args.weights, args.data_dir) if args.run
                  else bench.load_tiny(args.queries, args.data_dir))
        model, tok, ids, forward, reverse, batch_size, chat = loaded
        base = EvalConfig(batch_size=args.batch_size or batch_size, chat_template=chat)
        rows = bench.bench_decoding(model, tok, ids, forward, reverse, base, args.taus, args.repeats,
                                    cache=not args.no_cache)
        batching = bench.bench_batching(model, tok, ids, reverse[: args.queries], base) if args.loop else None
    except ConfigError as err:
        print(f"error: {err}".splitlines()[0], file=sys.stderr)
        return EXIT_BAD_ARGS
    except (ValueError, OSError, RuntimeError) as err:
        print(f"error: {err}".splitlines()[0], file=sys.stderr)
        return EXIT_FAILURE
    command = "python scripts/bench_sampler.py " + " ".join(map(shlex.quote, sys.argv[1:] if argv is None else argv))
    result = {"model": args.run or "tiny-llada (random weights)", "weights": args.weights if args.run else None,
              "run_commit": bench.run_commit(args.run) if args.run else None,
              "queries": len(forward) + len(reverse), "n_forward": len(forward), "n_reverse": len(reverse),
              "batch_size": base.batch_size, "gen_length": base.gen_length, "block_length": base.block_length,
              "steps": base.steps, "repeats": args.repeats, "rows": rows, "batching": batching,
              "provenance": bench.provenance(), "command": command.strip()}
    md = bench.render_markdown(result)
    if args.out:
        out = Path(args.out)
        out.with_name(out.name + ".json").write_text(json.dumps(result, indent=2) + "\n")
        out.with_name(out.name + ".md").write_text(md)
    print(md)
    return 0

