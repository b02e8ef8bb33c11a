"""Ablations that test the paper's account of reverse inference (RoPE-coupled attention).

    python scripts/ablations.py                         # quick preset, L = 10 20, seeds 0 1 2
    python scripts/ablations.py --baselines-from runs/table2_quick   # reuse Table 2's runs

Variants (each trained with all seeds in one vmapped program, one run directory each; the
project's default initialisation, GPT-2's, but mdm_raddinit):
  mdm            baseline MDM: full attention, L_MDM, RoPE
  arm            baseline ARM: causal mask, next-token loss, RoPE
  mdm_learned    MDM with learned absolute positions instead of RoPE
  mdm_nopos      MDM without any position information
  mdm_causal     the L_MDM objective on the causal decoder (only the mask changes)
  arm_learned    ARM with learned absolute positions (the paper's GPT-2 used them)
  mdm_raddinit   MDM with RADD's initialisation (collapses some seeds at the paper preset)
Forward and reverse top-3 success are reported for both protocols, with the headline weights
of each objective (EMA for L_MDM, raw for next-token) and the other weights beside.
"""
# The logic of scripts/ablations.py (which only calls `main`); the docstring above is its
# --help text.
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from toy_jax.cli import OneLineParser as _Parser, run_main
from toy_jax.table2 import add_override_flags, finished_or_run, overrides, run_and_print

PROG = "ablations.py"
# name -> (model, attention override, model-config overrides, description)
VARIANTS = {
    "mdm": ("mdm", None, {}, "MDM (RoPE) [baseline]"),
    "arm": ("arm", None, {}, "ARM (RoPE) [baseline]"),
    "mdm_learned": ("mdm", None, {"pos": "learned"}, "MDM, learned positions"),
    "mdm_nopos": ("mdm", None, {"pos": "none"}, "MDM, no positions"),
    "mdm_causal": ("mdm", "causal", {}, "MDM objective on the causal decoder"),
    "arm_learned": ("arm", None, {"pos": "learned"}, "ARM, learned positions"),
    "mdm_raddinit": ("mdm", None, {"init": "radd"}, "MDM, RADD init"),
}
BASELINES = ("mdm", "arm")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=("quick", "paper"), default="quick",
                   help="quick (default) or paper")
    p.add_argument("--L", type=int, nargs="+", default=[10, 20], help="default 10 20")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="default 0 1 2")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), metavar="NAME",
                   help="subset of: " + " ".join(VARIANTS))
    p.add_argument("--out", type=Path, default=None,
                   help="runs directory (default runs/ablations_<preset>)")
    p.add_argument("--table", type=Path, default=None,
                   help="markdown table (default <out>/ablations.md; a .json lies beside it)")
    p.add_argument("--baselines-from", type=Path, default=None, dest="baselines_from",
                   help="a reproduce_table2.py --out directory whose L<L>/ runs (same preset, "
                        "seeds and overrides) serve as the mdm / arm baselines")
    add_override_flags(p)
    return p


def variant_config(name: str, L: int, preset: str, seeds, model_overrides: dict,
                   train_overrides: dict, both: bool = False):
    from toy_jax.configs import make_config

    model, attention, mo, _ = VARIANTS[name]
    return make_config(L=L, preset=preset, model="both" if both else model, seeds=tuple(seeds),
                       attention=attention,
                       model_overrides={**model_overrides, **mo},
                       train_overrides=train_overrides)


def render(rows: dict, Ls, preset: str, command: str, wall: dict) -> str:
    from toy_jax.analysis import fmt_pct

    cols = " | ".join(f"L={L} infill fwd | L={L} infill rev | L={L} compl. fwd | "
                      f"L={L} compl. rev" for L in Ls)
    lines = [f"Top-3 success (%), mean ± s.e.m. over seeds; preset `{preset}` (the quick "
             "preset is a smaller, shorter configuration than the paper's Table 8)." if
             preset == "quick" else f"Top-3 success (%), mean ± s.e.m. over seeds; preset "
             f"`{preset}`.", f"Command: `{command}`", "",
             f"| variant | weights | {cols} |", "|" + "---|" * (2 + 4 * len(Ls))]
    for name in VARIANTS:
        if name not in rows:
            continue
        for weights in rows[name]["weights_order"]:
            cells = []
            for L in Ls:
                r = rows[name]["by_L"].get(L)
                if r is None:
                    cells.append("- | - | - | -")
                    continue
                w = r[weights]
                cells.append(" | ".join(fmt_pct(w[d][p]) for p in ("infill", "completion")
                                        for d in ("forward", "reverse")))
            lines.append(f"| {VARIANTS[name][3]} | {weights} | " + " | ".join(cells) + " |")
    lines += ["", "Headline weights first (EMA for the L_MDM objective, raw for next-token). "
              "Wall time (s): " + ", ".join(f"{k}: {v:.0f}" for k, v in wall.items()) + "."]
    return "\n".join(lines) + "\n"


def run_ablations(names, Ls, preset: str, seeds, out: Path, table: Path, mo: dict, to: dict,
                  progress: bool, command: str, baselines_from: Path | None = None) -> dict:
    from toy_jax.rundir import HEADLINE
    from toy_jax.analysis import seed_values

    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    jobs = []  # (run dir, config, {variant: model name in that run})
    base = [n for n in names if n in BASELINES]
    for L in Ls:
        if base:
            cfg = variant_config(base[0], L, preset, seeds, mo, to, both=True)
            d = (baselines_from / f"L{L}") if baselines_from else out / f"baselines_L{L}"
            if baselines_from and not (d / "config.json").exists():
                raise ValueError(f"--baselines-from: {d} is not a run directory")
            jobs.append((L, d, cfg, {n: n for n in base}))
        for n in names:
            if n not in BASELINES:
                cfg = variant_config(n, L, preset, seeds, mo, to)
                jobs.append((L, out / f"{n}_L{L}", cfg, {n: cfg.models[0].name}))
    rows = {n: {"by_L": {}, "weights_order": None} for n in names}
    wall = {}
    for L, d, cfg, which in jobs:
        t0 = time.perf_counter()
        res = finished_or_run(cfg, d, progress)
        wall[f"{d.parent.name}/{d.name}"] = time.perf_counter() - t0
        for n, model_name in which.items():
            obj = cfg.spec(model_name).objective
            head = HEADLINE[obj]
            rows[n]["weights_order"] = (head, "ema" if head == "raw" else "raw")
            rows[n]["by_L"][L] = {w: {dr: {p: seed_values(res, model_name, w, dr, p)
                                           for p in ("infill", "completion")}
                                      for dr in ("forward", "reverse")}
                                  for w in ("raw", "ema")}
        done = {n: r for n, r in rows.items() if r["by_L"]}
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_text(render(done, Ls, preset, command, wall))
        table.with_suffix(".json").write_text(json.dumps(
            {"preset": preset, "seeds": list(seeds), "command": command,
             "wall_s": {k: round(v, 1) for k, v in wall.items()},
             "top3_success": {n: {str(L): v for L, v in r["by_L"].items()}
                              for n, r in done.items()}}, indent=1) + "\n")
        print(f"{d}: {wall[list(wall)[-1]]:.0f} s", flush=True)
    return rows


def main(argv=None) -> int:
    """Exit codes (`toy_jax.cli`): 0 done, 1 failure, 2 bad arguments or config, 130
    interrupted (rerunning the same command resumes)."""
    return run_main(PROG, _main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    out = args.out or Path("runs") / f"ablations_{args.preset}"
    table = args.table or out / "ablations.md"
    mo, to = overrides(args)
    command = "python scripts/ablations.py " + " ".join(sys.argv[1:] if argv is None else argv)

    def body():
        if args.baselines_from is not None and not args.baselines_from.is_dir():
            raise ValueError(f"--baselines-from {args.baselines_from} is not a directory")
        run_ablations(args.variants, args.L, args.preset, args.seeds, out, table, mo, to,
                      not args.no_progress, command.strip(), args.baselines_from)

    return run_and_print(body, out, table)

