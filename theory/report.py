"""Run the five checks and render/write the report (used by `theory/verify.py`)."""
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
    """Run checks 1-5 with independent random streams derived from cfg.seed."""
    t0 = time.perf_counter()
    rng1, rng2, rng3, rng4, rng5 = (np.random.default_rng(s)
                                    for s in np.random.SeedSequence(cfg.seed).spawn(5))
    steps = 3 + len(cfg.dims) + len(cfg.pair_dims)
    # show_progress=None: a bar on an interactive terminal, silence in logs and tests.
    disable = None if show_progress is None else not show_progress
    with tqdm(total=steps, desc="theory checks", disable=disable, leave=False) as bar:
        results = [checks.check_closed_form(cfg, rng1)]
        bar.update(1)
        results.append(checks.check_theorem41(cfg, rng2, progress=bar))
        results.append(checks.check_eq1(cfg, rng3))
        bar.update(1)
        results.append(checks.check_table4(cfg, rng4))
        bar.update(1)
        results.append(checks.check_asymmetric(cfg, rng5, progress=bar))
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
        lines.append(f"[{'PASS' if r['passed'] else 'FAIL'}] {r['id']}. {r['title']}")
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
           "| # | check | result |", "|---|---|---|"]
    for r in report["checks"]:
        out.append(f"| {r['id']} | {r['title']} | {'PASS' if r['passed'] else 'FAIL'} |")
    for r in report["checks"]:
        out += ["", f"## {r['id']}. {r['title']}", "", f"**{'PASS' if r['passed'] else 'FAIL'}** - {r['summary']}"]
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
