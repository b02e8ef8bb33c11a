"""Compact tables of the miniature for RESULTS.md (rendered by `scripts/make_results.py`).

The full report, with every reading and per-seed list, is `report.render_markdown`; these three
tables are the verdict: exact match and entity rank with chance (mean ± s.e.m. over seeds), the
reverse rank per seed, and the Figure 7 (c) correlation beside its controls.
"""
from __future__ import annotations

import math

from largescale_torch.mini.report import LABELS, VARIANTS, _get, _rows, cell, chance, count, families, per_seed


def verdict_table(result: dict) -> str:
    """Dataset x model: exact match, entity ranks with chance, the no-shared-word subset, the positive control."""
    L = ["| Dataset | Model | fwd exact % | rev exact % | fwd rank | rev rank | rev rank, no shared name word (n) "
         "| positive control | chance fwd / rev |", "|---|---|---|---|---|---|---|---|---|"]
    for d in result["tasks"]:
        for f in families(result):
            rs = _rows(result, f)
            g = lambda *path: [_get(r, d, path) for r in rs]  # noqa: E731
            t = lambda *path: g("readings", "trained", *path)  # noqa: E731
            pc = cell(t("positive_control", "mean_rank"))
            if f != "llada":  # the ARM's prefix-only score: what left-to-right generation can use
                pc += f" ({cell(t('positive_control', 'prefix', 'mean_rank'))})"
            L.append(f"| {d} | {LABELS[f]} | {cell([100 * x for x in g('forward', 'best')])} | "
                     f"{cell([100 * x for x in g('reverse', 'best')])} | {cell(t('forward_rank', 'mean_rank'))} | "
                     f"{cell(t('reverse_rank', 'mean_rank'))} | {cell(t('reverse_rank', 'no_overlap', 'mean_rank'))} "
                     f"({count(t('reverse_rank', 'no_overlap', 'n'))}) | {pc} | "
                     f"{chance(t('forward_rank', 'n_candidates')[0])} / {chance(t('reverse_rank', 'n_candidates')[0])} |")
    return "\n".join(L) + "\n"


def seeds_table(result: dict) -> str:
    """Per seed: exact match and entity rank, forward and reverse (finetuned weights)."""
    seeds = sorted({r["seed"] for r in result["records"]})
    L = [f"| Dataset | Model | fwd exact %, seeds {', '.join(map(str, seeds))} | rev exact % | fwd rank | rev rank "
         "| chance fwd / rev |", "|---|---|---|---|---|---|---|"]
    for d in result["tasks"]:
        for f in families(result):
            rs = sorted(_rows(result, f), key=lambda r: r["seed"])
            exact = lambda k: per_seed([100 * _get(r, d, (k, "best")) for r in rs], ".0f")  # noqa: E731
            rank = lambda k: per_seed([_get(r, d, ("readings", "trained", k, "mean_rank")) for r in rs])  # noqa: E731
            n = lambda k: _get(rs[0], d, ("readings", "trained", k, "n_candidates"))  # noqa: E731
            L.append(f"| {d} | {LABELS[f]} | {exact('forward')} | {exact('reverse')} | {rank('forward_rank')} | "
                     f"{rank('reverse_rank')} | {chance(n('forward_rank'))} / {chance(n('reverse_rank'))} |")
    return "\n".join(L) + "\n"


def controls_table(result: dict) -> str:
    """The MDM's Figure 7 (c) correlation and reverse rank for the finetuned weights and each control."""
    L = ["| Dataset | weights (MDM) | (c) attention corr | reverse rank | positive control |", "|---|---|---|---|---|"]
    rs = _rows(result, "llada")
    for d in result["tasks"]:
        for v, label in VARIANTS.items():
            g = lambda *path: [_get(r, d, ("readings", v, *path)) for r in rs]  # noqa: E731
            corr = g("attention", "corr_mean")
            if all(math.isnan(x) for x in corr):
                continue  # no (c) for this dataset (its reverse prompt does not repeat B)
            L.append(f"| {d} | {label} | {cell(corr, '.3f')} | {cell(g('reverse_rank', 'mean_rank'))} | "
                     f"{cell(g('positive_control', 'mean_rank'))} |")
    return "\n".join(L) + "\n"


def tables(result: dict, name: str) -> dict[str, str]:
    """The three tables under the block names NAME, NAME_seeds and NAME_controls."""
    return {name: verdict_table(result), f"{name}_seeds": seeds_table(result),
            f"{name}_controls": controls_table(result)}
