"""Figure 7 analysis of a finished run directory: writes DIR/analysis.json.

    python largescale_torch/analyze.py --run DIR [--adapter final|best_forward|best_reverse]

(a)/(b) probability and rank of the ground-truth first token on reverse queries (any model);
(c) attention-score correlation of "[M] is B" vs "B is [M]" (MDM on Parent-Child only).
Plot several runs with `python largescale_torch/plot_figure7.py --runs DIR... --out fig7.png`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ADAPTERS = ("final", "best_forward", "best_reverse")


def analyze_run(run_dir: str, adapter: str = "final", max_examples: int | None = None, min_group: int = 5) -> dict:
    import numpy as np
    import torch

    from largescale_torch.analysis import attention_correlation, first_token_stats
    from largescale_torch.data import Example
    from largescale_torch.modeling import load_adapter, load_base, pick_dtype, resolve_model, rope_theta_of

    run = Path(run_dir)
    if adapter not in ADAPTERS:
        raise ValueError(f"unknown adapter {adapter!r}; choose one of {', '.join(ADAPTERS)}")
    for name in ("config.json", "dataset.json"):
        if not (run / name).is_file():
            raise FileNotFoundError(f"{run} is not a run directory (no {name})")
    if not (run / adapter / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{run / adapter} holds no adapter")
    cfg = json.loads((run / "config.json").read_text())["config"]
    data = json.loads((run / "dataset.json").read_text())
    spec = resolve_model(cfg["model"], cfg.get("data_dir"))
    base, tokenizer, ids = load_base(spec, pick_dtype(cfg.get("dtype", "auto")))
    model = load_adapter(base, run / adapter).eval()
    if torch.cuda.is_available():
        model = model.cuda()
    reverse = [Example(e["prompt"], e["target"], tuple(e["accepted"]), e["entity"]) for e in data["reverse"]]
    reverse = reverse[:max_examples]
    stats = first_token_stats(model, tokenizer, ids, reverse, spec.is_mdm)
    probs = np.array([s["prob"] for s in stats])
    ranks = np.array([s["rank"] for s in stats])
    result = {
        "run": str(run), "adapter": adapter, "model": cfg["model"], "family": spec.family, "is_mdm": spec.is_mdm,
        "dataset": cfg["dataset"], "direction": cfg["direction"], "seed": cfg["seed"],
        "reverse_first_token": {"n": len(stats), "prob": probs.tolist(), "rank": ranks.tolist(),
                                "prob_mean": float(probs.mean()), "prob_median": float(np.median(probs)),
                                "rank_median": float(np.median(ranks)), "rank_mean": float(ranks.mean())},
    }
    if spec.is_mdm and cfg["dataset"] == "parent_child":
        pairs = data["selection"]["pairs"][:max_examples]
        c = base.config
        result["attention_correlation"] = attention_correlation(
            model, tokenizer, ids, pairs, cfg["direction"], c.head_dim, rope_theta_of(c), min_group)
    tmp = run / "analysis.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, run / "analysis.json")
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python largescale_torch/analyze.py", description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="run directory written by finetune.py")
    p.add_argument("--adapter", default="final", help="final | best_forward | best_reverse")
    p.add_argument("--max-examples", type=int, default=None)
    p.add_argument("--min-group", type=int, default=5, help="fewest pairs per Delta1+Delta2 group")
    args = p.parse_args(argv)
    try:
        res = analyze_run(args.run, args.adapter, args.max_examples, args.min_group)
    except (ValueError, OSError, RuntimeError, KeyError) as err:
        print(f"error: {err}".splitlines()[0], file=sys.stderr)
        return 1
    ft = res["reverse_first_token"]
    msg = f"reverse first token: mean prob {ft['prob_mean']:.4f}, median rank {ft['rank_median']:.0f}"
    if "attention_correlation" in res:
        msg += f"; attention corr (all pairs, mean over layers/heads) {res['attention_correlation']['overall_mean']:.3f}"
    print(msg + f" -> {args.run}/analysis.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
