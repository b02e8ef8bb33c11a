"""Timing LLaDA's sampler: batched vs one query at a time, and exact vs Fast-dLLM-style fast decoding.

`bench_decoding` decodes the same queries with every setting through the evaluation's own
path (`evaluation.predict`: batches sorted by prompt length) and reports wall time (best of
`repeats`), forward passes per query (model calls a query needs alone, as
`evaluate_directions` reports them) and per batch, agreement with the exact sampler's
answers, and exact match with its change from the exact sampler. Models: a trained run
directory (e.g. one of `scripts/mini_table1.py`'s, queries = its forward and reverse
evaluation sets) or tiny-llada with random weights (Parent-Child queries; exact match is
then meaningless, agreement is what counts).
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import torch

from largescale_torch.batching import encode
from largescale_torch.constants import ConfigError
from largescale_torch.data import build_task
from largescale_torch.evaluation import EvalConfig, exact_match, predict
from largescale_torch.generation import mdm_generate
from largescale_torch.modeling import load_base, resolve_model
from plumbing.provenance import commit_of, record

DEFAULT_TAUS = (0.9, 0.7, 0.5)
WEIGHTS = ("final", "best_forward", "best_reverse")


def load_run(run_dir: str | Path, weights: str = "final", data_dir: str | None = None):
    """(model, tokenizer, ids, forward, reverse, eval batch size, chat) of a finetune.py run directory.

    The base model is the run's `--model`; `weights` names the saved subdirectory: a full
    finetune's `model.safetensors` is loaded over the base, a LoRA adapter wrapped around it.
    """
    run, sub = Path(run_dir), Path(run_dir) / weights
    if not (run / "config.json").is_file() or not sub.is_dir():
        raise ConfigError(f"{run} is not a run directory with config.json and {weights}/")
    cfg = json.loads((run / "config.json").read_text())["config"]
    spec = resolve_model(cfg["model"], data_dir or cfg.get("data_dir"))
    if not spec.is_mdm:
        raise ConfigError(f"{run} holds an ARM ({spec.family}); the sampler bench needs an MDM")
    model, tok, ids = load_base(spec, torch.float32)
    if (sub / "model.safetensors").is_file():
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(sub / "model.safetensors")))
    else:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(sub))
    task = build_task(cfg["dataset"], cfg["direction"], data_dir=data_dir or cfg.get("data_dir"),
                      seed=cfg.get("data_seed", 0), d2p_completions=cfg.get("d2p_completions", "name"))
    n = cfg.get("max_eval_examples")
    return (model.eval(), tok, ids, list(task.forward[:n]), list(task.reverse[:n]),
            cfg.get("eval_batch_size", 32), bool(cfg.get("chat_template", True)))


def run_commit(run_dir: str | Path) -> str | None:
    """The git commit a run directory was trained at (its config.json provenance)."""
    return commit_of(json.loads((Path(run_dir) / "config.json").read_text()).get("provenance"))


def load_tiny(queries: int, data_dir: str | None = None):
    """tiny-llada (random weights) on Parent-Child's first `queries` forward and reverse queries."""
    task = build_task("parent_child", "p2c", data_dir=data_dir)
    model, tok, ids = load_base(resolve_model("tiny-llada", data_dir), torch.float32)
    return model, tok, ids, list(task.forward[:queries]), list(task.reverse[:queries]), 64, False


def variants(taus: tuple[float, ...], cache: bool = True) -> list[tuple[str, dict]]:
    """(label, EvalConfig overrides): the exact sampler, threshold per tau, threshold + prefix cache per tau."""
    out = [("exact (paper)", {})]
    out += [(f"threshold {t:g}", {"threshold": t}) for t in taus]
    if cache:
        out += [(f"threshold {t:g} + prefix cache", {"threshold": t, "prefix_cache": True}) for t in taus]
    return out


def bench_decoding(model, tok, ids, forward, reverse, base: EvalConfig, taus=DEFAULT_TAUS, repeats: int = 3,
                   cache: bool = True) -> list[dict]:
    """One row per decoding variant; differences are against the first (exact) row."""
    predict(model, tok, ids, forward[:2], True, base, progress=False)  # warm-up
    rows, ref = [], None
    for label, overrides in variants(tuple(taus), cache):
        cfg = dataclasses.replace(base, **overrides)
        cfg.validate()
        best, res = float("inf"), {}
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = {}
            for name, examples in (("forward", forward), ("reverse", reverse)):
                stats: dict = {}
                preds = predict(model, tok, ids, examples, True, cfg, progress=False, stats=stats)
                res[name] = (preds, stats)
            best = min(best, time.perf_counter() - t0)
        ref = ref or res
        row = {"decoding": label, **cfg.decoding(), "wall_s": best, "queries": len(forward) + len(reverse)}
        passes = [p for d in res for p in res[d][1]["row_forward_passes"]]
        row["passes_per_query"] = sum(passes) / len(passes)
        row["batch_calls"] = sum(res[d][1]["forward_passes"] for d in res)
        for d, examples in (("forward", forward), ("reverse", reverse)):
            preds = res[d][0]
            row[f"{d}_agreement"] = sum(a == b for a, b in zip(preds, ref[d][0])) / len(preds)
            row[f"{d}_exact"] = sum(exact_match(p, e.accepted) for p, e in zip(preds, examples)) / len(preds)
        rows.append(row)
    for row in rows:
        row["speedup"] = rows[0]["wall_s"] / row["wall_s"]
        for d in ("forward", "reverse"):
            row[f"{d}_exact_change_points"] = 100 * (row[f"{d}_exact"] - rows[0][f"{d}_exact"])
    return rows


def bench_batching(model, tok, ids, examples, base: EvalConfig) -> dict:
    """The batched sampler against the same sampler with batch 1, on the same queries."""
    prompts = [list(encode(tok, e.prompt, e.target, chat=base.chat_template).prompt) for e in examples]
    kw = base.sampler_kwargs()
    mdm_generate(model, prompts[:2], ids, **kw)  # warm-up
    t0 = time.perf_counter()
    batched = []
    for s in range(0, len(prompts), base.batch_size):
        batched += mdm_generate(model, prompts[s: s + base.batch_size], ids, **kw)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = [mdm_generate(model, [q], ids, **kw)[0] for q in prompts]
    t_single = time.perf_counter() - t0
    return {"queries": len(prompts), "batch_size": base.batch_size, "batched_s": t_batched, "single_s": t_single,
            "speedup": t_single / t_batched, "identical": sum(a == b for a, b in zip(batched, single))}


def provenance() -> dict:
    """`plumbing.provenance.record` (commit, date, CPU, cores, torch and transformers versions)
    with the torch threads and the 1-minute load average of this measurement."""
    return record(libraries=("torch", "transformers"), torch_threads=torch.get_num_threads(),
                  load_average_1min=round(os.getloadavg()[0], 2))


def _provenance_line(prov: dict) -> str:
    """The report's provenance sentence, from this record or the older one (bench_decoding_*.json
    before plumbing.provenance.record: git_commit, git_dirty, torch, transformers, cpu_count, date_utc)."""
    libs = prov.get("libraries") or prov
    dirty = prov.get("dirty", prov.get("git_dirty"))
    return (f"Commit {commit_of(prov)}{' (dirty)' if dirty else ''}, torch {libs.get('torch')}, "
            f"transformers {libs.get('transformers')}, {prov['cpu']} ({prov.get('cores', prov.get('cpu_count'))} "
            f"cores, {prov['torch_threads']} torch thread(s), 1-minute load average {prov['load_average_1min']}), "
            f"{prov.get('date', prov.get('date_utc'))}.")


def render_markdown(result: dict) -> str:
    """The decoding table (and the batching line, if measured) as Markdown."""
    prov = result["provenance"]
    trained = (f" (weights `{result['weights']}`, trained at commit {result['run_commit']})"
               if result.get("weights") else "")
    lines = [f"# Sampler bench: {result['model']}{trained}", "",
             f"{result['queries']} queries ({result['n_forward']} forward + {result['n_reverse']} reverse), batch "
             f"{result['batch_size']}, gen length {result['gen_length']}, block {result['block_length']}, "
             f"{result['steps']} steps, temperature 0; wall time = best of {result['repeats']} runs of both "
             "directions. Passes/query: model calls a query needs alone; batch calls: calls made for all batches. "
             "Agreement: answers identical to the exact sampler's. Exact match in %, change in points.", "",
             "| decoding | wall s | speed-up | passes/query | batch calls | agreement fwd / rev | exact fwd / rev "
             "| change fwd / rev |", "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['decoding']} | {r['wall_s']:.2f} | {r['speedup']:.1f}x | {r['passes_per_query']:.2f} | "
                     f"{r['batch_calls']} | {100 * r['forward_agreement']:.1f} / {100 * r['reverse_agreement']:.1f} | "
                     f"{100 * r['forward_exact']:.1f} / {100 * r['reverse_exact']:.1f} | "
                     f"{r['forward_exact_change_points']:+.1f} / {r['reverse_exact_change_points']:+.1f} |")
    if result.get("batching"):
        b = result["batching"]
        lines += ["", f"Batched vs one at a time (exact sampler, {b['queries']} reverse queries, batch "
                      f"{b['batch_size']}): {b['batched_s']:.2f} s vs {b['single_s']:.2f} s, {b['speedup']:.1f}x; "
                      f"identical answers {b['identical']}/{b['queries']}."]
    lines += ["", _provenance_line(prov), "", f"Command: `{result['command']}`", ""]
    return "\n".join(lines)
