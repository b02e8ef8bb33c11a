"""A grid of toy variants x seeds x L: which settings collapse, how long reverse inference lasts.

    python scripts/sweep.py --preset quick --L 10 --seeds 0 1 2 3 \\
        --variant "base=" --variant "std=--init standard" --variant "emb1=--embed-init normal" \\
        --out runs/sweep_quick
    python scripts/sweep.py --preset paper --L 20 --seeds 0 1 2 3 4 5 6 7 --variant "base=" \\
        --variant "vdm=--t-sampler stratified" --out runs/sweep_paper --dry-run

`--variant NAME=FLAGS` takes any flags of toy_jax/train.py except --L, --seed, --preset, --out
and --no-progress (the sweep sets those); every flag is checked before anything runs. The
override flags listed below (e.g. --steps) apply to every variant; a variant's own flags win.
`--model` (default mdm) is the default model of every variant.

Each (variant, L) is one run directory OUT/<variant>_L<L> trained by
`toy_jax.rundir.run_experiment`, all seeds in one vmapped program. Rerunning continues
unfinished runs and reuses finished ones. After every run OUT/summary.json, OUT/summary.md and
OUT/reverse_curves.png are rewritten: per variant, L and seed, forward and reverse at the end in
every reading of results.json (headline weights: EMA for L_MDM, raw for next-token; both in
the JSON), `collapsed` (forward completion top-k success < 50 % at the end,
`toy_jax.evaluate.forward_status`), and from metrics.jsonl the peak of the tracked reverse
greedy infill accuracy (raw weights), its step, and its mean over the second half of training.
`--dry-run` prints the grid and an estimate of its time from a short measured run (the first
variant, a few chunks of steps at each L, in a temporary directory) and writes nothing.
"""
# The logic of scripts/sweep.py (which only calls `main`); the docstring above is its --help
# text. Named grids of registered variants are toy_jax.experiments (scripts/toy_grid.py).
from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from toy_jax.cli import OneLineParser as _Parser, fail

PROG = "sweep.py"
RESERVED = {"L": "--L", "seed": "--seed", "preset": "--preset", "out": "--out",
            "no_progress": "--no-progress"}  # set by the sweep, not per variant
TRACKED_REV = "infill_rev_greedy_acc"  # tracked reverse accuracy (metrics.jsonl, raw weights)
_UNSET = object()


class SweepError(ValueError):
    """A bad grid (variant flags, names, directories)."""


def build_parser() -> argparse.ArgumentParser:
    from toy_jax import configs as C
    from toy_jax.train import add_override_flags

    p = _Parser(prog=PROG, description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=C.PRESET_CHOICES, default="quick",
                   help="quick (CPU, default) or paper (Table 8; meant for a GPU)")
    p.add_argument("--L", type=int, nargs="+", default=[20], help="sequence lengths (default 20)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3],
                   help="seeds, trained together in one vmapped program per run (default 0-3)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=FLAGS",
                   help='a variant: a name and train.py flags, e.g. "std=--init standard" '
                        '("base=" is the preset itself); repeat for each variant')
    p.add_argument("--model", choices=C.MODEL_CHOICES, default="mdm",
                   help="default model of every variant (default mdm)")
    p.add_argument("--out", type=Path, default=None,
                   help="sweep directory (default runs/sweep_<preset>); rerun to resume")
    p.add_argument("--dry-run", action="store_true", dest="dry_run",
                   help="print the grid and a measured time estimate; train nothing")
    p.add_argument("--no-progress", action="store_true", dest="no_progress",
                   help="no progress bars")
    add_override_flags(p)
    return p


@dataclass(frozen=True)
class Cell:
    """One run of the grid: a variant at one L (all seeds)."""

    variant: str
    L: int
    flags: tuple[str, ...]
    cfg: object  # RunConfig
    out: Path


def _variant_args(name: str, tokens: list[str], shared: dict):
    """train.py's namespace for a variant: its flags over `shared` (sweep-wide) defaults."""
    from toy_jax.train import build_parser as train_parser

    p = train_parser()

    def error(message):
        raise SweepError(f"variant {name!r}: {message}")

    p.error = error
    p.set_defaults(**shared, **{dest: _UNSET for dest in RESERVED})
    try:
        ns = p.parse_args(tokens)
    except SystemExit as e:  # --help and the like
        raise SweepError(f"variant {name!r}: flags {' '.join(tokens)!r} exit train.py's "
                         "parser") from e
    for dest, flag in RESERVED.items():
        if getattr(ns, dest) is not _UNSET:
            raise SweepError(f"variant {name!r}: {flag} is set by sweep.py for every variant")
    return ns


def parse_variants(specs: list[str]) -> list[tuple[str, list[str]]]:
    """[(name, train.py tokens)] from NAME=FLAGS strings."""
    if not specs:
        raise SweepError('no --variant given (e.g. --variant "base=")')
    out, seen = [], set()
    for spec in specs:
        name, eq, flags = spec.partition("=")
        name = name.strip()
        if not eq or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise SweepError(f"--variant {spec!r}: expected NAME=FLAGS with NAME of letters, "
                             "digits, '_', '-', '.'")
        if name in seen:
            raise SweepError(f"--variant {name!r} given twice")
        seen.add(name)
        try:
            tokens = shlex.split(flags)
        except ValueError as e:
            raise SweepError(f"variant {name!r}: {e}") from e
        out.append((name, tokens))
    return out


def build_grid(args, override_dests) -> list[Cell]:
    """Every (variant, L) cell with its RunConfig; raises SweepError before anything runs."""
    from toy_jax.train import config_from_args

    if len(set(args.L)) != len(args.L):
        raise SweepError(f"--L has duplicates: {args.L}")
    shared = {d: getattr(args, d) for d in override_dests if getattr(args, d) is not None}
    shared["model"] = args.model
    out = args.out or Path("runs") / f"sweep_{args.preset}"
    cells = []
    for name, tokens in parse_variants(args.variant):
        ns = _variant_args(name, tokens, shared)
        for L in args.L:
            vars(ns).update(L=L, seed=list(args.seeds), preset=args.preset, out=None,
                            no_progress=True)
            try:
                cfg = config_from_args(ns)
            except ValueError as e:
                raise SweepError(f"variant {name!r} at L={L}: {e}") from e
            cells.append(Cell(name, L, tuple(tokens), cfg, out / f"{name}_L{L}"))
    for c in cells:
        _check_run_dir(c)
    return cells


def _check_run_dir(cell: Cell) -> None:
    """Refuse, before anything runs, a run directory that holds another config (a larger
    --steps is allowed: the run continues)."""
    from toy_jax.configs import RunConfig

    path = cell.out / "config.json"
    if not path.exists():
        return
    try:
        old = RunConfig.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as e:
        raise SweepError(f"{path} is not a valid run config ({e})") from e
    grown = replace(old, train=replace(old.train, steps=cell.cfg.train.steps))
    if old != cell.cfg and not (grown == cell.cfg and cell.cfg.train.steps > old.train.steps):
        raise SweepError(f"{cell.out} holds a run with a different config than variant "
                         f"{cell.variant!r}; use another --out")


# -- reading run directories -------------------------------------------------------------

def _readings(r: dict) -> dict:
    """{direction: {reading: {metric: value}}} of one weight set, whatever readings exist."""
    return {d: {reading: dict(m) for reading, m in r[d].items() if isinstance(m, dict)}
            for d in ("forward", "reverse") if isinstance(r.get(d), dict)}


def _curve(rows: list[dict], key: str):
    rows = [r for r in rows if key in r]
    return [r["step"] for r in rows], [float(r[key]) for r in rows]


def seed_summary(results: dict, metrics: list[dict], name: str, seed: int, steps: int) -> dict:
    """The summary of one seed of model `name`: end values, collapse, tracked reverse curve."""
    from toy_jax.evaluate import forward_status
    from toy_jax.rundir import HEADLINE

    cfg = results["config"]
    objective = next(m["objective"] for m in cfg["models"] if m["name"] == name)
    head = HEADLINE[objective]
    r = results["per_seed"][str(seed)][name]
    end = {"raw": _readings(r), "ema": _readings(r.get("ema", {}))}
    fwd_completion = end[head]["forward"]["completion"]["topk_success"]
    status = forward_status(fwd_completion)
    rows = sorted((m for m in metrics if m.get("model") == name and m.get("seed") == seed),
                  key=lambda m: m["step"])
    out = {"headline_weights": head, "end": end, "forward_status": status,
           "collapsed": status == "collapsed"}
    for w, key in (("raw", TRACKED_REV), ("ema", f"ema_{TRACKED_REV}")):
        st, v = _curve(rows, key)
        if not v:
            continue
        i = max(range(len(v)), key=lambda j: v[j])
        second = [x for s, x in zip(st, v) if s > steps / 2]
        out[f"tracked_rev_{w}"] = {"peak": v[i], "peak_step": st[i],
                                   "mean_second_half": sum(second) / len(second)
                                   if second else None, "last": v[-1]}
    return out


def run_summary(cell: Cell) -> dict | None:
    """{'seeds': {seed: {model: seed_summary}}, ...} of a finished run directory, else None."""
    res_path, met_path = cell.out / "results.json", cell.out / "metrics.jsonl"
    if not res_path.exists():
        return None
    res = json.loads(res_path.read_text())
    metrics = [json.loads(l) for l in met_path.read_text().splitlines()] \
        if met_path.exists() else []
    steps = cell.cfg.train.steps
    models = [m.name for m in cell.cfg.models]
    return {"variant": cell.variant, "L": cell.L, "flags": " ".join(cell.flags),
            "run_dir": str(cell.out), "timing": res.get("timing", {}),
            "seeds": {str(s): {n: seed_summary(res, metrics, n, s, steps) for n in models}
                      for s in res["seeds"]}}


def curves(cell: Cell, name: str, key: str = TRACKED_REV) -> dict:
    """{seed: (steps, values)} of a tracked metric from a run's metrics.jsonl."""
    path = cell.out / "metrics.jsonl"
    rows = [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []
    out = {}
    for s in cell.cfg.seeds:
        st, v = _curve(sorted((r for r in rows if r.get("model") == name
                               and r.get("seed") == s), key=lambda r: r["step"]), key)
        if v:
            out[s] = (st, v)
    return out


# -- the summary files -------------------------------------------------------------------

def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def render_md(summaries: list[dict], command: str, wall: dict) -> str:
    """The markdown summary: one row per (variant, L, model) aggregate, then one per seed."""
    readings = []
    for s in summaries:
        for seeds in s["seeds"].values():
            for m in seeds.values():
                for rd in m["end"][m["headline_weights"]].get("reverse", {}):
                    if rd not in readings:
                        readings.append(rd)
    lines = ["Toy sweep: top-k success (%) at the end with the headline weights (EMA for "
             "L_MDM, raw for next-token); `collapsed` = forward completion < 50 % at the end; "
             "tracked reverse = greedy infill accuracy of the raw weights over training "
             "(metrics.jsonl).", "", f"Command: `{command}`", ""]
    head_cells = ["fwd completion"] + [f"rev {rd}" for rd in readings]
    lines += ["| variant | L | model | seeds collapsed | " + " | ".join(
        f"{c} (mean)" for c in head_cells) + " | tracked rev peak (mean) | tracked rev mean "
        "2nd half (mean) |", "|" + "---|" * (6 + len(head_cells))]
    per_seed = ["| variant | L | model | seed | collapsed | " + " | ".join(head_cells)
                + " | tracked rev peak (step) | tracked rev mean 2nd half |",
                "|" + "---|" * (7 + len(head_cells))]
    for s in summaries:
        models = list(next(iter(s["seeds"].values())))
        for n in models:
            ms = [(seed, v[n]) for seed, v in s["seeds"].items()]
            vals = lambda f: [f(m) for _, m in ms]
            end = lambda m, d, rd: m["end"][m["headline_weights"]].get(d, {}).get(
                rd, {}).get("topk_success")
            cols = [lambda m: end(m, "forward", "completion")] + [
                (lambda rd: lambda m: end(m, "reverse", rd))(rd) for rd in readings]
            tr = lambda m, k: m.get("tracked_rev_raw", {}).get(k)
            collapsed = [seed for seed, m in ms if m["collapsed"]]
            lines.append(f"| {s['variant']} | {s['L']} | {n} | {len(collapsed)} / {len(ms)}"
                         + (f" ({', '.join(collapsed)})" if collapsed else "") + " | "
                         + " | ".join(_pct(_mean(vals(c))) for c in cols) + " | "
                         + f"{_pct(_mean(vals(lambda m: tr(m, 'peak'))))} | "
                         + f"{_pct(_mean(vals(lambda m: tr(m, 'mean_second_half'))))} |")
            for seed, m in ms:
                peak = tr(m, "peak")
                per_seed.append(
                    f"| {s['variant']} | {s['L']} | {n} | {seed} | "
                    f"{'yes' if m['collapsed'] else 'no'} | "
                    + " | ".join(_pct(c(m)) for c in cols) + " | "
                    + (f"{_pct(peak)} ({tr(m, 'peak_step')})" if peak is not None else "-")
                    + f" | {_pct(tr(m, 'mean_second_half'))} |")
    flags = {s["variant"]: s["flags"] for s in summaries}
    lines += ["", "Variants: " + "; ".join(f"`{v}` = `{f or '(preset)'}`"
                                           for v, f in flags.items()) + ".", "",
              "Per seed:", ""] + per_seed
    lines += ["", "Wall time of this command per run (s): " + ", ".join(
        f"{k}: {v:.0f}" for k, v in wall.items()) + (
        f"; total {sum(wall.values()):.0f} s." if wall else ".")]
    return "\n".join(lines) + "\n"


def plot_curves(cells: list[Cell], path: Path) -> str | None:
    """Tracked reverse greedy infill accuracy over training: one panel per (L, variant), thin
    lines per seed, the seed mean thick."""
    import numpy as np

    done = [c for c in cells if (c.out / "metrics.jsonl").exists()]
    if not done:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Ls = sorted({c.L for c in done})
    variants = list(dict.fromkeys(c.variant for c in done))
    fig, axes = plt.subplots(len(Ls), len(variants), squeeze=False, sharey=True,
                             figsize=(3.2 * len(variants), 2.6 * len(Ls)))
    for c in done:
        ax = axes[Ls.index(c.L)][variants.index(c.variant)]
        for m in c.cfg.models:
            cv = curves(c, m.name)
            for s, (st, v) in cv.items():
                ax.plot(st, v, lw=0.7, alpha=0.6, label=f"seed {s}")
            if cv:
                n = min(len(v) for _, v in cv.values())
                st = next(iter(cv.values()))[0][:n]
                ax.plot(st, np.mean([v[:n] for _, v in cv.values()], 0), "k", lw=2,
                        label=f"{m.name} mean")
        ax.set_title(f"{c.variant}, L={c.L}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylim(-0.02, 1.02)
    for row in axes:
        row[0].set_ylabel("reverse greedy infill (raw)", fontsize=8)
    axes[0][0].legend(fontsize=6, loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def write_summary(cells: list[Cell], out: Path, command: str, wall: dict) -> list[dict]:
    from toy_jax.rundir import _write_atomic

    summaries = [s for s in (run_summary(c) for c in cells) if s is not None]
    out.mkdir(parents=True, exist_ok=True)
    payload = {"command": command, "wall_s": {k: round(v, 1) for k, v in wall.items()},
               "collapse_rule": "forward completion top-k success (headline weights) < "
                                "toy_jax.evaluate.COLLAPSE_BELOW at the end",
               "runs": summaries}
    _write_atomic(out / "summary.json", json.dumps(payload, indent=1) + "\n")
    _write_atomic(out / "summary.md", render_md(summaries, command, wall))
    plot_curves(cells, out / "reverse_curves.png")
    return summaries


# -- running and estimating --------------------------------------------------------------

def run_state(cell: Cell) -> tuple[str, int]:
    """('finished' | 'partial' | 'new', steps done) of a cell's run directory."""
    from toy_jax.configs import RunConfig

    res = cell.out / "results.json"
    if res.exists():
        try:
            if RunConfig.from_dict(json.loads(res.read_text())["config"]) == cell.cfg:
                return "finished", cell.cfg.train.steps
        except (ValueError, KeyError, TypeError):
            pass
    done = 0
    met = cell.out / "metrics.jsonl"
    if met.exists():
        steps = [json.loads(l).get("step", 0) for l in met.read_text().splitlines() if l]
        done = min(max(steps, default=0), cell.cfg.train.steps)
    return ("partial" if done else "new"), done


def run_cell(cell: Cell, progress: bool) -> dict:
    """results.json of the cell: reused when finished, else trained (or resumed) and evaluated."""
    from toy_jax.rundir import run_experiment

    if run_state(cell)[0] == "finished":
        return json.loads((cell.out / "results.json").read_text())
    return run_experiment(cell.cfg, cell.out, progress=progress)


def measure(cell: Cell, n_chunks: int = 3) -> dict:
    """Time a short run of `cell` (n_chunks chunks of steps, then evaluation) in a temporary
    directory: {'steps', 'ms_per_step' (steady, all seeds), 'overhead_s' (the rest)}."""
    from toy_jax.rundir import run_experiment

    tc = cell.cfg.train
    steps = min(tc.steps, n_chunks * tc.chunk)
    cfg = replace(cell.cfg, train=replace(tc, steps=steps, ckpt_every=max(steps, 1)))
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        res = run_experiment(cfg, Path(d) / "run", progress=False)
        wall = time.perf_counter() - t0
    ms = [t["ms_per_step"] for t in res["timing"].values() if t.get("ms_per_step")]
    ms_step = sum(ms) if ms else 1e3 * wall / steps  # models of a run train one after another
    return {"steps": steps, "ms_per_step": ms_step,
            "overhead_s": max(0.0, wall - steps * ms_step / 1e3), "wall_s": wall}


def estimate(cells: list[Cell]) -> tuple[list[str], float]:
    """Lines describing the grid and its estimated time (s), from one short measured run of
    the first variant at every L (other variants at the same L are assumed to cost the same)."""
    meas, lines, total = {}, [], 0.0
    for c in cells:
        state, done = run_state(c)
        if state == "finished":
            est = 0.0
        else:
            if c.L not in meas:
                meas[c.L] = measure(next(x for x in cells if x.L == c.L))
                m = meas[c.L]
                lines.append(f"measured at L={c.L} ({c.variant}, {m['steps']} steps, "
                             f"{len(c.cfg.seeds)} seeds): {m['ms_per_step']:.1f} ms/step, "
                             f"overhead (compile, evaluation, I/O) {m['overhead_s']:.1f} s")
            m = meas[c.L]
            est = m["overhead_s"] + (c.cfg.train.steps - done) * m["ms_per_step"] / 1e3
        total += est
        lines.append(f"{c.out}: {c.variant} L={c.L} seeds={list(c.cfg.seeds)} "
                     f"steps={c.cfg.train.steps} [{state}"
                     + (f" at step {done}" if state == "partial" else "")
                     + f"] flags: {' '.join(c.flags) or '(preset)'}; est. {est:.0f} s")
    return lines, total


def run_sweep(cells: list[Cell], out: Path, command: str, progress: bool = True) -> list[dict]:
    """Run every cell (reusing finished ones), rewriting the summary after each."""
    wall = {}
    for c in cells:
        t0 = time.perf_counter()
        run_cell(c, progress)
        wall[c.out.name] = time.perf_counter() - t0
        write_summary(cells, out, command, wall)
        print(f"{c.out}: {wall[c.out.name]:.0f} s", flush=True)
    return write_summary(cells, out, command, wall)


def main(argv=None) -> int:
    from toy_jax.train import add_override_flags

    parser = build_parser()
    args = parser.parse_args(argv)
    override_dests = add_override_flags(_Parser(add_help=False))
    command = "python scripts/sweep.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    try:
        cells = build_grid(args, override_dests)
    except ValueError as e:
        return fail(PROG, e, code=2)
    out = args.out or Path("runs") / f"sweep_{args.preset}"
    import logging

    logging.getLogger("absl").setLevel(logging.WARNING)
    from toy_jax.checkpoint import CheckpointError

    try:
        if args.dry_run:
            print(f"grid: {len({c.variant for c in cells})} variants x {len(args.L)} L x "
                  f"{len(args.seeds)} seeds = {len(cells)} runs in {out}", flush=True)
            lines, total = estimate(cells)
            print("\n".join(lines))
            print(f"estimated time: {total:.0f} s ({total / 60:.1f} min) on this machine")
            return 0
        run_sweep(cells, out, command.strip(), progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except (ValueError, CheckpointError, FloatingPointError, OSError) as e:
        return fail(PROG, e)
    print((out / "summary.md").read_text())
    print(f"summary: {out / 'summary.md'}")
    return 0

