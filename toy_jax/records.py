"""Reading a toy run directory's files back (JSON only, no jax): the one reader of
config.json, metrics.jsonl and results.json for analysis, plots, tables and digests.

results.json stores, per seed and model, the raw-weights evaluation with the EMA one nested
inside it (`{forward, reverse, ema: {forward, reverse}}`), and `headline` says which weights a
model reports (`rundir.HEADLINE`: EMA for both models). `weights_of` turns one such entry into
the per-weights view `{"raw": ..., "ema": ...}`; it also accepts that view itself, so a reader
written against it loads every run directory made so far, the GPU runs in ../shared/runs
included. `reading(results, seed, model)` is "the numbers this model reports for this seed".
"""
from __future__ import annotations

import json
from pathlib import Path

CONFIG, METRICS, RESULTS = "config.json", "metrics.jsonl", "results.json"
WEIGHTS = ("raw", "ema")


def read_json(path: Path | str) -> dict:
    return json.loads(Path(path).read_text())


def read_config(run: Path | str) -> dict:
    """config.json of a run directory (a `RunConfig.to_dict()`)."""
    return read_json(Path(run) / CONFIG)


def read_results(run: Path | str) -> dict | None:
    """results.json of a run directory, None if it has none (training unfinished)."""
    path = Path(run) / RESULTS
    return read_json(path) if path.is_file() else None


def read_metrics(run: Path | str, model: str | None = None, seed: int | None = None,
                 tracked: bool = False) -> list[dict]:
    """metrics.jsonl rows (one per model, seed and logged chunk), in file order; `model` /
    `seed` select, `tracked` keeps the rows that carry in-loop tracking. [] without a file."""
    path = Path(run) / METRICS
    if not path.is_file():
        return []
    rows = (json.loads(l) for l in path.read_text().splitlines() if l.strip())
    return [r for r in rows if (model is None or r.get("model") == model)
            and (seed is None or r.get("seed") == seed)
            and (not tracked or "attn_fwd_weight" in r)]


def weights_of(entry: dict) -> dict:
    """{"raw": block, "ema": block} (no "ema" for a model without EMA weights) of one seed's
    result for one model, from results.json's nested entry or from this view itself."""
    if "raw" in entry:
        return {w: entry[w] for w in WEIGHTS if entry.get(w)}
    raw = {k: v for k, v in entry.items() if k != "ema"}
    return {"raw": raw, **({"ema": entry["ema"]} if entry.get("ema") else {})}


def headline(results: dict, model: str) -> str:
    """The weights `model` reports ("ema" or "raw"; "raw" in files older than `headline`)."""
    return results.get("headline", {}).get(model, "raw")


def reading(results: dict, seed, model: str, weights: str | None = None) -> dict:
    """One seed's {direction: {protocol: {metric: value}}} of `model` with `weights` (default:
    the model's headline weights)."""
    entry = weights_of(results["per_seed"][str(seed)][model])
    return entry[weights or headline(results, model)]


def per_weights(results: dict) -> dict:
    """{seed: {model: {"raw"|"ema": {direction: {protocol: {metric: value}}}}}} of results.json."""
    return {seed: {name: weights_of(m) for name, m in models.items()}
            for seed, models in results["per_seed"].items()}
