"""Miniature Table 1 on a CPU: small MDM and ARM trained from scratch, forward and reverse, over seeds.

    python scripts/mini_table1.py [--runs runs/mini_table1] [--out results/mini_table1] [--threads 1]

Writes OUT.md (the table), OUT.json (per-seed results, config, wall and CPU time) and OUT.png
(forward / reverse exact match over epochs), and one `finetune.py`-style run directory per
model and seed under --runs. See largescale_torch/mini.py and largescale_torch/README.md.
Exit codes: 0 done, 2 bad arguments, 1 runtime failure, 130 interrupted (Ctrl-C; rerun to resume).
"""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from largescale_torch.analyze import OneLineParser
from largescale_torch.constants import EXIT_BAD_ARGS, EXIT_FAILURE, EXIT_INTERRUPTED
from largescale_torch.mini import FAMILIES, MiniConfig


def build_parser() -> OneLineParser:
    d = MiniConfig()
    p = OneLineParser(prog="python scripts/mini_table1.py", description=__doc__.splitlines()[0])
    p.add_argument("--runs", default="runs/mini_table1", help="root of the run directories")
    p.add_argument("--out", default="results/mini_table1", help="writes OUT.md, OUT.json and OUT.png")
    p.add_argument("--seeds", type=int, nargs="+", default=list(d.seeds), help="training and initialisation seeds")
    p.add_argument("--families", nargs="+", default=list(d.families), help=f"any of {', '.join(FAMILIES)} "
                   "(llada: the bidirectional MDM, llama: the causal ARM)")
    p.add_argument("--n-pairs", type=int, default=d.n_pairs, help="T-REx-style pairs (5 phrasings each)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="training epochs")
    p.add_argument("--lr", type=float, default=d.lr, help="AdamW learning rate (every weight trained)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="examples per step")
    p.add_argument("--eval-every", type=int, default=d.eval_every, help="epochs between evaluations")
    p.add_argument("--hidden", type=int, default=d.hidden, help="model width")
    p.add_argument("--layers", type=int, default=d.layers, help="transformer blocks")
    p.add_argument("--mdm-pad-to", default=d.mdm_pad_to, choices=("gen_length", "batch"),
                   help="MDM answer padding with EOS: to the sampler's 32 positions, or to the longest answer "
                        "of the mini-batch (LLaDA's guideline for its pretrained model)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--render-only", action="store_true",
                   help="redraw OUT.md and OUT.png from an existing OUT.json and its run directories (no training)")
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    cfg = MiniConfig(n_pairs=args.n_pairs, hidden=args.hidden, layers=args.layers, ffn=4 * args.hidden,
                     epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, eval_every=args.eval_every,
                     seeds=tuple(args.seeds), families=tuple(args.families), mdm_pad_to=args.mdm_pad_to)
    try:
        cfg.validate()
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        out = Path(args.out)
        if not out.parent.is_dir():
            raise ValueError(f"{out.parent} does not exist")
    except ValueError as err:
        print(f"{p.prog}: error: {err}".splitlines()[0], file=sys.stderr)
        return EXIT_BAD_ARGS
    import torch

    from largescale_torch.constants import ConfigError
    from largescale_torch.mini import plot_curves, render_markdown, reverse_answers, run_mini

    torch.set_num_threads(args.threads)
    command = "python scripts/mini_table1.py " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    try:
        if args.render_only:
            result = json.loads(out.with_name(out.name + ".json").read_text())
            for r in result["runs"]:
                r.setdefault("reverse_final_answers", reverse_answers(r["run_dir"]))
        else:
            result = run_mini(cfg, args.runs, progress=True)
            result["command"] = command.strip()
        md = render_markdown(result, result["command"])
        for suffix, text in ((".json", json.dumps(result, indent=2)), (".md", md)):
            tmp = out.with_name(out.name + suffix + ".tmp")
            tmp.write_text(text + "\n")
            tmp.replace(out.with_name(out.name + suffix))
        plot_curves(result, out.with_name(out.name + ".png"))
    except KeyboardInterrupt:
        print(f"{p.prog}: interrupted; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ConfigError as err:
        print(f"{p.prog}: error: {err}".splitlines()[0], file=sys.stderr)
        return EXIT_BAD_ARGS
    except (ValueError, OSError, RuntimeError, FloatingPointError, KeyError) as err:
        print(f"{p.prog}: error: {err}".splitlines()[0], file=sys.stderr)
        return EXIT_FAILURE
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
