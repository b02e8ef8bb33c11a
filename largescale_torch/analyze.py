"""Figure 7 analysis of a finished run directory, beside its controls: writes DIR/analysis.json.

    python largescale_torch/analyze.py --run DIR [--adapter final|best_forward|best_reverse] [--max-examples N]

(a)/(b) probability and rank of the ground-truth first token on reverse queries (any model);
(c) attention-score correlation of "[M] is B" vs "B is [M]" (MDMs, LLaDA and Dream, on Parent-Child only).
Every statistic is computed three times: for the trained model, for the untrained base model
(no adapter; for a full-finetune run, the initial weights), and, for an MDM, for the trained
weights run with a causal attention mask. A correlation that the controls show too is not
evidence that training built it.
Plot several runs with `python largescale_torch/plot_figure7.py --runs DIR... --out fig7.png`.
Exit codes: 0 done, 2 bad arguments, 1 runtime failure, 130 interrupted (Ctrl-C).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from plumbing.cli import EXIT_USAGE, FAILURES, OneLineParser, fail, interrupted
from plumbing.io import write_json

ADAPTERS = ("final", "best_forward", "best_reverse")
CONTROLS = {
    "untrained": "the base model before finetuning (no adapter / initial weights)",
    "causal_mask": "the trained weights run with a causal attention mask (MDM only)",
}


def check_run_dir(run: Path, adapter: str) -> None:
    """ValueError unless `run` is a finished run directory holding the requested weights."""
    if adapter not in ADAPTERS:
        raise ValueError(f"unknown adapter {adapter!r}; choose one of {', '.join(ADAPTERS)}")
    for name in ("config.json", "dataset.json"):
        if not (run / name).is_file():
            raise ValueError(f"{run} is not a run directory (no {name})")
    if not any((run / adapter / f).is_file() for f in ("adapter_config.json", "config.json")):
        raise ValueError(f"{run / adapter} holds no adapter or model")


def _statistics(model, tokenizer, ids, spec, reverse, pairs, direction, base_config, min_group, chat) -> dict:
    # lazy (here and in analyze_run): numpy, torch and the modules that load them; --help stays light
    import numpy as np

    from largescale_torch.analysis import attention_correlation, first_token_stats
    from largescale_torch.modeling import rope_theta_of

    stats = first_token_stats(model, tokenizer, ids, reverse, spec.is_mdm, chat=chat, logits_shift=spec.logits_shift)
    probs = np.array([s["prob"] for s in stats])
    ranks = np.array([s["rank"] for s in stats])
    out = {"reverse_first_token": {"n": len(stats), "prob": probs.tolist(), "rank": ranks.tolist(),
                                   "prob_mean": float(probs.mean()), "prob_median": float(np.median(probs)),
                                   "rank_median": float(np.median(ranks)), "rank_mean": float(ranks.mean())}}
    if pairs is not None:
        out["attention_correlation"] = attention_correlation(
            model, tokenizer, ids, pairs, direction, base_config.head_dim, rope_theta_of(base_config), min_group,
            logits_shift=spec.logits_shift)
    return out


def analyze_run(run_dir: str, adapter: str = "final", max_examples: int | None = None, min_group: int = 5) -> dict:
    """Figure 7 statistics of the trained model and of its controls; writes RUN/analysis.json."""
    import torch

    from largescale_torch.analysis import causal_attention
    from largescale_torch.data import Example
    from largescale_torch.modeling import check_bidirectional, load_adapter, load_base, pick_dtype, resolve_model

    run = Path(run_dir)
    check_run_dir(run, adapter)
    cfg = json.loads((run / "config.json").read_text())["config"]
    data = json.loads((run / "dataset.json").read_text())
    spec = resolve_model(cfg["model"], cfg.get("data_dir"))
    dtype = pick_dtype(cfg.get("dtype", "auto"))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    base, tokenizer, ids = load_base(spec, dtype)
    reverse = [Example(e["prompt"], e["target"], tuple(e["accepted"]), e["entity"]) for e in data["reverse"]]
    reverse = reverse[:max_examples]
    pairs = None
    if spec.is_mdm and cfg["dataset"] == "parent_child":
        pairs = data["selection"]["pairs"][:max_examples]
    chat = cfg.get("chat_template", False)  # runs written before chat templates used raw prompts
    stats = lambda m: _statistics(m, tokenizer, ids, spec, reverse, pairs, cfg["direction"], base.config,  # noqa: E731
                                  min_group, chat)

    untrained = stats(base.to(device))  # before the adapter is attached: LoRA modifies `base` in place
    if cfg.get("full_finetune"):
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(run / adapter), dtype=dtype).eval()
    else:
        model = load_adapter(base, run / adapter).eval()
    model = model.to(device)
    result = {
        "run": str(run), "adapter": adapter, "model": cfg["model"], "family": spec.family, "is_mdm": spec.is_mdm,
        "logits_shift": spec.logits_shift,
        "dataset": cfg["dataset"], "direction": cfg["direction"], "seed": cfg["seed"], **stats(model),
        "controls": {"untrained": {"description": CONTROLS["untrained"], **untrained}},
    }
    if spec.is_mdm:
        vocab = model.config.vocab_size
        with causal_attention(model):
            if check_bidirectional(model, vocab):
                raise RuntimeError("the causal-mask control is not causal with this transformers version")
            result["controls"]["causal_mask"] = {"description": CONTROLS["causal_mask"], **stats(model)}
        if not check_bidirectional(model, vocab):
            raise RuntimeError("the MDM stayed causal after the causal-mask control")
    write_json(run / "analysis.json", result, indent=1)
    return result


def summary_lines(res: dict) -> list[str]:
    """One line per model variant: mean probability, median rank and the all-pairs correlation."""
    variants = [("trained", res), *res.get("controls", {}).items()]
    lines = []
    for name, v in variants:
        ft = v["reverse_first_token"]
        msg = f"{name:<12} reverse first token: mean prob {ft['prob_mean']:.4f}, median rank {ft['rank_median']:.0f}"
        if "attention_correlation" in v:
            ac = v["attention_correlation"]
            msg += f"; attention corr (all pairs, mean over layers/heads) {ac['overall_mean']:.3f}"
        lines.append(msg)
    return lines


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python largescale_torch/analyze.py", description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="run directory written by finetune.py")
    p.add_argument("--adapter", default="final", choices=ADAPTERS, help="which saved weights to analyse")
    p.add_argument("--max-examples", type=int, default=None,
                   help="analyse only the first N reverse queries (and Parent-Child pairs); default: all")
    p.add_argument("--min-group", type=int, default=5, help="fewest pairs per Delta1+Delta2 group")
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    prog = p.prog
    try:
        if args.max_examples is not None and args.max_examples < 1:
            raise ValueError(f"--max-examples must be >= 1, got {args.max_examples}")
        if args.min_group < 2:
            raise ValueError(f"--min-group must be >= 2 (a correlation needs two pairs), got {args.min_group}")
        check_run_dir(Path(args.run), args.adapter)
    except ValueError as err:
        return fail(prog, err, EXIT_USAGE)
    try:
        res = analyze_run(args.run, args.adapter, args.max_examples, args.min_group)
    except KeyboardInterrupt:
        return interrupted(prog)
    except (*FAILURES, KeyError) as err:
        return fail(prog, err)
    print("\n".join(summary_lines(res)) + f"\n-> {args.run}/analysis.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
