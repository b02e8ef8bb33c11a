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


# ---------------------------------------------------------------- two runs compared
TIMING = ("time_s",)  # metrics.jsonl fields that are wall-clock, not results


def _leaves(tree, path: str = ""):
    """(path, number) of every numeric leaf of a JSON tree."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _leaves(v, f"{path}/{k}")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _leaves(v, f"{path}[{i}]")
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield path, tree


def _count(a: dict, b: dict) -> dict:
    """Identical / total over the union of numeric leaves; the largest difference, first few."""
    keys = list(dict.fromkeys([*a, *b]))
    diff = [k for k in keys if a.get(k) != b.get(k)]
    gaps = [abs(a[k] - b[k]) for k in diff if k in a and k in b]
    return {"identical": len(keys) - len(diff), "total": len(keys),
            "largest_difference": max(gaps, default=0.0), "first_differences": diff[:5]}


def compare(run_a: Path | str, run_b: Path | str) -> dict:
    """How far two run directories agree, number by number: the config, every numeric field of
    results.json's per-seed readings, seed means and s.e.m.s, and every metrics.jsonl row
    matched by (model, seed, step) without its wall-clock fields (`TIMING`). A determinism or
    before/after check: the same command at two commits, or on two machines."""
    out = {"runs": [str(run_a), str(run_b)], "config_equal": read_config(run_a) == read_config(run_b)}
    ra, rb = read_results(run_a), read_results(run_b)
    if ra is None or rb is None:
        raise ValueError(f"{run_b if ra else run_a} has no results.json (training unfinished)")
    for part in ("per_seed", "models", "models_sem"):
        out[part] = _count(dict(_leaves(ra.get(part, {}))), dict(_leaves(rb.get(part, {}))))
    row = lambda r: {k: v for k, v in r.items() if k not in TIMING}
    ma = {(r["model"], r["seed"], r["step"]): row(r) for r in read_metrics(run_a)}
    mb = {(r["model"], r["seed"], r["step"]): row(r) for r in read_metrics(run_b)}
    out["metrics_rows"] = {"identical": sum(ma[k] == mb.get(k) for k in ma),
                           "total": len(set(ma) | set(mb)),
                           "only_in_one": len(set(ma) ^ set(mb))}
    parts = [out[p] for p in ("per_seed", "models", "models_sem", "metrics_rows")]
    out["bit_identical"] = out["config_equal"] and all(p["identical"] == p["total"] for p in parts)
    out["provenance_of_runs"] = [ra.get("provenance"), rb.get("provenance")]  # None: older runs
    return out
