"""Collect finetune.py run directories into Table 1 (mean +- s.e.m. over seeds beside the paper).

    python scripts/table1.py [ROOT_OR_RUN_DIR ...] [--metric exact|prefix] [--which final|best] [--out table1.md]

Every directory below the given paths that holds a results.json is one run; runs are grouped
by (model family, dataset, direction). Accuracies are printed in percent.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

from largescale_torch.constants import PAPER_TABLE1, TABLE1_ROWS

FAMILIES = ("llada", "llama", "qwen")


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


def mean_sem(values: list[float]) -> tuple[float, float]:
    n = len(values)
    m = sum(values) / n
    if n < 2:
        return m, float("nan")
    var = sum((v - m) ** 2 for v in values) / (n - 1)
    return m, math.sqrt(var / n)


def _value(run: dict, direction: str, metric: str, which: str) -> float:
    if metric == "prefix":
        return run["prefix_match"][f"{direction}_final"]
    return run[direction][which]


def collect(runs: list[dict], metric: str = "exact", which: str = "final") -> dict:
    """{(dataset, direction): {family: {"forward": (mean, sem, n), "reverse": ...}}} in percent."""
    grouped = defaultdict(list)
    for r in runs:
        grouped[(r["dataset"], r["direction"], r["family"])].append(r)
    table = defaultdict(dict)
    for (ds, dr, fam), rs in grouped.items():
        cell = {}
        for d in ("forward", "reverse"):
            m, s = mean_sem([100 * _value(r, d, metric, which) for r in rs])
            cell[d] = (m, s, len(rs))
        cell["seeds"] = sorted(r["seed"] for r in rs)
        table[(ds, dr)][fam] = cell
    return table


def _fmt(cell, d) -> str:
    if cell is None:
        return "-"
    m, s, n = cell[d]
    return f"{m:.1f}" + ("" if math.isnan(s) else f" ± {s:.1f}") + f" (n={n})"


def render(table: dict, metric: str, which: str) -> str:
    head = "| Train dataset | " + " | ".join(
        f"{f} F (ours) | {f} F (paper) | {f} R (ours) | {f} R (paper)" for f in FAMILIES) + " |"
    lines = [f"Table 1 ({metric} match, {which} accuracy, %; mean ± s.e.m. over seeds)", "", head,
             "|" + "---|" * (1 + 4 * len(FAMILIES))]
    for ds, dr, label in TABLE1_ROWS:
        cells = []
        for f in FAMILIES:
            cell = table.get((ds, dr), {}).get(f)
            pf, pr = PAPER_TABLE1[(ds, dr)][f]
            cells += [_fmt(cell, "forward"), f"{pf}", _fmt(cell, "reverse"), f"{pr}"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    extra = sorted(k for k in table if k not in {(d, r) for d, r, _ in TABLE1_ROWS})
    for ds, dr in extra:
        lines.append(f"| {ds} {dr} (not in Table 1) | " + " | ".join(
            f"{_fmt(table[(ds, dr)].get(f), 'forward')} | - | {_fmt(table[(ds, dr)].get(f), 'reverse')} | -"
            for f in FAMILIES) + " |")
    others = sorted({f for row in table.values() for f in row} - set(FAMILIES))
    if others:
        lines.append(f"\nRuns of other model families not shown: {', '.join(others)}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python scripts/table1.py", description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="*", default=["runs/table1"])
    p.add_argument("--metric", default="exact", help="exact (paper) | prefix")
    p.add_argument("--which", default="final", help="final | best (best over evaluations)")
    p.add_argument("--out", default=None, help="also write the table (markdown) and table1.json beside it")
    args = p.parse_args(argv)
    if args.metric not in ("exact", "prefix") or args.which not in ("final", "best"):
        print("error: --metric must be exact|prefix and --which final|best", file=sys.stderr)
        return 1
    if args.metric == "prefix" and args.which == "best":
        print("error: the prefix metric is recorded for the final evaluation only", file=sys.stderr)
        return 1
    try:
        runs = find_runs(args.paths)
        if not runs:
            raise FileNotFoundError(f"no results.json under {', '.join(args.paths)}")
        table = collect(runs, args.metric, args.which)
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {err}".splitlines()[0], file=sys.stderr)
        return 1
    text = render(table, args.metric, args.which)
    print(text)
    if args.out:
        out = Path(args.out)
        out.write_text(text + "\n")
        out.with_suffix(".json").write_text(json.dumps(
            {f"{ds}/{dr}": row for (ds, dr), row in table.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
