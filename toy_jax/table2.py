"""Table 2 of the paper with seeds: L x {MDM, ARM} x seeds, mean ± s.e.m. beside the paper.

    python scripts/reproduce_table2.py --preset quick                  # whole table, CPU
    python scripts/reproduce_table2.py --preset paper --L 10 20         # Table 8 settings

One run directory per L under --out (resumable: rerunning continues where it stopped); all
seeds of a model train in one vmapped jitted program (sharded over the seed axis when several
devices divide the number of seeds). The table (top-3 success, %) lists the three readings of
`toy_jax.evaluate` (infill, completion, and infill_letter: infill with the pad output `0`
excluded) for raw and EMA weights, and is rewritten after every L. A finished run directory
from before the letter-level reading is evaluated again from its checkpoints, not retrained.
"""
# The logic of scripts/reproduce_table2.py (which only calls `main`); the docstring above is
# its --help text. scripts/ablations.py (toy_jax.ablations) shares the overrides and the runner.
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from toy_jax.cli import OneLineParser as _Parser, UsageError, run_main

PROG = "reproduce_table2.py"
PROTOCOLS = ("infill", "completion", "infill_letter")  # toy_jax.evaluate.PROTOCOLS


def add_override_flags(p: argparse.ArgumentParser) -> None:
    """Preset overrides shared with scripts/ablations.py (tiny configs for tests)."""
    g = p.add_argument_group("preset overrides (default: the preset's)")
    g.add_argument("--steps", type=int, help="training steps")
    g.add_argument("--d-model", type=int, dest="d_model", help="hidden size")
    g.add_argument("--batch-size", type=int, dest="batch_size")
    g.add_argument("--warmup", type=int, dest="warmup_steps", help="warm-up steps")
    g.add_argument("--track-every", type=int, dest="track_every",
                   help="tracking every N steps (0 = off)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")


def overrides(args) -> tuple[dict, dict]:
    """(model_overrides, train_overrides) from the shared flags."""
    pick = lambda names: {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    return pick(["d_model"]), pick(["steps", "batch_size", "warmup_steps", "track_every"])


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=("quick", "paper"), default="quick",
                   help="quick (CPU, default) or paper (Table 8; meant for a GPU)")
    p.add_argument("--L", type=int, nargs="+", default=[10, 20, 30, 40],
                   help="sequence lengths (default 10 20 30 40)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="default 0 1 2")
    p.add_argument("--out", type=Path, default=None,
                   help="runs directory (default runs/table2_<preset>); one L<L>/ per length")
    p.add_argument("--table", type=Path, default=None,
                   help="markdown table path (default <out>/table2.md; a .json lies beside it)")
    add_override_flags(p)
    return p


def render_table(rows: dict, preset: str, Ls: list[int], command: str, wall: dict) -> str:
    """Markdown: top-3 success (%) mean ± s.e.m. per model x weights x protocol, paper beside."""
    from toy_jax.analysis import PAPER_TABLE2, fmt_pct

    head = "| model | weights | protocol | " + " | ".join(
        f"L={L} fwd | L={L} rev" for L in Ls) + " |"
    sep = "|" + "---|" * (3 + 2 * len(Ls))
    lines = [f"Top-3 success (%), mean ± s.e.m. over seeds; preset `{preset}`.",
             f"Command: `{command}`", "", head, sep]
    for name in ("mdm", "arm"):
        lines.append(f"| {name.upper()} (paper Table 2) | {'EMA' if name == 'mdm' else 'raw'}"
                     " | ? | " + " | ".join(f"{PAPER_TABLE2[name][L][0]:.2f} | "
                                            f"{PAPER_TABLE2[name][L][1]:.2f}"
                                            if L in PAPER_TABLE2[name] else "- | -"
                                            for L in Ls) + " |")
        for weights in ("raw", "ema"):
            for proto in PROTOCOLS:
                cells = []
                for L in Ls:
                    r = rows.get(L)
                    if r is None:
                        cells.append("- | -")
                        continue
                    cells.append(" | ".join(fmt_pct(r[name][weights][d][proto])
                                            if r[name][weights][d][proto] is not None else "-"
                                            for d in ("forward", "reverse")))
                lines.append(f"| {name.upper()} | {weights} | {proto} | "
                             + " | ".join(cells) + " |")
    seeds = sorted({len(v["mdm"]["raw"]["forward"]["infill"]) for v in rows.values()})
    lines += ["", "Protocols: infill = the [M] filled among all 53 outputs (pad `0` included); "
              "completion = the partner generated after the cue; infill_letter = the infill "
              "queries with `0` excluded (which letter goes at the [M]; Figure 5's comparison).",
              f"Seeds per cell: {seeds}. Wall time of this command per L (s): "
              + ", ".join(f"L={L}: {wall[L]:.0f}" for L in Ls if L in wall)
              + (f"; total {sum(wall.values()):.0f} s." if wall else ".")]
    for L in Ls:
        t = rows.get(L, {}).get("_timing")
        if t:
            lines.append(f"L={L} training time (s, from results.json): " + ", ".join(
                f"{n} {v.get('train_s', float('nan')):.0f}" for n, v in t["timing"].items())
                + (" (finished run reused, not retrained)" if t["reused"] else ""))
    return "\n".join(lines) + "\n"


def collect(results: dict) -> dict:
    """{model: {weights: {direction: {protocol: [per-seed top-3 success] or None}}}} (None: a
    reading the results do not hold)."""
    from toy_jax.analysis import seed_values

    def values(name, w, d, p):
        try:
            return seed_values(results, name, w, d, p)
        except KeyError:
            return None

    return {name: {w: {d: {p: values(name, w, d, p) for p in PROTOCOLS}
                       for d in ("forward", "reverse")}
                   for w in ("raw", "ema")}
            for name in ("mdm", "arm")}


def finished_or_run(cfg, out: Path, progress: bool) -> dict:
    """results.json of `out` when it holds a finished run of exactly `cfg`; otherwise train
    (or resume) and evaluate it with `rundir.run_experiment`."""
    from toy_jax.checkpoint import CheckpointError
    from toy_jax.configs import RunConfig
    from toy_jax.rundir import reevaluate_run, run_experiment

    path = out / "results.json"
    if path.exists():
        try:
            res = json.loads(path.read_text())
            if RunConfig.from_dict(res["config"]) == cfg:
                if any("infill_letter" not in m["forward"] for m in res["models"].values()):
                    try:  # a run from before the letter-level reading
                        res = reevaluate_run(out)
                    except (ValueError, CheckpointError, OSError):
                        pass  # no checkpoints: the table shows '-' for that reading
                res["reused"] = True
                return res
        except (ValueError, KeyError, TypeError):
            pass  # fall through: run_experiment reports an unusable directory
    return run_experiment(cfg, out, progress=progress)


def run_table(Ls, preset: str, seeds, out: Path, table: Path, model_overrides: dict,
              train_overrides: dict, progress: bool, command: str) -> dict:
    """Train/evaluate every L (resuming existing run directories) and write the table."""
    from toy_jax.configs import make_config

    cfgs = {L: make_config(L=L, preset=preset, model="both", seeds=tuple(seeds),
                           model_overrides=model_overrides, train_overrides=train_overrides)
            for L in Ls}  # validate every config before training anything
    rows, wall = {}, {}
    for L in Ls:
        t0 = time.perf_counter()
        res = finished_or_run(cfgs[L], out / f"L{L}", progress)
        wall[L] = time.perf_counter() - t0
        rows[L] = collect(res)
        rows[L]["_timing"] = {"timing": res.get("timing", {}), "reused": bool(res.get("reused"))}
        text = render_table(rows, preset, list(Ls), command, wall)
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_text(text)
        table.with_suffix(".json").write_text(json.dumps(
            {"preset": preset, "seeds": list(seeds), "command": command,
             "wall_s": {str(k): round(v, 1) for k, v in wall.items()},
             "top3_success": {str(k): {n: v[n] for n in ("mdm", "arm")}
                              for k, v in rows.items()},
             "timing": {str(k): v["_timing"] for k, v in rows.items()},
             "runs": {str(L): str(out / f"L{L}") for L in rows}}, indent=1) + "\n")
        print(f"L={L}: {wall[L]:.0f} s", flush=True)
    return {"rows": rows, "wall_s": wall}


def main(argv=None) -> int:
    """Exit codes (`toy_jax.cli`): 0 done, 1 failure, 2 bad arguments or config, 130
    interrupted (rerunning the same command resumes)."""
    return run_main(PROG, _main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    out = args.out or Path("runs") / f"table2_{args.preset}"
    table = args.table or out / "table2.md"
    mo, to = overrides(args)
    command = "python scripts/reproduce_table2.py " + " ".join(
        sys.argv[1:] if argv is None else argv)

    def body():
        if len(set(args.L)) != len(args.L):
            raise ValueError(f"--L has duplicates: {args.L}")
        run_table(args.L, args.preset, args.seeds, out, table, mo, to,
                  not args.no_progress, command.strip())

    return run_and_print(body, out, table)


def run_and_print(body, out: Path, table: Path) -> int:
    """`body()` trains into `out` and writes `table`, which is then printed; a ValueError (a bad
    config, another run's config in a run directory) is a UsageError, Ctrl-C says what is kept.
    Shared by scripts/reproduce_table2.py and scripts/ablations.py."""
    import logging

    logging.getLogger("absl").setLevel(logging.WARNING)
    try:
        body()
    except ValueError as e:
        raise UsageError(str(e)) from e
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"finished runs and checkpoints are kept in {out}; rerun the "
                                "same command to resume") from None
    print(table.read_text())
    print(f"table: {table}")
    return 0

