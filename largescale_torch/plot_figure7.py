"""Figure 7 from analysis.json files (reads nothing else), each run beside its controls.

    python largescale_torch/plot_figure7.py --runs DIR [DIR ...] --out figure7.png

(a)/(b) one box per run and model variant (trained, untrained, causal mask); (c) the
attention-score correlation per Delta1+Delta2 for the trained MDM (solid), the untrained base
(dashed) and the causal-mask control (dotted), with the reference (1/D) Tr R(Delta1 + Delta2)
(Theorem 4.1's bound only where Delta1 = Delta2; elsewhere an analogue, not a theorem).
Exit codes: 0 done, 2 bad arguments, 1 runtime failure, 130 interrupted (Ctrl-C).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from plumbing.cli import EXIT_USAGE, OneLineParser, fail, interrupted

VARIANT_STYLE = {"trained": ("o", "-"), "untrained": ("s", "--"), "causal_mask": ("^", ":")}


def variants(analysis: dict) -> list[tuple[str, dict]]:
    """[(name, statistics)] for the trained model and each control present in analysis.json."""
    return [("trained", analysis), *analysis.get("controls", {}).items()]


def plot(analyses: list[dict], out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    labels, probs, ranks = [], [], []
    for a in analyses:
        run = f"{a['family']} {a['direction']} s{a['seed']}"
        for name, v in variants(a):
            labels.append(f"{run} {name}")
            probs.append(v["reverse_first_token"]["prob"])
            ranks.append(v["reverse_first_token"]["rank"])
    axes[0].boxplot(probs, tick_labels=labels)
    axes[0].set_title("(a) P(ground-truth first token), reverse")
    axes[1].boxplot(ranks, tick_labels=labels)
    axes[1].set_yscale("log")
    axes[1].set_title("(b) rank of ground-truth token (1 = top)")
    for ax in axes[:2]:
        ax.tick_params(axis="x", rotation=60, labelsize=7)
    ax = axes[2]
    bound = {}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, a in enumerate(analyses):
        for name, v in variants(a):
            ac = v.get("attention_correlation")
            if not ac or not ac["by_delta"]:
                continue
            xs = [r["delta_sum"] for r in ac["by_delta"]]
            marker, line = VARIANT_STYLE.get(name, ("x", "-."))
            ax.plot(xs, [r["corr_mean"] for r in ac["by_delta"]], marker=marker, linestyle=line,
                    color=colors[i % len(colors)], label=f"{a['family']} {a['direction']} s{a['seed']} {name}")
            bound.update({r["delta_sum"]: r["trace_bound"] for r in ac["by_delta"]})
    if bound:
        xs = np.array(sorted(bound))
        ax.plot(xs, [bound[x] for x in xs], "k--", lw=1, label="(1/D) Tr R(D1+D2)")
        ax.legend(fontsize=6)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("Delta1 + Delta2")
    ax.set_title("(c) attention-score correlation: trained vs controls")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = OneLineParser(prog="python largescale_torch/plot_figure7.py", description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, help="run directories holding analysis.json")
    p.add_argument("--out", required=True, help="image file to write (e.g. figure7.png)")
    args = p.parse_args(argv)
    analyses = []
    for r in args.runs:
        f = Path(r) / "analysis.json"
        if not f.is_file():
            print(f"{p.prog}: error: {f} not found; run largescale_torch/analyze.py --run {r} first", file=sys.stderr)
            return EXIT_USAGE
        try:
            analyses.append(json.loads(f.read_text()))
        except json.JSONDecodeError as err:
            print(f"{p.prog}: error: malformed {f}: {err.msg}", file=sys.stderr)
            return EXIT_USAGE
    try:
        plot(analyses, args.out)
    except KeyboardInterrupt:
        return interrupted(p.prog)
    except (OSError, ValueError, KeyError) as err:
        return fail(p.prog, err)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
