"""Time the batched LLaDA sampler against a one-query-at-a-time loop on tiny-llada.

    python scripts/bench_sampler.py [--queries 64] [--batch-size 64] [--threads 1]

Both paths decode the same reverse queries of Parent-Child with the paper's settings
(gen length 32, block 32, 32 steps, temperature 0); the one-at-a-time loop is the same sampler
with batch 1. Answers agree except where the random toy model's confidences nearly tie.
Exit codes: 0 done, 2 bad arguments, 1 runtime failure (e.g. data not found), 130 interrupted.
"""
from __future__ import annotations

import argparse
import sys
import time


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
    p.add_argument("--queries", type=_positive, default=64,
                   help="number of Parent-Child reverse queries decoded by both paths")
    p.add_argument("--batch-size", type=_positive, default=64,
                   help="queries per batched sampler call (the one-at-a-time path always uses 1)")
    p.add_argument("--threads", type=_positive, default=1, help="torch CPU threads (shared machines: keep 1)")
    p.add_argument("--data-dir", default=None,
                   help="Berglund et al. data (default: $REVERSAL_CURSE_DATA, else download at a pinned commit)")
    return p


def main(argv=None) -> int:
    from largescale_torch.constants import EXIT_INTERRUPTED

    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)  # exits 2 on bad flags
    import torch

    from largescale_torch.constants import EXIT_BAD_ARGS, EXIT_FAILURE, ConfigError

    from largescale_torch.batching import encode
    from largescale_torch.data import build_task
    from largescale_torch.generation import mdm_generate
    from largescale_torch.modeling import load_base, resolve_model

    torch.set_num_threads(args.threads)
    try:
        task = build_task("parent_child", "p2c", data_dir=args.data_dir)
        spec = resolve_model("tiny-llada", args.data_dir)
        model, tok, ids = load_base(spec, torch.float32)
    except ConfigError as err:
        print(f"error: {err}".splitlines()[0], file=sys.stderr)
        return EXIT_BAD_ARGS
    except (ValueError, OSError) as err:
        print(f"error: {err}".splitlines()[0], file=sys.stderr)
        return EXIT_FAILURE
    prompts = [list(encode(tok, e.prompt, e.target).prompt) for e in task.reverse[: args.queries]]
    mdm_generate(model, prompts[:2], ids)  # warm-up
    t0 = time.perf_counter()
    batched = []
    for s in range(0, len(prompts), args.batch_size):
        batched += mdm_generate(model, prompts[s: s + args.batch_size], ids)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = [mdm_generate(model, [q], ids)[0] for q in prompts]
    t_single = time.perf_counter() - t0
    same = sum(a == b for a, b in zip(batched, single))
    print(f"queries {len(prompts)}, batch {args.batch_size}, threads {args.threads}")
    print(f"batched: {t_batched:.2f} s ({len(prompts) / t_batched:.1f} queries/s)")
    print(f"one at a time: {t_single:.2f} s ({len(prompts) / t_single:.1f} queries/s)")
    print(f"speed-up: {t_single / t_batched:.1f}x; identical answers: {same}/{len(prompts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
