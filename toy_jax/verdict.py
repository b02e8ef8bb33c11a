"""The Table 2 verdict: every grid cell's per-seed readings, final and over training.

`digest` reads run directories (config.json, results.json, metrics.jsonl) into one JSON-able
record per cell and model: per seed and weights (raw, EMA) the final readings of `evaluate`
and, from the in-loop tracking, the curve of the reverse infill readings with its peak and the
step of the peak. `render` turns a digest into the markdown tables of RESULTS.md.

Readings (all on the reverse infill query "A ... [M]", pad `0` included unless said):
  rev_top3      top-3 sampling success, the project's Table 2 reading (fixed evaluation noise)
  rev_top3_exp  its expectation, p(target) / sum of the top-3 probabilities if the target is
                among the top 3 (noise-free; tracked over training)
  rev_top3_unif a uniform draw among the top 3 (1/3 if the target is among them)
  rev_greedy    argmax; rev_p  p(target); rev_rank  the target's rank among all outputs
  rev_letter    top-3 sampling among the 52 letters only (pad excluded; Figure 5's comparison)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from plumbing.provenance import record
from plumbing.stats import mean_sem
from toy_jax import records  # noqa: E402  (JSON-only module)
from toy_jax.results_tables import PAPER_TABLE2  # noqa: E402  (JSON-only module)

PAPER_REV = {L: rev for L, (_, rev) in PAPER_TABLE2["mdm"].items()}  # Table 2, MDM reverse, %
PAPER_FWD = {m: {L: fwd for L, (fwd, _) in by_L.items()} for m, by_L in PAPER_TABLE2.items()}
FINAL = {  # digest key -> (direction, reading, metric) in results.json
    "fwd_completion": ("forward", "completion", "topk_success"),
    "fwd_completion_greedy": ("forward", "completion", "greedy_acc"),
    "fwd_infill": ("forward", "infill", "topk_success"),
    "rev_top3": ("reverse", "infill", "topk_success"),
    "rev_top3_exp": ("reverse", "infill", "topk_expected"),
    "rev_top3_unif": ("reverse", "infill", "topk_uniform"),
    "rev_greedy": ("reverse", "infill", "greedy_acc"),
    "rev_p": ("reverse", "infill", "p_target"),
    "rev_rank": ("reverse", "infill", "rank"),
    "rev_letter": ("reverse", "infill_letter", "topk_success"),
    "rev_completion": ("reverse", "completion", "topk_success"),
}
CURVES = {"rev_top3_exp": "infill_rev_topk_expected", "rev_greedy": "infill_rev_greedy_acc",
          "rev_p": "infill_rev_p_target", "rev_in_top3": "infill_rev_in_topk",
          "rev_letter_greedy": "infill_rev_letter_greedy_acc"}
CURVES_KEPT = ("rev_top3_exp", "rev_greedy")  # stored point by point; the others as peak / last
WEIGHTS = ("raw", "ema")


def _final(block: dict) -> dict:
    out = {}
    for key, (d, r, m) in FINAL.items():
        v = block.get(d, {}).get(r, {}).get(m)
        out[key] = None if v is None else float(v)
    return out


def _curves(rows: list[dict], prefix: str) -> dict:
    out = {}
    for key, metric in CURVES.items():
        pts = [(r["step"], r[prefix + metric]) for r in rows if prefix + metric in r]
        if not pts:
            continue
        steps, vals = zip(*sorted(pts))
        i = int(np.argmax(vals))
        out[key] = {"peak": round(float(vals[i]), 5), "peak_step": int(steps[i]),
                    "last": round(float(vals[-1]), 5)}
        if key in CURVES_KEPT:
            out[key].update(steps=list(steps), values=[round(float(v), 4) for v in vals])
    return out


def digest_cell(run_dir: Path, variant: str) -> dict:
    """One cell: {variant, L, config, models: {name: {headline, seeds: {seed: {raw, ema}}}}}."""
    run_dir = Path(run_dir)
    res = records.read_results(run_dir)
    rows = records.read_metrics(run_dir)
    models = {}
    for name, headline in res["headline"].items():
        seeds = {}
        for s in res["seeds"]:
            mine = [r for r in rows if r["model"] == name and r["seed"] == s]
            seeds[str(s)] = {w: {"final": _final(records.reading(res, s, name, w)),
                                 "curve": _curves(mine, "" if w == "raw" else "ema_")}
                             for w in WEIGHTS}
        models[name] = {"headline": headline, "seeds": seeds}
        if name == "arm" and (run_dir / "checkpoints" / name).is_dir():
            _add_hazard(run_dir, name, seeds)
    cfg = res["config"]
    return {"variant": variant, "L": cfg["L"], "config": cfg, "models": models,
            "run_dir": str(run_dir)}


def _add_hazard(run_dir: Path, name: str, seeds: dict) -> None:
    """`analysis.arm_hazard` of the ARM's raw weights, per seed (from the final checkpoint)."""
    from toy_jax.analysis import arm_hazard  # lazy (with rundir): they load jax
    from toy_jax.rundir import load_run

    run = load_run(run_dir)
    for s in run.config.seeds:
        seeds[str(s)]["raw"]["hazard"] = arm_hazard(run.model(name, s))


def digest(cells: list[tuple[str, Path]], command: str) -> dict:
    """The verdict record of a grid: every finished cell, with provenance."""
    return {"command": command, "provenance": record(),
            "cells": [digest_cell(d, v) for v, d in cells if (Path(d) / "results.json").is_file()]}


# ---------------------------------------------------------------- rendering
def _vals(model: dict, w: str, key: str, part: str = "final") -> list[float]:
    out = []
    for s in model["seeds"].values():
        x = s[w][part].get(key) if part == "final" else s[w]["curve"].get(key)
        if x is not None:
            out.append(x)
    return out


def _ms(v: list[float], scale: float = 100.0, nd: int = 1) -> str:
    if not v:
        return "–"
    m, sem = mean_sem(np.asarray(v, float) * scale)
    return f"{m:.{nd}f} ± {sem:.{nd}f}"


def delta(v: list[float], base: list[float]) -> str:
    """'Δ ± s.e.' in points: mean(v) - mean(base), ± the s.e. of a difference of two
    independent means, sqrt(sem_v^2 + sem_base^2); '–' without two values on each side."""
    if len(v) < 2 or len(base) < 2:
        return "–"
    (mv, sv), (mb, sb) = mean_sem(v), mean_sem(base)
    return f"{100 * (mv - mb):+.1f} ± {100 * np.sqrt(sv ** 2 + sb ** 2):.1f}"


def _seeds(v: list[float], scale: float = 100.0) -> str:
    return " ".join(f"{x * scale:.0f}" for x in v) if v else "–"


def _peak(model: dict, w: str, key: str = "rev_top3_exp", scale: float = 1.0) -> str:
    cs = _vals(model, w, key, part="curve")
    if not cs:
        return "–"
    peaks = [c["peak"] * scale for c in cs]
    steps = [c["peak_step"] for c in cs]
    return f"{_ms(peaks)} @ {int(np.median(steps))}"


def _rows(d: dict):
    """(cell, model name, weights) in table order: by variant as listed, L, model."""
    order = {}
    for c in d["cells"]:
        order.setdefault(c["variant"], len(order))
    for c in sorted(d["cells"], key=lambda c: (order[c["variant"]], c["L"])):
        for name in sorted(c["models"], key=lambda n: (n != "mdm", n)):
            m = c["models"][name]
            for w in (("ema", "raw") if name == "mdm" else (m["headline"],)):
                yield c, name, w


def _baseline(d: dict, L: int, name: str):
    for c in d["cells"]:
        if c["variant"] == "baseline" and c["L"] == L and name in c["models"]:
            return c["models"][name]
    return None


def verdict_table(d: dict) -> str:
    """Variant x L x model: forward, reverse (final, peak and its step), letter-level, rank."""
    head = ["variant", "L", "model", "weights", "seeds", "fwd compl. top-3, min–max",
            "fwd infill top-3",
            "rev top-3 (pad incl.)", "per seed", "Δ vs baseline", "rev top-3 expected",
            "peak expected @ median step", "rev letter-level top-3", "rev target rank",
            "paper rev"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c, name, w in _rows(d):
        m = c["models"][name]
        fwd = _vals(m, w, "fwd_completion")
        rev = _vals(m, w, "rev_top3")
        base = _baseline(d, c["L"], name)
        d_base = ("–" if base is None or c["variant"] == "baseline"
                  else delta(rev, _vals(base, w, "rev_top3")))
        lines.append("| " + " | ".join([
            c["variant"], str(c["L"]), name.upper(), "EMA" if w == "ema" else "raw",
            str(len(m["seeds"])),
            f"{100 * min(fwd):.1f}–{100 * max(fwd):.1f}" if fwd else "–",
            _ms(_vals(m, w, "fwd_infill")), _ms(rev), _seeds(rev), d_base, _ms(_vals(m, w, "rev_top3_exp")), _peak(m, w),
            _ms(_vals(m, w, "rev_letter")), _ms(_vals(m, w, "rev_rank"), 1.0, 2),
            f"{PAPER_REV[c['L']]:.1f}" if name == "mdm" and c["L"] in PAPER_REV else
            ("0.0" if name == "arm" else "–")]) + " |")
    return "\n".join(lines)


def sampler_table(d: dict, variant: str = "baseline") -> str:
    """The MDM's reverse infill under the readings of "sample from the top k": the final value
    (evaluation) and the peak over training with its median step (in-loop tracking)."""
    readings = (("top-3 sampled", "rev_top3", None), ("top-3 expected", "rev_top3_exp",
                                                       "rev_top3_exp"),
                ("top-3 uniform", "rev_top3_unif", "rev_in_top3"),
                ("greedy", "rev_greedy", "rev_greedy"), ("p(target)", "rev_p", "rev_p"))
    head = ["L", "weights"] + [f"{r[0]}: final / peak" for r in readings] + ["paper"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in sorted(d["cells"], key=lambda c: c["L"]):
        if c["variant"] != variant or "mdm" not in c["models"]:
            continue
        m = c["models"]["mdm"]
        for w in ("ema", "raw"):
            cells = []
            for _, fin, cur in readings:
                scale = 1.0 / 3.0 if cur == "rev_in_top3" else 1.0
                peak = _peak(m, w, cur, scale) if cur else "–"
                cells.append(f"{_ms(_vals(m, w, fin))} / {peak}")
            lines.append("| " + " | ".join([str(c["L"]), "EMA" if w == "ema" else "raw"]
                                           + cells + [f"{PAPER_REV.get(c['L'], 0):.1f}"]) + " |")
    return "\n".join(lines)


def forward_check(d: dict, threshold: float = 0.95) -> str:
    """One line per model: does every seed reach `threshold` forward completion at every L?"""
    out = []
    for name in ("mdm", "arm"):
        worst = [(min(_vals(c["models"][name], c["models"][name]["headline"],
                            "fwd_completion")), c["L"]) for c in d["cells"]
                 if c["variant"] == "baseline" and name in c["models"]]
        if not worst:
            continue
        lo, L = min(worst)
        n = sum(len(c["models"][name]["seeds"]) for c in d["cells"]
                if c["variant"] == "baseline" and name in c["models"])
        ok = "every" if lo >= threshold else "NOT every"
        out.append(f"{name.upper()}: {ok} seed reaches {100 * threshold:.0f} % forward "
                   f"completion (lowest {100 * lo:.1f} % at L = {L}; {n} seed runs over "
                   f"L = {', '.join(str(c['L']) for c in d['cells'] if c['variant'] == 'baseline')}).")
    return "\n".join(out)


def hazard_table(d: dict) -> str:
    """The ARM's knowledge of absolute position (`analysis.arm_hazard`) beside its forward
    completion, per variant and L."""
    head = ["variant", "L", "positions", "seeds", "hazard slope (0 = distance only, 1 = "
            "absolute)", "mean abs. error vs optimal hazard", "completion implied", "completion measured"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in sorted(d["cells"], key=lambda c: (c["variant"] != "baseline", c["variant"], c["L"])):
        m = c["models"].get("arm")
        hz = [s["raw"]["hazard"] for s in m["seeds"].values() if "hazard" in s["raw"]] if m else []
        if not hz:
            continue
        pos = next((x.get("pos") for x in c["config"]["models"] if x["name"] == "arm"), None)
        lines.append("| " + " | ".join([
            c["variant"], str(c["L"]), pos or c["config"]["model"]["pos"], str(len(hz)),
            _ms([h["slope"] for h in hz], 1.0, 2), _ms([h["mae"] for h in hz], 1.0, 3),
            _ms([h["completion_estimate"] for h in hz]),
            _ms(_vals(m, "raw", "fwd_completion"))]) + " |")
    return "\n".join(lines)


def tables(d: dict, prefix: str) -> dict[str, str]:
    """The RESULTS.md blocks of one verdict record, by block name."""
    foot = (f"\n\nMean ± s.e.m. over seeds, in %; per seed: the final top-3 value of each seed. "
            f"Made by `{d['command']}`; digested at commit {d['provenance']['commit'][:7]} "
            f"({d['provenance']['cpu']}, {d['provenance']['date'][:10]}).")
    blocks = {f"{prefix}": verdict_table(d) + foot,
              f"{prefix}_sampler": sampler_table(d),
              f"{prefix}_forward": "\n".join(f"- {ln}" for ln in forward_check(d).splitlines()),
              f"{prefix}_arm_positions": hazard_table(d)}
    return {k: v + "\n" for k, v in blocks.items()}


def plot(d: dict, path: Path, key: str = "rev_top3_exp") -> Path:
    """Reverse infill (`key`, pad included) over training: one panel per L, the MDM's raw and
    EMA weights of every variant (thin: seeds; thick: their mean)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Ls = sorted({c["L"] for c in d["cells"]})
    fig, axes = plt.subplots(1, len(Ls), figsize=(4.2 * len(Ls), 3.4), squeeze=False)
    colors = {}
    for ax, L in zip(axes[0], Ls):
        for c in d["cells"]:
            if c["L"] != L or "mdm" not in c["models"]:
                continue
            for w, style in (("ema", "-"), ("raw", ":")):
                curves = _vals(c["models"]["mdm"], w, key, part="curve")
                if not curves:
                    continue
                col = colors.setdefault(c["variant"], f"C{len(colors)}")
                for cv in curves:
                    ax.plot(cv["steps"], cv["values"], style, color=col, lw=0.5, alpha=0.35)
                steps = curves[0]["steps"]
                mean = np.mean([cv["values"] for cv in curves if cv["steps"] == steps], 0)
                ax.plot(steps, mean, style, color=col, lw=2,
                        label=f"{c['variant']} ({'EMA' if w == 'ema' else 'raw'})")
        if L in PAPER_REV:
            ax.axhline(PAPER_REV[L] / 100, color="k", lw=0.8, ls="--", label="paper Table 2")
        ax.set_title(f"L = {L}")
        ax.set_xlabel("step")
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("reverse infill, expected top-3 success")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
