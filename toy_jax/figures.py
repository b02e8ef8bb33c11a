"""Figures 5, 6 and 9 (and the assumption check) from toy run directories only.

    python scripts/make_figures.py              # every run under runs/ -> runs/figures/
    python scripts/make_figures.py --runs runs/paper_L20_s0 runs/paper_L10_s0_6000
    python scripts/make_figures.py --runs RUN ... --extra-runs runs/study_quick/mdm_learned/L20

Without --runs, every run directory under --root (default runs/) holding a checkpoint of an
MDM-objective model is used. The default --out is `figures/` in the runs' common parent folder
(runs/figures for runs under runs/, which git ignores); no run found is an error (exit 1).

For every run in --runs (which must hold an 'mdm' model; an 'arm' model is used when present):
  correlation.png          forward/reverse score correlation vs Delta_1 + Delta_2, theory curve
  attention_dynamics.png   attention weight (and raw score) [M] -> B over training, fwd vs rev
  reverse_over_training.png  infill p(target) / greedy accuracy over training, raw and EMA
  fig5_probabilities_L<L>_<preset>.png  reverse-query probabilities per position, MDM vs ARM
  assumptions_L<L>_<preset>.png     Theorem 4.1's assumptions measured in the trained MDM
--extra-runs add correlation panels for other MDM-objective runs (e.g. position ablations).
All numbers behind the figures go to analysis.json and a readable analysis.md in --out.
Analysis uses seed 0 (or the first seed) and the headline weights (EMA for the L_MDM
objective, raw for next-token), with the raw-weight numbers in the JSON as well.
"""
# The logic of scripts/make_figures.py (which only calls `main`); the docstring above is its
# --help text. The numbers come from toy_jax.analysis, the drawings from toy_jax.plots.
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from plumbing import io
from plumbing.cli import OneLineParser as _Parser, UsageError, run_main
from toy_jax.configs import RunConfig

PROG = "make_figures.py"


def build_parser():
    p = _Parser(prog=PROG, description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, nargs="+", default=None,
                   help="run directories (default: every run with an MDM under --root)")
    p.add_argument("--root", type=Path, default=Path("runs"),
                   help="where to look for runs when --runs is not given (default runs)")
    p.add_argument("--extra-runs", type=Path, nargs="*", default=[], dest="extra_runs",
                   help="more MDM-objective runs for the correlation figure")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: figures/ in the runs' common parent folder)")
    p.add_argument("--n-boot", type=int, default=200, dest="n_boot",
                   help="bootstrap resamples of the letters (default 200)")
    p.add_argument("--at-step", type=int, default=3000, dest="at_step",
                   help="also report tracked metrics at this step (default 3000)")
    return p


def _first_mdm(run):
    for spec in run.config.models:
        if spec.objective == "mdm" and spec.name in run.states:
            return spec.name
    return None


def _init_model(run, name: str, seed: int):
    # lazy, as the toy_jax imports in the functions below: they load jax, orbax or numpy
    from toy_jax.model import merge
    from toy_jax.trainer import init_state

    mcfg, tcfg = run.config.configs_for(name)
    return merge(run.graphdefs[name], init_state(mcfg, tcfg, seed).params)


def _title(run, name: str, weights: str) -> str:
    c = run.config
    spec = c.spec(name)
    return (f"{name} L={c.L} {c.preset} pos={c.model.pos} attn={spec.attention} "
            f"seed {c.seeds[0]}, {weights}, step {run.step(name)}")


def analyse_run(run, n_boot: int, at_step: int) -> dict:
    """All analysis numbers of one run directory (seed = first seed)."""
    from toy_jax import analysis as A
    from toy_jax.rundir import HEADLINE

    seed = run.config.seeds[0]
    out = {"dir": str(run.out), "L": run.config.L, "preset": run.config.preset, "seed": seed,
           "seeds_all": list(run.config.seeds), "models": {}}
    rows = run.metrics()
    for name in run.model_names:
        spec = run.config.spec(name)
        head = HEADLINE[spec.objective]
        model = run.model(name, seed, ema=head == "ema")
        r = {"headline_weights": head, "step": run.step(name),
             "reverse_probabilities": A.reverse_probabilities(model, spec.objective)}
        try:
            c = A.curves(rows, name)
            r["over_training"] = A.over_training_summary(c, at_steps=(at_step,))
            seed_rows = [x for x in rows if x["model"] == name and x["seed"] == seed]
            r["corr_over_training_score"] = A.over_training_correlation(seed_rows)
            r["corr_over_training_weight"] = A.over_training_correlation(
                seed_rows, "attn_fwd_weight", "attn_rev_weight")
        except ValueError:
            r["over_training"] = None
        if spec.objective == "mdm":
            r["correlation"] = A.score_correlation(model, n_boot=n_boot)
            r["correlation_raw_weights"] = A.score_correlation(
                run.model(name, seed, ema=False), n_boot=0)
            r["correlation_init"] = A.score_correlation(_init_model(run, name, seed), n_boot=0)
            if run.config.model.pos == "rope":
                r["assumptions"] = A.assumption_check(model)
        out["models"][name] = r
    return out


def _fmt(x, nd=3):
    return "nan" if x is None or x != x else f"{x:.{nd}f}"


def render_md(summaries: list[dict], command: str) -> str:
    lines = [f"Command: `{command}`", ""]
    for s in summaries:
        lines.append(f"## {s['dir']} (L={s['L']}, preset {s['preset']}, seed {s['seed']})")
        for name, r in s["models"].items():
            lines.append(f"### {name} ({r['headline_weights']} weights, step {r['step']})")
            rp = r["reverse_probabilities"]["mean"]
            lines.append(f"- reverse infill queries: mean p(correct) {_fmt(rp['p_target'])}, "
                         f"mean max p(other letter) {_fmt(rp['p_max_other'])}, mean p('0') "
                         f"{_fmt(rp['p_pad'])}, p(correct) > max p(other) in "
                         f"{100 * rp['frac_target_beats_others']:.1f} % of queries")
            ot = r.get("over_training")
            if ot:
                lines.append(f"- over training (tracked every few steps, mean over seeds "
                             f"{s['seeds_all']}):")
                for key in ("infill_rev_greedy_acc", "infill_rev_p_target",
                            "infill_fwd_greedy_acc", "attn_fwd_weight", "attn_rev_weight"):
                    for pre in ("", "ema_"):
                        d = ot[pre + key]
                        at = "".join(f", at step {k[3:]}: {_fmt(v)}" for k, v in d.items()
                                     if k.startswith("at_"))
                        lines.append(f"  - {pre}{key}: final (step {d['final_step']}) "
                                     f"{_fmt(d['final'])}{at}, max {_fmt(d['max'])} at step "
                                     f"{d['argmax_step']}")
                lines.append(f"- corr over tracking steps of mean fwd/rev score: "
                             f"{_fmt(r['corr_over_training_score'])}; of mean weights: "
                             f"{_fmt(r['corr_over_training_weight'])}")
            if "correlation" in r:
                h = r["correlation"]["heads"][0]
                hr = r["correlation_raw_weights"]["heads"][0]
                hi = r["correlation_init"]["heads"][0]
                lines.append(f"- across-letter score correlation ({r['headline_weights']}): "
                             f"mean over all placement pairs {_fmt(h['overall_mean'])}, "
                             f"positive in {100 * h['frac_positive']:.1f} % of pairs, "
                             f"corresponding (swapped) pairs {_fmt(h['corresponding_mean'])}; "
                             f"raw weights {_fmt(hr['overall_mean'])}; at initialisation "
                             f"{_fmt(hi['overall_mean'])}")
                lines.append(f"  - score level vs letter spread: forward mean {_fmt(h['fwd_score_mean'], 2)} "
                             f"(std over letters {_fmt(h['fwd_score_letter_std'], 2)}), reverse mean "
                             f"{_fmt(h['rev_score_mean'], 2)} (std {_fmt(h['rev_score_letter_std'], 2)}); "
                             f"mean attention weight forward {_fmt(h['fwd_weight_mean'])}, reverse "
                             f"{_fmt(h['rev_weight_mean'])}")
                lines.append("  - by Delta_1+Delta_2 (sum: mean [95 % CI] / theory): " + "; ".join(
                    f"{s_}: {_fmt(m, 2)} [{_fmt(lo, 2)}, {_fmt(hi_, 2)}] / {_fmt(t, 2)}"
                    for s_, m, lo, hi_, t in zip(h["delta_sum"], h["corr_mean"], h["ci95_lo"],
                                                 h["ci95_hi"],
                                                 r["correlation"]["theory_trace_bound"])
                    if s_ % 4 == 2 or s_ == h["delta_sum"][-1]))
            if "assumptions" in r:
                a = r["assumptions"]["summary"]
                lines.append("- Theorem 4.1 assumptions (w-weighted over blocks): "
                             f"|cos|(q_i, top eigvec) {_fmt(a['w_weighted_align'])}, "
                             f"eigvec residual sin {_fmt(a['w_weighted_eigvec_residual_sin'])}, "
                             f"block anisotropy {_fmt(a['w_weighted_anisotropy'])}, "
                             f"fitted rho {_fmt(a['w_weighted_rho'])} (negative in "
                             f"{100 * a['frac_rho_negative']:.0f} % of blocks, "
                             f"{100 * a['w_mass_rho_negative']:.0f} % of the w mass); "
                             f"off-block-diagonal share of Sigma's energy "
                             f"{_fmt(r['assumptions']['offdiag_energy_share'])}; block "
                             f"variance CV {_fmt(a['tau2_cv'])}; w: max {_fmt(a['w_max'])}, "
                             f"effective blocks {_fmt(a['w_effective_blocks'], 1)} (isotropic q: "
                             f"~{_fmt(a['w_effective_blocks_isotropic_expectation'], 1)}), "
                             f"mass in the fastest quarter {_fmt(a['w_mass_top_quarter_freq'])}")
                lines.append(f"- correlation means over all (Delta_1, Delta_2): measured "
                             f"{_fmt(a['mean_measured'])}, theorem model "
                             f"{_fmt(a['mean_theorem'])}, rho=0 bound {_fmt(a['mean_rho0'])}, "
                             f"(1/D)Tr R {_fmt(a['mean_trace'])}; measured >= rho=0 bound in "
                             f"{100 * a['frac_pairs_measured_ge_rho0']:.0f} % of pairs "
                             f"({100 * a['frac_sym_measured_ge_rho0']:.0f} % of symmetric "
                             f"Delta_1 = Delta_2), >= (1/D)Tr R in "
                             f"{100 * a['frac_pairs_measured_ge_trace']:.0f} % "
                             f"({100 * a['frac_sym_measured_ge_trace']:.0f} % symmetric)")
            lines.append("")
    return "\n".join(lines) + "\n"


def make_figures(runs, extra_runs, out: Path, n_boot: int, at_step: int, command: str) -> list:
    from toy_jax import analysis as A
    from toy_jax import plots as P
    from toy_jax.rundir import load_run

    loaded = [load_run(r) for r in runs]
    extras = [load_run(r) for r in extra_runs]
    for run in loaded:
        if _first_mdm(run) is None:
            raise ValueError(f"{run.out} has no trained MDM-objective model")
    summaries = [analyse_run(r, n_boot, at_step) for r in loaded]
    extra_sum = []
    for run in extras:
        name = _first_mdm(run)
        if name is None:
            raise ValueError(f"{run.out} has no trained MDM-objective model")
        seed = run.config.seeds[0]
        extra_sum.append((run, name, A.score_correlation(run.model(name, seed, ema=True),
                                                         n_boot=n_boot),
                          A.score_correlation(_init_model(run, name, seed), n_boot=0)))
    written = []
    panels = []
    for run, s in zip(loaded, summaries):
        name = _first_mdm(run)
        r = s["models"][name]
        panels.append((_title(run, name, r["headline_weights"]), r["correlation"],
                       r["correlation_init"]))
    for run, name, corr, init in extra_sum:
        panels.append((_title(run, name, "ema"), corr, init))
    written.append(P.fig_correlation(panels, out / "correlation.png"))
    dyn, rev = [], []
    for run in loaded:
        rows = run.metrics()
        for name in run.model_names:
            try:
                c = A.curves(rows, name)
            except ValueError:
                continue
            if run.config.spec(name).objective == "mdm":
                dyn.append((f"{name} L={run.config.L} {run.config.preset}", c))
            rev.append((f"{name} L={run.config.L} {run.config.preset}", c))
    if dyn:
        written.append(P.fig_attention_dynamics(dyn, out / "attention_dynamics.png"))
    if rev:
        written.append(P.fig_reverse_over_training(rev, out / "reverse_over_training.png",
                                                   mark_step=at_step))
    tags = []
    for run, s in zip(loaded, summaries):
        L = run.config.L
        tag = f"L{L}_{run.config.preset}"
        tag = tag if tag not in tags else f"{tag}_{len(tags)}"
        tags.append(tag)
        s["figure_tag"] = tag
        written.append(P.fig_probabilities(
            [(f"{n} ({r['headline_weights']}) L={L} {run.config.preset}",
              r["reverse_probabilities"]) for n, r in s["models"].items()],
            out / f"fig5_probabilities_{tag}.png"))
        name = _first_mdm(run)
        if "assumptions" in s["models"][name]:
            written.append(P.fig_assumptions(s["models"][name]["assumptions"],
                                             out / f"assumptions_{tag}.png",
                                             _title(run, name, "ema")))
    extras_json = [{"dir": str(run.out), "model": name, "correlation": corr,
                    "correlation_init": init} for run, name, corr, init in extra_sum]
    io.write_text(out / "analysis.json", json.dumps(
        {"command": command, "runs": summaries, "extra_runs": extras_json}, indent=1) + "\n")
    md = render_md(summaries, command)
    for e in extras_json:
        h, hi = e["correlation"]["heads"][0], e["correlation_init"]["heads"][0]
        md += (f"## {e['dir']} ({e['model']}, EMA)\n- across-letter score correlation: mean "
               f"{_fmt(h['overall_mean'])}, positive in {100 * h['frac_positive']:.1f} % of "
               f"placement pairs (at initialisation {_fmt(hi['overall_mean'])})\n\n")
    io.write_text(out / "analysis.md", md)
    return written + [str(out / "analysis.json"), str(out / "analysis.md")]


def find_runs(root: Path) -> list[Path]:
    """Run directories under `root` (config.json of a toy run) holding a checkpoint of an
    MDM-objective model, sorted by path."""
    from toy_jax.checkpoint import saved_steps

    runs = []
    for cfg_path in sorted(Path(root).rglob("config.json")):
        run = cfg_path.parent
        try:
            cfg = RunConfig.from_dict(json.loads(cfg_path.read_text()))
        except (ValueError, KeyError, TypeError, OSError):
            continue  # not a toy run directory
        if any(saved_steps(run / "checkpoints" / m.name) for m in cfg.models
               if m.objective == "mdm"):
            runs.append(run)
    return runs


def default_out(runs: list[Path]) -> Path:
    """`figures/` in the common parent folder of the runs (beside them, not in a run)."""
    parents = [Path(os.path.abspath(r)).parent for r in runs]
    common = Path(os.path.commonpath([str(p) for p in parents]))
    rel = os.path.relpath(common)
    return (Path(rel) if not rel.startswith("..") else common) / "figures"


def main(argv=None) -> int:
    """Exit codes (`plumbing.cli`): 0 done, 1 failure (no run found, unreadable run),
    2 bad arguments, 130 interrupted."""
    return run_main(PROG, _main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    command = "python scripts/make_figures.py " + " ".join(sys.argv[1:] if argv is None else argv)
    logging.getLogger("absl").setLevel(logging.WARNING)
    runs = args.runs
    for r in (runs or []) + args.extra_runs:
        if not r.is_dir():
            raise UsageError(f"{r} is not a directory")
    if runs is None:
        runs = find_runs(args.root)
        if not runs:
            raise FileNotFoundError(
                f"no toy run with a trained MDM under {args.root}/; train one first "
                "(python toy_jax/train.py --L 20 --preset quick) or pass --runs")
        print(f"runs under {args.root}/: " + " ".join(str(r) for r in runs), flush=True)
    out = args.out or default_out(runs)
    out.mkdir(parents=True, exist_ok=True)
    files = make_figures(runs, args.extra_runs, out, args.n_boot, args.at_step,
                         command.strip())
    print("\n".join(files))
    return 0

