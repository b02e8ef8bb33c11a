"""Run the six checks and render/write the report (used by `theory/verify.py`)."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time

import numpy as np
from tqdm import tqdm

from theory import checks


def run_all(cfg: checks.VerifyConfig, show_progress: bool | None = None) -> dict:
    """Run checks 1-6 with independent random streams derived from cfg.seed."""
    t0 = time.perf_counter()
    rng1, rng2, rng3, rng4, rng5, rng6 = (np.random.default_rng(s)
                                          for s in np.random.SeedSequence(cfg.seed).spawn(6))
    steps = 4 + len(cfg.dims) + len(cfg.pair_dims)
    # show_progress=None: a bar on an interactive terminal, silence in logs and tests.
    disable = None if show_progress is None else not show_progress
    calls = [(checks.check_closed_form, rng1, False), (checks.check_theorem41, rng2, True),
             (checks.check_eq1, rng3, False), (checks.check_table4, rng4, False),
             (checks.check_asymmetric, rng5, True), (checks.check_fixed_rho, rng6, False)]
    results = []
    with tqdm(total=steps, desc="theory checks", disable=disable, leave=False) as bar:
        for fn, rng, per_dim_progress in calls:
            t = time.perf_counter()
            r = fn(cfg, rng, progress=bar) if per_dim_progress else fn(cfg, rng)
            r["wall_s"] = time.perf_counter() - t
            results.append(r)
            if not per_dim_progress:
                bar.update(1)
    return {
        "title": "Numerical verification of Section 4.2 / Appendix C",
        "config": dataclasses.asdict(cfg),
        "seed": cfg.seed,
        "passed": all(r["passed"] for r in results),
        "n_passed": sum(r["passed"] for r in results),
        "checks": results,
        "wall_s": time.perf_counter() - t0,
    }


def render_text(report: dict) -> str:
    cfg = report["config"]
    lines = [f"{report['title']}  (preset={cfg['preset']}, seed={report['seed']}, base={cfg['base']:g})", ""]
    for r in report["checks"]:
        lines.append(f"[{'PASS' if r['passed'] else 'FAIL'}] {r['id']}. {r['name']}: {r['title']}"
                     f"  ({r['wall_s']:.1f} s)")
        lines.append(f"       {r['summary']}")
        for f in r["findings"]:
            lines.append(f"       finding: {f}")
        lines.append("")
    verdict = "ALL CHECKS PASS" if report["passed"] else "SOME CHECKS FAIL"
    lines.append(f"{verdict} ({report['n_passed']}/{len(report['checks'])})  wall {report['wall_s']:.1f} s")
    return "\n".join(lines)


def render_markdown(report: dict, figures: list[str]) -> str:
    cfg = report["config"]
    out = [f"# {report['title']}", "",
           f"Preset `{cfg['preset']}`, seed {report['seed']}, RoPE base {cfg['base']:g}, "
           f"wall time {report['wall_s']:.1f} s. Produced by `python theory/verify.py`.", "",
           "| # | name | check | result |", "|---|---|---|---|"]
    for r in report["checks"]:
        out.append(f"| {r['id']} | `{r['name']}` | {r['title']} | {'PASS' if r['passed'] else 'FAIL'} |")
    for r in report["checks"]:
        out += ["", f"## {r['id']}. `{r['name']}`: {r['title']}", "", f"**{'PASS' if r['passed'] else 'FAIL'}** - {r['summary']}"]
        if r["findings"]:
            out += ["", "Findings:", ""] + [f"- {f}" for f in r["findings"]]
        if r["id"] == 4:
            out += ["", _table4_markdown(r)]
    if figures:
        out += ["", "## Figures", ""] + [f"![{f}]({f})" for f in figures]
    out += ["", f"**{'ALL CHECKS PASS' if report['passed'] else 'SOME CHECKS FAIL'}** "
            f"({report['n_passed']}/{len(report['checks'])})", ""]
    return "\n".join(out)


def _table4_markdown(r: dict) -> str:
    d = r["data"]
    head = "| m | Delta | " + " | ".join(f"c={c:.2f}" for c in d["cs"]) + " |"
    rows = [head, "|" + "---|" * (2 + len(d["cs"]))]
    for m in d["exact"]:
        for i, delta in enumerate(d["deltas"]):
            cells = [f"{d['exact'][m][i][j]:.5f} / {d['printed'][m][i][j]:.3f} / {d['mc'][m]['p'][i][j]:.3f}"
                     for j in range(len(d["cs"]))]
            rows.append(f"| {m} | {delta} | " + " | ".join(cells) + " |")
    return "Table 4, each cell exact / printed / Monte-Carlo Pr[A >= c]:\n\n" + "\n".join(rows)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else str(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def write_outputs(report: dict, out_dir: str) -> list[str]:
    """Write report.json, report.md and the figures into out_dir (built in a temp dir, then moved)."""
    from theory import plots  # matplotlib only when writing

    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".tmp-report-") as tmp:
        figures = plots.write_figures(_jsonable(report), tmp)
        with open(os.path.join(tmp, "report.json"), "w") as f:
            json.dump(_jsonable(report), f, indent=1)
        with open(os.path.join(tmp, "report.md"), "w") as f:
            f.write(render_markdown(report, figures))
        names = ["report.json", "report.md"] + figures
        for n in names:
            os.replace(os.path.join(tmp, n), os.path.join(out_dir, n))
    return names
