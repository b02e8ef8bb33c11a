"""Collect finetune.py run directories into Table 1 (mean +- s.e.m. over seeds beside the paper).

    python scripts/table1.py [ROOT_OR_RUN_DIR ...] [--final] [--metric exact|prefix] [--out table1.md]

Every directory below the given paths that holds a results.json is one run; runs are grouped
by (model family, dataset, direction). Accuracies are printed in percent.

By default each run contributes its best forward and its best reverse accuracy over the
evaluations of training (every 10 epochs and the last), which is what Appendix D reports ("the
best forward and reverse accuracies were logged"); `--final` uses the last evaluation instead.

Results of `largescale_torch/evaluate.py` are told apart by their `"kind": "evaluation"` marker,
wherever they lie (`runs/table1/<family>/<dataset>-<direction>/base/` by convention): a base
model's (`"weights": "base"`) give a "base model" row under each Table 1 row they cover, the
control the paper does not report; LLaDA reversal-poem results give a table beside the LLaDA
paper's Table 4; evaluations of saved adapters repeat their runs and are only counted.
Exit codes: 0 done, 2 bad arguments, 1 unreadable or missing runs, 130 interrupted.
"""
# The logic of scripts/table1.py (which only calls `main`); the first docstring line is its
# --help description.
from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

from largescale_torch.cli import main_interruptible
from largescale_torch.constants import (
    EXIT_BAD_ARGS,
    EXIT_FAILURE,
    LLADA_TABLE4,
    PAPER_TABLE1,
    TABLE1_ROWS,
)
from plumbing.stats import mean_sem

FAMILIES = ("llada", "llama", "qwen")
WHICH_LABEL = {
    "best": "best-of-checkpoints accuracy (per run and direction, the best evaluation, as Appendix D logs)",
    "final": "final-epoch accuracy (last evaluation of each run)",
}


def find_runs(paths: list[str]) -> list[dict]:
    runs = []
    for p in paths:
        root = Path(p)
        if not root.exists():
            raise FileNotFoundError(f"{root} does not exist")
        files = [root / "results.json"] if (root / "results.json").is_file() else sorted(root.rglob("results.json"))
        for f in files:
            try:
                runs.append(json.loads(f.read_text()))
            except json.JSONDecodeError as err:
                raise ValueError(f"malformed {f}: {err.msg}") from None
    return runs


def _value(run: dict, direction: str, metric: str, which: str) -> float:
    if metric == "prefix":
        return run["prefix_match"][f"{direction}_final"]
    return run[direction][which]


def collect(runs: list[dict], metric: str = "exact", which: str = "best") -> dict:
    """{(dataset, direction): {family: {"forward": (mean, sem, n), "reverse": ...}}} in percent."""
    grouped = defaultdict(list)
    for r in runs:
        grouped[(r["dataset"], r["direction"], r["family"])].append(r)
    table = defaultdict(dict)
    for (ds, dr, fam), rs in grouped.items():
        cell = {}
        for d in ("forward", "reverse"):
            # one run: s.e.m. NaN, printed as "m" without "± s"
            m, s = mean_sem([100 * _value(r, d, metric, which) for r in rs], single=float("nan"))
            cell[d] = (m, s, len(rs))
        cell["seeds"] = sorted(r["seed"] for r in rs if r.get("seed") is not None)
        table[(ds, dr)][fam] = cell
    return table


def split_runs(runs: list[dict]) -> dict[str, list[dict]]:
    """finetuned runs, base-model evaluations, poem evaluations, adapter evaluations (by the results' markers)."""
    parts = {"runs": [], "base": [], "poems": [], "adapter": []}
    for r in runs:
        if r.get("kind") != "evaluation":
            parts["runs"].append(r)
        elif "poems" in r:
            parts["poems"].append(r)
        else:
            parts["base" if r.get("weights") == "base" else "adapter"].append(r)
    return parts


def _fmt(cell, d) -> str:
    if cell is None:
        return "-"
    m, s, n = cell[d]
    return f"{m:.1f}" + ("" if math.isnan(s) else f" ± {s:.1f}") + f" (n={n})"


def _base_row(label: str, base: dict, key) -> str | None:
    row = base.get(key)
    if not row:
        return None
    return f"| {label}: base model, no finetuning | " + " | ".join(
        f"{_fmt(row.get(f), 'forward')} | - | {_fmt(row.get(f), 'reverse')} | -" for f in FAMILIES) + " |"


def render_poems(poem_runs: list[dict]) -> str:
    """LLaDA's reversal-poem test: ours (LLaDA's contains rule and exact match) beside its Table 4."""
    lines = ["Reversal poems (LLaDA's rule: the answer line occurs in the output; %; exact match in brackets)", "",
             "| Model | weights | Forward | Reverse | n |", "|---|---|---|---|---|"]
    for r in sorted(poem_runs, key=lambda r: (r["model"], r["weights"])):
        p = r["poems"]
        lines.append(f"| {r['model']} | {r['weights']} | {100 * p['forward']['contains']:.1f} "
                     f"({100 * r['forward']['final']:.1f}) | {100 * p['reverse']['contains']:.1f} "
                     f"({100 * r['reverse']['final']:.1f}) | {p['forward']['n']} |")
    for name, (f, rv) in LLADA_TABLE4.items():
        lines.append(f"| {name} (LLaDA paper, Table 4) | - | {f} | {rv} | 496 |")
    return "\n".join(lines)


def render(table: dict, metric: str, which: str, base: dict | None = None) -> str:
    head = "| Train dataset | " + " | ".join(
        f"{f} F (ours) | {f} F (paper) | {f} R (ours) | {f} R (paper)" for f in FAMILIES) + " |"
    lines = [f"Table 1 ({metric} match, {WHICH_LABEL[which]}; %, mean ± s.e.m. over seeds)", "", head,
             "|" + "---|" * (1 + 4 * len(FAMILIES))]
    for ds, dr, label in TABLE1_ROWS:
        cells = []
        for f in FAMILIES:
            cell = table.get((ds, dr), {}).get(f)
            pf, pr = PAPER_TABLE1[(ds, dr)][f]
            cells += [_fmt(cell, "forward"), f"{pf}", _fmt(cell, "reverse"), f"{pr}"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append(_base_row(label, base or {}, (ds, dr)))
    known = {(d, r) for d, r, _ in TABLE1_ROWS}
    for ds, dr in sorted(k for k in table if k not in known):
        lines.append(f"| {ds} {dr} (not in Table 1) | " + " | ".join(
            f"{_fmt(table[(ds, dr)].get(f), 'forward')} | - | {_fmt(table[(ds, dr)].get(f), 'reverse')} | -"
            for f in FAMILIES) + " |")
    for ds, dr in sorted(k for k in (base or {}) if k not in known):
        lines.append(_base_row(f"{ds} {dr} (not in Table 1)", base, (ds, dr)))
    lines = [ln for ln in lines if ln is not None]
    others = sorted({f for row in [*table.values(), *(base or {}).values()] for f in row} - set(FAMILIES))
    if others:
        lines.append(f"\nRuns of other model families not shown: {', '.join(others)}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python scripts/table1.py", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("paths", nargs="*", default=["runs/table1"],
                   help="run directories, or roots searched recursively for results.json (one per run)")
    p.add_argument("--metric", default="exact", choices=("exact", "prefix"),
                   help="exact (the paper's) | prefix (secondary; recorded for the final evaluation only)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--final", dest="which", action="store_const", const="final",
                       help="final-epoch accuracy instead of the best over checkpoints")
    which.add_argument("--which", dest="which", choices=("best", "final"), default=None,
                       help="best (default for exact: Appendix D's best-of-checkpoints) | final")
    p.add_argument("--out", default=None, help="also write the table (markdown) and table1.json beside it")
    return p


def main(argv=None) -> int:
    return main_interruptible(_main, argv)


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)  # exits 2 on bad flags
    if args.which is None:
        args.which = "final" if args.metric == "prefix" else "best"
    if args.metric == "prefix" and args.which == "best":
        print("error: the prefix metric is recorded for the final evaluation only; add --final", file=sys.stderr)
        return EXIT_BAD_ARGS
    try:
        runs = find_runs(args.paths)
        if not runs:
            raise FileNotFoundError(f"no results.json under {', '.join(args.paths)}")
        parts = split_runs(runs)
        table = collect(parts["runs"], args.metric, args.which)
        base = collect(parts["base"], args.metric, "final")  # one evaluation each: best = final
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {err}".splitlines()[0], file=sys.stderr)
        return EXIT_FAILURE
    text = render(table, args.metric, args.which, base)
    if parts["poems"]:
        text += "\n\n" + render_poems(parts["poems"])
    if parts["adapter"]:
        text += f"\n\n{len(parts['adapter'])} evaluate.py result(s) of saved adapters not shown (their runs are)."
    print(text)
    if args.out:
        out = Path(args.out)
        try:
            out.write_text(text + "\n")
            out.with_suffix(".json").write_text(json.dumps(
                {"which": args.which, "metric": args.metric,
                 "rows": {f"{ds}/{dr}": row for (ds, dr), row in table.items()},
                 "base_rows": {f"{ds}/{dr}": row for (ds, dr), row in base.items()}}, indent=2))
        except OSError as err:
            print(f"error: cannot write {out}: {err.strerror or err}", file=sys.stderr)
            return EXIT_FAILURE
    return 0

