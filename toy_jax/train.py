"""Train and evaluate the toy MDM and ARM (Section 4.3, Table 2).

    python toy_jax/train.py --L 20                  # paper preset (Table 8), both models
    python toy_jax/train.py --L 10 --preset quick --seed 0 1 2
"""
from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from plumbing.cli import OneLineParser as _Parser, UsageError, run_main  # noqa: E402
from toy_jax import configs as C  # noqa: E402
from toy_jax.cli import show_defaults  # noqa: E402
from toy_jax.configs import make_config  # noqa: E402
from toy_jax.records import reading  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
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
    returns their dests. Shared with scripts/toy_grid.py and scripts/study.py, which apply them to
    every variant of a grid (`experiments.Variant.under`)."""
    n_actions = len(p._actions)
    g = p.add_argument_group("model overrides (default: the preset's)")
    g.add_argument("--pos", choices=C.POS_CHOICES,
                   help="positions of every model: rope | learned | none (default: rope; the "
                        "quick preset gives the ARM learned positions)")
    g.add_argument("--heads", type=int, dest="n_heads", help="attention heads")
    g.add_argument("--d-model", "--hidden", type=int, dest="d_model", help="hidden size")
    g.add_argument("--dropout", type=float, help="dropout rate")
    g.add_argument("--init", choices=C.INIT_CHOICES,
                   help="standard (GPT-2's, the default) | radd (RADD's; some seeds collapse "
                        "at the paper preset)")
    g.add_argument("--rope-base", type=float, dest="rope_base", help="RoPE base (10000)")
    g.add_argument("--embed-init", choices=C.EMBED_INIT_CHOICES, dest="embed_init",
                   help="embeddings: radd U(+-1/sqrt d) | normal N(0, 1) | gpt2 N(0, 0.02) "
                        "(default: what --init says)")
    g.add_argument("--ln-bias", type=float, dest="ln_bias", metavar="VALUE",
                   help="initial bias of every LayerNorm (default: --init's, 1 radd, 0 standard)")
    g.add_argument("--precision", choices=C.PRECISION_CHOICES, dest="precision",
                   help="fp32 | bf16: bf16 matmuls, fp32 weights, optimizer, LayerNorm, softmax")
    g.add_argument("--vocab-size", type=int, dest="vocab_size", metavar="N",
                   help="output classes (>= 53): the toy's 53 symbols plus N - 53 that never "
                        "occur, e.g. 50257 = GPT-2's vocabulary (default: 53)")
    t = p.add_argument_group("training overrides (default: the preset's)")
    t.add_argument("--loss", choices=C.LOSS_CHOICES, dest="loss",
                   help="the MDM's loss: t_dce (t ~ U, weight 1/t; default) | lambda_dce "
                        "(RADD's: k ~ U{1..L} masked tokens, weight L/k)")
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


MODEL_OVERRIDES = ("pos", "n_heads", "d_model", "dropout", "init", "rope_base", "embed_init",
                   "ln_bias", "precision", "vocab_size")
TRAIN_OVERRIDES = ("loss", "steps", "batch_size", "lr", "warmup_steps", "grad_clip",
                   "weight_decay", "ema_decay", "t_eps", "t_sampler", "track_every", "log_every",
                   "ckpt_every")
EVAL_OVERRIDES = ("top_k", "eval_seed")


def override_dicts(args) -> tuple[dict, dict, dict]:
    """(model, train, eval) overrides of the flags of `add_override_flags` that were given."""
    pick = lambda names: {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    return pick(MODEL_OVERRIDES), pick(TRAIN_OVERRIDES), pick(EVAL_OVERRIDES)


def config_from_args(args):
    mo, to, eo = override_dicts(args)
    return make_config(
        L=args.L, preset=args.preset, model=args.model, seeds=tuple(args.seed),
        attention=args.attention, objective=args.objective,
        model_overrides=mo, train_overrides=to, eval_overrides=eo)


SUMMARY_READINGS = (("infill", "infill"), ("completion", "compl."), ("infill_letter", "letter"))


def _cells(r: dict) -> list[str]:
    """'top-3 / greedy' in percent for every direction and reading of one weight set."""
    out = []
    for d in ("forward", "reverse"):
        for proto, _ in SUMMARY_READINGS:
            m = r[d].get(proto)
            out.append(f"{100 * m['topk_success']:5.1f}/{100 * m['greedy_acc']:5.1f}"
                       if m else f"{'-':>11}")
    let = r["reverse"].get("infill_letter")
    out.append(f"{let['rank']:5.2f}" if let else "    -")
    return out


def summary(results: dict) -> str:
    """The run's final printout: per model and seed, forward and reverse in each reading (in
    percent, headline weights), the seed means, and one line for every seed that did not learn
    the forward rule (`evaluate.forward_status`: forward completion top-3 success below
    LEARNED_AT), whose reverse numbers then say nothing about reverse inference."""
    from toy_jax.evaluate import COLLAPSE_BELOW, LEARNED_AT, forward_status  # lazy: loads jax

    head = ["model", "seed"] + [f"{d} {short}" for d in ("fwd", "rev")
                                for _, short in SUMMARY_READINGS] + ["rev rank", "forward rule"]
    widths = [5, 4] + [11] * 6 + [8, 12]
    fmt = lambda cells: "  ".join(f"{c:>{w}}" if i > 1 else f"{c:<{w}}"
                                  for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    hl = results["headline"]
    lines = ["Toy results in %, each cell top-3 sampling success / greedy accuracy; weights: "
             + ", ".join(f"{n} {'EMA' if w == 'ema' else 'raw'}" for n, w in hl.items()) + ".",
             fmt(head)]
    flags = []
    for name, w in hl.items():
        rows = {}
        for seed in results["seeds"]:
            r = reading(results, seed, name, w)
            fwd = r["forward"]["completion"]["topk_success"]
            status = forward_status(fwd)
            rows[seed] = (r, status)
            lines.append(fmt([name, str(seed)] + _cells(r) + [status]))
            if status == "collapsed":
                flags.append(
                    f"WARNING: {name} seed {seed} did NOT learn the forward rule (forward "
                    f"completion {100 * fwd:.1f} % < {100 * COLLAPSE_BELOW:.0f} %: collapsed, or "
                    "too few steps), so its reverse numbers measure nothing about reverse "
                    "inference. Leave it out of the reverse comparison, or train it longer or "
                    "with another seed / --init.")
            elif status == "partial":
                flags.append(
                    f"NOTE: {name} seed {seed} learned the forward rule only partly (forward "
                    f"completion {100 * fwd:.1f} %, below {100 * LEARNED_AT:.0f} %); read its "
                    "reverse numbers with care.")
        if len(rows) > 1:
            lines.append(fmt([name, "mean"] + _cells(_mean([r for r, _ in rows.values()]))))
            learned = [r for r, st in rows.values() if st == "learned"]
            if 0 < len(learned) < len(rows):
                lines.append(fmt([name, "mean"] + _cells(_mean(learned))
                                 + [f"{len(learned)} learned"]))
    lines += textwrap.wrap(
        "Readings: infill = the [M] filled among all 53 outputs (pad '0' included); compl. = "
        "the partner generated after the cue; letter = infill with '0' excluded (which letter "
        "goes at the [M]; Figure 5). rev rank = the reverse target's mean rank among the 52 "
        "letters (1 = first).", 100)
    if flags:
        lines += [w for f in flags for w in textwrap.wrap(f, 100, subsequent_indent="  ")]
    else:
        lines.append(f"Every seed of every model learned the forward rule (forward completion "
                     f">= {100 * LEARNED_AT:.0f} %).")
    return "\n".join(lines)


def _mean(trees: list):
    """Element-wise mean of identically shaped nested dicts of floats."""
    if isinstance(trees[0], dict):
        return {k: _mean([t[k] for t in trees]) for k in trees[0] if all(k in t for t in trees)}
    return sum(trees) / len(trees)


def main(argv=None) -> int:
    """Exit codes (`plumbing.cli`): 0 done, 1 runtime failure, 2 bad arguments or config,
    130 interrupted (rerunning the same command resumes from the last checkpoint)."""
    return run_main("train.py", _main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ValueError as e:
        raise UsageError(str(e)) from e
    logging.getLogger("absl").setLevel(logging.WARNING)
    from toy_jax.checkpoint import resume_note  # lazy (with rundir): orbax and jax after the flags
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
    print(run_figures(out))
    return 0


def run_figures(out: Path) -> str:
    """Draw the run's figures into OUT/figures (from the run's files); the line to print.
    The figures are extras: a failure to draw them is reported, not raised."""
    try:
        from toy_jax.plots import write_run_figures

        paths = write_run_figures(out)
    except (ValueError, OSError, ImportError, RuntimeError) as e:
        return f"figures: not written ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
    return "figures: " + (", ".join(paths) if paths else "none (nothing tracked)")


if __name__ == "__main__":
    sys.exit(main())
