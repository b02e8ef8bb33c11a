"""Train and evaluate the toy MDM and ARM (Section 4.3, Table 2).

    python toy_jax/train.py --L 20                  # paper preset (Table 8), both models
    python toy_jax/train.py --L 10 --preset quick --seed 0 1 2
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from toy_jax.cli import (OneLineParser as _Parser, UsageError, run_main,  # noqa: E402
                         show_defaults)


def build_parser() -> argparse.ArgumentParser:
    from toy_jax import configs as C

    p = _Parser(prog="train.py", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--L", type=int, default=20, help="sequence length (>= 2; default 20)")
    p.add_argument("--model", choices=C.MODEL_CHOICES, default="both",
                   help="mdm (full attention + L_MDM), arm (causal + next-token CE) or both")
    p.add_argument("--preset", choices=C.PRESET_CHOICES, default="paper",
                   help="paper = Table 8; quick = small model, few steps (default paper)")
    p.add_argument("--seed", type=int, nargs="+", default=[0],
                   help="one or more seeds, trained together in one vmapped program")
    p.add_argument("--out", type=Path, default=None,
                   help="run directory (default runs/toy_L<L>_<preset>); rerun to resume")
    p.add_argument("--attention", choices=C.ATTENTION_CHOICES, default=None,
                   help="override the mask of the selected model(s) (ablation)")
    p.add_argument("--objective", choices=C.OBJECTIVE_CHOICES, default=None,
                   help="override the loss of the selected model(s) (ablation)")
    overrides = add_override_flags(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return show_defaults(p, {n: C.make_config(preset=n) for n in C.PRESET_CHOICES}, overrides)


def add_override_flags(p: argparse.ArgumentParser) -> list[str]:
    """The model / training / evaluation override flags (default None = the preset's value);
    returns their dests. Shared with scripts/sweep.py, which applies them to every variant."""
    from toy_jax import configs as C

    n_actions = len(p._actions)
    g = p.add_argument_group("model overrides (default: the preset's)")
    g.add_argument("--pos", choices=C.POS_CHOICES, help="positions: rope | learned | none")
    g.add_argument("--heads", type=int, dest="n_heads", help="attention heads")
    g.add_argument("--d-model", "--hidden", type=int, dest="d_model", help="hidden size")
    g.add_argument("--dropout", type=float, help="dropout rate")
    g.add_argument("--init", choices=C.INIT_CHOICES, help="radd (RADD's init) | standard (GPT-2)")
    g.add_argument("--rope-base", type=float, dest="rope_base", help="RoPE base (10000)")
    g.add_argument("--embed-init", choices=C.EMBED_INIT_CHOICES, dest="embed_init",
                   help="embeddings: radd U(+-1/sqrt d) | normal N(0, 1) | gpt2 N(0, 0.02) "
                        "(default: what --init says)")
    g.add_argument("--ln-bias", type=float, dest="ln_bias", metavar="VALUE",
                   help="initial bias of every LayerNorm (default: --init's, 1 radd, 0 standard)")
    t = p.add_argument_group("training overrides (default: the preset's)")
    t.add_argument("--steps", type=int, help="training steps")
    t.add_argument("--batch-size", type=int, dest="batch_size")
    t.add_argument("--lr", type=float)
    t.add_argument("--warmup", type=int, dest="warmup_steps", help="linear warm-up steps")
    t.add_argument("--grad-clip", type=float, dest="grad_clip")
    t.add_argument("--weight-decay", type=float, dest="weight_decay")
    t.add_argument("--ema-decay", type=float, dest="ema_decay")
    t.add_argument("--t-eps", type=float, dest="t_eps", help="t = t_eps + (1 - t_eps) u")
    t.add_argument("--t-sampler", choices=C.T_SAMPLER_CHOICES, dest="t_sampler",
                   help="iid (default) | stratified: RADD's low-discrepancy t, one u0 per batch")
    t.add_argument("--track-every", type=int, dest="track_every",
                   help="attention/infill tracking every N steps (0 = off)")
    t.add_argument("--log-every", type=int, dest="log_every",
                   help="metrics every N steps when tracking is off")
    t.add_argument("--ckpt-every", type=int, dest="ckpt_every", help="checkpoint every N steps")
    e = p.add_argument_group("evaluation")
    e.add_argument("--top-k", type=int, dest="top_k", help="top-k sampling k (default 3)")
    e.add_argument("--eval-seed", type=int, dest="eval_seed", help="evaluation seed")
    return [a.dest for a in p._actions[n_actions:]]


def config_from_args(args):
    from toy_jax.configs import make_config

    pick = lambda names: {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    return make_config(
        L=args.L, preset=args.preset, model=args.model, seeds=tuple(args.seed),
        attention=args.attention, objective=args.objective,
        model_overrides=pick(["pos", "n_heads", "d_model", "dropout", "init", "rope_base",
                              "embed_init", "ln_bias"]),
        train_overrides=pick(["steps", "batch_size", "lr", "warmup_steps", "grad_clip",
                              "weight_decay", "ema_decay", "t_eps", "t_sampler", "track_every",
                              "log_every", "ckpt_every"]),
        eval_overrides=pick(["top_k", "eval_seed"]))


def summary(results: dict) -> str:
    lines = []
    for name, r in results["models"].items():
        w = results["headline"][name]
        rr = r["ema"] if w == "ema" else r
        f, v = rr["forward"], rr["reverse"]
        lines.append(f"{name} ({w} weights): forward infill {f['infill']['topk_success']:.3f} "
                     f"completion {f['completion']['topk_success']:.3f} | reverse infill "
                     f"{v['infill']['topk_success']:.3f} completion "
                     f"{v['completion']['topk_success']:.3f}  (top-3 success)")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Exit codes (`toy_jax.cli`): 0 done, 1 runtime failure, 2 bad arguments or config,
    130 interrupted (rerunning the same command resumes from the last checkpoint)."""
    return run_main("train.py", _main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ValueError as e:
        raise UsageError(str(e)) from e
    import logging

    logging.getLogger("absl").setLevel(logging.WARNING)
    from toy_jax.checkpoint import resume_note
    from toy_jax.rundir import RunDirError, run_experiment

    out = args.out or Path("runs") / f"toy_L{cfg.L}_{cfg.preset}"
    try:
        results = run_experiment(cfg, out, progress=not args.no_progress)
    except RunDirError as e:  # another run's --out
        raise UsageError(str(e)) from e
    except KeyboardInterrupt:
        raise KeyboardInterrupt(resume_note(out, [m.name for m in cfg.models],
                                            min(cfg.train.ckpt_every, cfg.train.steps))) from None
    print(summary(results))
    print(f"results: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
