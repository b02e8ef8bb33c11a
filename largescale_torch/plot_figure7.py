"""Figure 7 from analysis.json files (reads nothing else).

    python largescale_torch/plot_figure7.py --runs DIR [DIR ...] --out figure7.png
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def plot(analyses: list[dict], out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    labels = [f"{a['family']} {a['direction']} s{a['seed']}" for a in analyses]
    probs = [a["reverse_first_token"]["prob"] for a in analyses]
    ranks = [a["reverse_first_token"]["rank"] for a in analyses]
    axes[0].boxplot(probs, tick_labels=labels)
    axes[0].set_title("(a) P(ground-truth first token), reverse")
    axes[1].boxplot(ranks, tick_labels=labels)
    axes[1].set_yscale("log")
    axes[1].set_title("(b) rank of ground-truth token (1 = top)")
    for ax in axes[:2]:
        ax.tick_params(axis="x", rotation=45)
    ax = axes[2]
    bound_x, bound_y = [], []
    for a, lab in zip(analyses, labels):
        ac = a.get("attention_correlation")
        if not ac or not ac["by_delta"]:
            continue
        xs = [r["delta_sum"] for r in ac["by_delta"]]
        ax.plot(xs, [r["corr_mean"] for r in ac["by_delta"]], "o-", label=lab)
        bound_x += xs
        bound_y += [r["trace_bound"] for r in ac["by_delta"]]
    if bound_x:
        order = np.argsort(bound_x)
        ax.plot(np.array(bound_x)[order], np.array(bound_y)[order], "k--", label="(1/D) Tr R(D1+D2)")
        ax.legend(fontsize=7)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("Delta1 + Delta2")
    ax.set_title("(c) MDM attention-score correlation")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python largescale_torch/plot_figure7.py", description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    analyses = []
    for r in args.runs:
        f = Path(r) / "analysis.json"
        if not f.is_file():
            print(f"error: {f} not found; run largescale_torch/analyze.py --run {r} first", file=sys.stderr)
            return 1
        analyses.append(json.loads(f.read_text()))
    plot(analyses, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
