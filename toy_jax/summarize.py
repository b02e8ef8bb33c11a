"""Per-seed summary of toy run directories as a markdown table (reads only results.json / metrics.jsonl).

    python scripts/summarize_runs.py runs/paper_L20_s0 runs/other_run [--out table.md]

For each run, model and seed: the training steps of the evaluated weights, top-3 success (%) forward / reverse for
every reading (infill, completion, infill_letter = infill with the pad output `0` excluded; see
`toy_jax.evaluate`; '-' where a run from before that reading lacks it) with raw and EMA weights,
and the last tracked [M]->cue attention weight in forward ("[M] ... B") and reverse
("B ... [M]") contexts (raw weights).
"""
# The logic of scripts/summarize_runs.py (which only calls `main`).
from __future__ import annotations

import sys
from pathlib import Path

from plumbing import io
from plumbing.cli import OneLineParser, run_main
from toy_jax import records

PROTOCOLS = ("infill", "completion", "infill_letter")


def _last_tracking(run: Path, name: str, seed: int, step: int) -> dict:
    """The last tracking row of (name, seed) at or before `step` (the evaluated weights)."""
    rows = [r for r in records.read_metrics(run, name, seed, tracked=True)
            if r.get("step", 0) <= step]
    return rows[-1] if rows else {}


def summarize(run_dirs: list[Path]) -> str:
    head = ["run", "model", "seed", "step", "weights"]
    head += [f"{d} {p}" for p in PROTOCOLS for d in ("fwd", "rev")]
    head += ["attn→cue fwd", "attn→cue rev"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in run_dirs:
        res = records.read_results(run)
        step = res["config"]["train"]["steps"]  # results.json is written when training ends
        for seed, models in records.per_weights(res).items():
            for name, by_w in models.items():
                tr = _last_tracking(run, name, int(seed), step)
                for weights, block in by_w.items():
                    cells = [run.name, name, seed, str(step), weights]
                    cells += [f"{100 * block[d][p]['topk_success']:.1f}" if p in block[d]
                              else "-" for p in PROTOCOLS for d in ("forward", "reverse")]
                    if weights == "raw" and tr:
                        cells += [f"{tr['attn_fwd_weight']:.3g}", f"{tr['attn_rev_weight']:.3g}"]
                    else:
                        cells += ["", ""]
                    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    """Exit codes (`plumbing.cli`): 0 done, 1 a malformed results.json or an unwritable --out,
    2 bad arguments (a run without results.json), 130 interrupted."""
    return run_main("summarize_runs.py", _main, argv)


def _main(argv) -> int:
    ap = OneLineParser(prog="summarize_runs.py", description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="toy run directories (with results.json)")
    ap.add_argument("--out", type=Path, help="also write the table to this markdown file")
    args = ap.parse_args(argv)
    for run in args.runs:
        if not (run / "results.json").is_file():
            print(f"summarize_runs.py: error: {run} has no results.json", file=sys.stderr)
            return 2
    try:
        table = summarize(args.runs)
    except (KeyError, ValueError) as e:
        print(f"summarize_runs.py: error: malformed results.json ({e})", file=sys.stderr)
        return 1
    print(table, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        io.write_text(args.out, table)
    return 0

