"""Miniature Table 1 on a CPU: pretrain MDM and ARM on a background corpus, finetune on forward facts, ask in reverse.

    python scripts/mini_table1.py [--seeds 1 2 ... 8] [--workers 2] [--runs runs/mini_pretrained] \
        [--out results/mini_pretrained] [--data-dir DIR]

Writes OUT.md (exact match beside the paper's Table 1, entity ranks with chance, positive control,
Figure 7 controls), OUT.json (per-seed records, config, provenance, wall time) and OUT.png, and one
run directory per model family, seed and dataset under --runs (rerun the command to resume).
`--pretrain-steps 0` skips stage 1 (the earlier from-scratch SFT-only miniature).
See largescale_torch/mini/ and largescale_torch/README.md ("Miniature Table 1").
Exit codes: 0 done, 2 bad arguments, 1 runtime failure, 130 interrupted (Ctrl-C).
"""
# The command line of the miniature: scripts/mini_table1.py only calls `main`; the stages are
# largescale_torch.mini.run, the report largescale_torch.mini.report.
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from largescale_torch.constants import ConfigError
from largescale_torch.mini.run import FAMILIES, MiniConfig, run_mini
from plumbing.cli import EXIT_FAILURE, EXIT_USAGE, FAILURES, OneLineParser, fail, interrupted
from plumbing.io import write_json, write_text

INT_FIELDS = ("n_pairs", "hidden", "layers", "heads", "mentions", "pretrain_steps", "pretrain_batch", "seq_len",
              "epochs", "batch_size", "evals")


def build_parser() -> OneLineParser:
    d = MiniConfig()
    p = OneLineParser(prog="python scripts/mini_table1.py", description=__doc__.splitlines()[0])
    p.add_argument("--runs", default="runs/mini_pretrained", help="root of the run directories")
    p.add_argument("--out", default="results/mini_pretrained", help="writes OUT.md, OUT.json and OUT.png")
    p.add_argument("--data-dir", default=None, help="Berglund et al. data (default: $REVERSAL_CURSE_DATA)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(d.seeds), help="initialisation and training seeds")
    p.add_argument("--families", nargs="+", default=list(d.families), help=f"any of {', '.join(FAMILIES)}")
    p.add_argument("--datasets", nargs="+", default=list(d.datasets), help="any of the three datasets")
    for name in INT_FIELDS:
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name),
                       help=f"MiniConfig.{name} (default {getattr(d, name)})")
    p.add_argument("--lr", type=float, default=d.lr, help="finetuning AdamW learning rate")
    p.add_argument("--pretrain-lr", type=float, default=d.pretrain_lr, help="pretraining AdamW learning rate")
    p.add_argument("--rope-theta", type=float, default=d.rope_theta, help="RoPE base")
    p.add_argument("--finetune-objective", default=d.finetune_objective, help="sft (the paper's) or pretrain "
                   "(each model's pretraining loss over prompt + answer)")
    p.add_argument("--workers", type=int, default=2, help="worker processes")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per worker process")
    p.add_argument("--render-only", action="store_true", help="redraw OUT.md and OUT.png from OUT.json")
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    try:
        cfg = MiniConfig(**{k: getattr(args, k) for k in INT_FIELDS}, ffn=4 * args.hidden, lr=args.lr,
                         pretrain_lr=args.pretrain_lr, rope_theta=args.rope_theta,
                         finetune_objective=args.finetune_objective, seeds=tuple(args.seeds),
                         families=tuple(args.families), datasets=tuple(args.datasets))
        cfg.validate()
        if args.workers < 1 or args.threads < 1:
            raise ConfigError(f"--workers and --threads must be >= 1, got {args.workers} and {args.threads}")
        out = Path(args.out)
        if not out.parent.is_dir():
            raise ConfigError(f"{out.parent} does not exist")
    except ConfigError as err:
        return fail(p.prog, err, EXIT_USAGE)
    from largescale_torch.mini.report import plot, render_markdown  # lazy: report loads numpy

    command = "python scripts/mini_table1.py " + " ".join(map(shlex.quote, sys.argv[1:] if argv is None else argv))
    try:
        if args.render_only:
            result = json.loads(out.with_name(out.name + ".json").read_text())
            missing = [k for k in ("tasks", "config", "provenance") if k not in result]
            if missing:
                raise ConfigError(f"{out.name}.json has no {', '.join(missing)}: written by an older "
                                  "version of the miniature; rerun it to render it")
        else:
            result = run_mini(cfg, args.runs, args.data_dir, args.workers, progress=True, threads=args.threads)
            result["command"] = command.strip()
        md = render_markdown(result)
        write_json(out.with_name(out.name + ".json"), result, indent=1)
        write_text(out.with_name(out.name + ".md"), md + "\n")
        plot(result, out.with_name(out.name + ".png"))
    except KeyboardInterrupt:
        return interrupted(p.prog, "rerun the same command to resume")
    except (*FAILURES, KeyError) as err:
        return fail(p.prog, err, EXIT_USAGE if isinstance(err, ConfigError) else EXIT_FAILURE)
    print(md)
    return 0

