"""The whole toy study from one command: Table 2, the ablations and the collapse-by-init table
(named grids of `toy_jax.experiments`), then Figures 5, 6 and 9 (`toy_jax.figures`), into one
report directory.

    python scripts/study.py --preset quick --dry-run     # the cells, their state, the time
    python scripts/study.py --preset quick               # the 2-core CPU, unattended
    python scripts/study.py --preset paper --out runs/study_paper   # one GPU

The parts are the grids `PARTS` names: `table2` (baseline: MDM and ARM at L = 10, 20, 30, 40),
`ablations` (positions, mask, init at L = 10, 20) and `collapse` (init=standard, the baseline,
against init=radd at L = 10, 20), 8 seeds each. A cell is one run directory OUT/<variant>/L<L>
(`experiments.cell_dir`), shared by the parts that list it: the ablations' baselines are
Table 2's cells, the collapse table's cells are the ablations'. Table 2's cells are exactly
those of the `table2_verdict_cpu` grid's baseline (`VARIANTS["baseline"].config`), so a study
pointed at that grid's directory reuses them. Cells run by L, so the cheap ones come first;
finished cells are reused (`experiments.is_finished`), a cell directory holding another config
is refused before anything runs.

The report, rewritten after every cell and finished with the figures: OUT/report/report.md
(Table 2 beside the paper's numbers, the ablations with their difference to the baseline, the
collapse table, per-seed values, figure links) and OUT/report/report.json (the verdict digest
of every finished cell, `toy_jax.verdict.digest`, the collapse rows and the figure list), the
figures in OUT/report/figures/ (redrawn only when a run they read changed).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from plumbing import io
from plumbing.provenance import record
from toy_jax import experiments as E
from toy_jax.collapse import ESCAPE_WEIGHT, classify_run
from toy_jax.figures import make_figures

PARTS = ("table2", "ablations", "collapse")  # grid names in experiments.GRIDS
REPORT = "report"  # OUT/report/


def study_cells(preset: str, *, n_seeds: int | None = None, overrides=None,
                grids: dict | None = None) -> dict[str, list]:
    """{part: [(variant, L, RunConfig)]} of the study (`grids`: part -> Grid, default the
    named grids of `PARTS`). Raises ValueError for a bad config."""
    grids = grids or {p: E.GRIDS[p] for p in PARTS}
    return {part: E.cells(g, preset, n_seeds=n_seeds, overrides=overrides)
            for part, g in grids.items()}


def unique_cells(parts: dict) -> list:
    """Every cell once, in run order: by L, then part, then the grid's variant order."""
    seen, order = {}, []
    for i, cs in enumerate(parts.values()):
        for j, (v, L, cfg) in enumerate(cs):
            if (v, L) in seen:
                if seen[(v, L)][2] != cfg:
                    raise ValueError(f"cell {v} L={L} has two configs in the study")
                continue
            seen[(v, L)] = (v, L, cfg)
            order.append(((L, i, j), (v, L, cfg)))
    return [c for _, c in sorted(order, key=lambda x: x[0])]


def run_study(preset: str, out: Path, *, dry_run: bool = False, n_seeds: int | None = None,
              overrides=None, grids: dict | None = None, figures: bool = True,
              n_boot: int = 200, progress: bool = True, command: str = "",
              log=print) -> dict | None:
    """Run (or with `dry_run` list) the study and write its report; returns the report record
    (None on a dry run)."""
    out = Path(out)
    parts = study_cells(preset, n_seeds=n_seeds, overrides=overrides, grids=grids)
    todo = unique_cells(parts)
    g = grids or {p: E.GRIDS[p] for p in PARTS}
    noops = {part: E.left_out(cs, g[part].variants) for part, cs in parts.items()}
    if dry_run:
        for part, cs in parts.items():
            log(f"{part}: {g[part].note or g[part].name}: " + ", ".join(
                sorted({v for v, _, _ in cs})) + f" x L = {', '.join(str(L) for L in g[part].Ls)}"
                f" x {len(cs[0][2].seeds)} seeds ({len(cs)} cells)"
                + "".join(f"; {v} left out (the baseline under preset {preset})"
                          for v in noops[part]))
        log(E.describe(todo, out))
        log(f"report: {out / REPORT / 'report.md'} (+ figures: about 1-5 min on the CPU)")
        return None
    E.check_cells(todo, out)
    wall = {}
    for v, L, cfg in todo:
        t0 = time.perf_counter()
        fresh = not E.is_finished(cfg, E.cell_dir(out, v, L))
        E.run_grid([(v, L, cfg)], out, progress=progress, log=log)
        if fresh:
            wall[f"{v}/L{L}"] = round(time.perf_counter() - t0, 1)
            write_report(parts, out, preset, command, wall, figures=False, log=log, left=noops)
    rec = write_report(parts, out, preset, command, wall, figures=figures, n_boot=n_boot,
                       log=log, left=noops)
    log(f"report: {out / REPORT / 'report.md'}")
    return rec


# ---------------------------------------------------------------- the record
_DIGESTS: dict = {}  # (run dir, results.json mtime) -> digest of the cell, once per process


def _digest_cells(every, out: Path) -> list[dict]:
    from toy_jax import verdict as V  # lazy (here and below): verdict loads numpy

    done = []
    for v, L, cfg in every:
        d = E.cell_dir(out, v, L)
        if not E.is_finished(cfg, d):
            continue
        key = (str(d), (d / "results.json").stat().st_mtime_ns)
        if key not in _DIGESTS:
            _DIGESTS[key] = V.digest_cell(d, v)
        done.append(_DIGESTS[key])
    return done


def collapse_rows(cells_, digests: dict, out: Path) -> list[dict]:
    """Per collapse-part cell: the MDM's forward status per seed (headline weights,
    `evaluate.forward_status`) and the step its [M]->cue attention first reached
    `collapse.ESCAPE_WEIGHT` (`collapse.classify_run`; None when it never did)."""
    from toy_jax.evaluate import forward_status  # lazy: loads jax

    rows = []
    for v, L, cfg in cells_:
        c = digests.get((v, L))
        if c is None or "mdm" not in c["models"]:
            continue
        m = c["models"]["mdm"]
        try:
            first = {str(e["seed"]): e["first_escape_step"] for e in classify_run(
                E.cell_dir(out, v, L), E.model_steps(cfg, "mdm"), "mdm", final=False)["seeds"]}
        except (ValueError, KeyError, OSError):  # no tracked attention (--track-every 0)
            first = {}
        seeds = {s: {"fwd_completion": r[m["headline"]]["final"]["fwd_completion"],
                     "first_escape_step": first.get(s)} for s, r in m["seeds"].items()}
        for r in seeds.values():
            r["status"] = forward_status(r["fwd_completion"])
        rows.append({"variant": v, "L": L, "init": cfg.model.init, "weights": m["headline"],
                     "seeds": seeds, **{f"n_{k}": sum(r["status"] == k for r in seeds.values())
                                        for k in ("learned", "partial", "collapsed")}})
    return rows


def write_report(parts: dict, out: Path, preset: str, command: str, wall: dict, *,
                 figures: bool = True, n_boot: int = 200, log=print,
                 left: dict | None = None) -> dict:
    """OUT/report/report.{md,json} from every finished cell (and the figures); `left`: {part:
    the variants left out as equal to the baseline}."""
    from toy_jax import verdict as V

    rep = out / REPORT
    rep.mkdir(parents=True, exist_ok=True)
    every = unique_cells(parts)
    digest = {"command": command,
              "provenance": record(),
              "cells": _digest_cells(every, out)}
    by_cell = {(c["variant"], c["L"]): c for c in digest["cells"]}
    rec = {"preset": preset, "command": command, "out": str(out), "wall_s": wall,
           "left_out": left or {},
           "parts": {p: [[v, L, str(E.cell_dir(out, v, L))] for v, L, _ in cs]
                     for p, cs in parts.items()},
           "collapse": collapse_rows(parts.get("collapse", []), by_cell, out),
           "figures": _figures(parts, out, rep, command, n_boot, log) if figures
           else _old_figures(rep), "digest": digest}
    if digest["cells"]:
        rec["figures"]["reverse_curves"] = str(V.plot(digest, rep / "reverse_curves.png"))
    io.write_text(rep / "report.json", json.dumps(rec, separators=(",", ":")) + "\n")
    io.write_text(rep / "report.md", render(rec, lambda part: part_digest(rec, part), every, out))
    return rec


def part_digest(rec: dict, part: str) -> dict:
    """The report's digest restricted to one part's cells, in the part's order."""
    by_cell = {(c["variant"], c["L"]): c for c in rec["digest"]["cells"]}
    return dict(rec["digest"], cells=[by_cell[(v, L)] for v, L, _ in rec["parts"].get(part, [])
                                      if (v, L) in by_cell])


def tables(rec: dict, name: str) -> dict[str, str]:
    """A report's tables as results/ blocks (`make_results`): NAME_table2 (Table 2 beside the
    paper), NAME_ablations (each ablation against its baseline) and NAME_collapse."""
    return {f"{name}_table2": table2_table(part_digest(rec, "table2")) + "\n",
            f"{name}_ablations": ablation_table(part_digest(rec, "ablations")) + "\n",
            f"{name}_collapse": collapse_table(rec["collapse"]) + "\n"}


def _old_figures(rep: Path) -> dict:
    try:
        return json.loads((rep / "report.json").read_text()).get("figures", {})
    except (OSError, ValueError):
        return {}


def _figures(parts: dict, out: Path, rep: Path, command: str, n_boot: int, log) -> dict:
    """Figures 5, 6, 9 of Table 2's finished cells (+ the learned-position MDM's correlation
    panels), redrawn only when one of the runs they read changed."""
    done = lambda part, pick: [E.cell_dir(out, v, L) for v, L, c in parts.get(part, [])
                               if pick(v) and E.is_finished(c, E.cell_dir(out, v, L))]
    runs = done("table2", lambda v: True)
    extra = done("ablations", lambda v: v == "mdm_learned")
    if not runs:
        return {}
    stamp = {str(d): (d / "results.json").stat().st_mtime_ns for d in runs + extra}
    old = _old_figures(rep)
    if old.get("stamp") == stamp and all(Path(f).exists() for f in old.get("files", [])):
        return old
    steps = max(E.model_steps(c, m.name) for _, _, c in parts["table2"] for m in c.models)
    t0 = time.perf_counter()
    files = make_figures(runs, extra, rep / "figures", n_boot, steps, command)
    log(f"figures: {len(files)} files in {time.perf_counter() - t0:.0f} s ({rep / 'figures'})")
    return {"files": files, "stamp": stamp}


# ---------------------------------------------------------------- the markdown
def table2_table(d: dict) -> str:
    """Table 2 as the paper has it (headline weights), the paper's numbers beside."""
    from toy_jax import verdict as V

    head = ["L", "model", "weights", "seeds", "forward (completion top-3)", "paper forward",
            "reverse (infill top-3)", "reverse per seed", "paper reverse",
            "reverse letter-level top-3"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in sorted(d["cells"], key=lambda c: c["L"]):
        for name in ("mdm", "arm"):
            m = c["models"].get(name)
            if m is None:
                continue
            w, L = m["headline"], c["L"]
            rev = V._vals(m, w, "rev_top3")
            pf = V.PAPER_FWD[name].get(L)
            pr = V.PAPER_REV.get(L) if name == "mdm" else 0.0
            lines.append("| " + " | ".join([
                str(L), name.upper(), "EMA" if w == "ema" else "raw", str(len(m["seeds"])),
                V._ms(V._vals(m, w, "fwd_completion")), "–" if pf is None else f"{pf:.2f}",
                V._ms(rev), V._seeds(rev), "–" if pr is None else f"{pr:.2f}",
                V._ms(V._vals(m, w, "rev_letter"))]) + " |")
    return "\n".join(lines)


def ablation_table(d: dict) -> str:
    """Each ablation beside the baseline model of the same objective (Table 2's cell at the
    same L), headline weights: reverse infill top-3 and its difference, ± the s.e."""
    from toy_jax import verdict as V

    base = {c["L"]: c for c in d["cells"] if c["variant"] == "baseline"}
    head = ["variant", "L", "model", "weights", "seeds", "forward (completion top-3)",
            "reverse (infill top-3)", "reverse per seed", "baseline reverse",
            "Δ vs baseline", "reverse letter-level top-3", "reverse completion top-3"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in sorted(d["cells"], key=lambda c: c["L"]):
        if c["variant"] == "baseline":
            continue
        for name, m in c["models"].items():
            w = m["headline"]
            obj = next(x["objective"] for x in c["config"]["models"] if x["name"] == name)
            b = base.get(c["L"], {}).get("models", {}).get(obj)
            rev = V._vals(m, w, "rev_top3")
            brev = V._vals(b, w, "rev_top3") if b else []
            lines.append("| " + " | ".join([
                c["variant"], str(c["L"]), name.upper(), "EMA" if w == "ema" else "raw",
                str(len(m["seeds"])), V._ms(V._vals(m, w, "fwd_completion")), V._ms(rev),
                V._seeds(rev), f"{V._ms(brev)} ({obj.upper()})" if b else "–", V.delta(rev, brev),
                V._ms(V._vals(m, w, "rev_letter")),
                V._ms(V._vals(m, w, "rev_completion"))]) + " |")
    return "\n".join(lines)


def collapse_table(rows: list[dict]) -> str:
    head = ["init", "variant", "L", "weights", "learned / partial / collapsed",
            "forward completion top-3 per seed", "first [M]->cue escape step per seed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        s = r["seeds"]
        lines.append("| " + " | ".join([
            r["init"], r["variant"], str(r["L"]), "EMA" if r["weights"] == "ema" else "raw",
            f"{r['n_learned']} / {r['n_partial']} / {r['n_collapsed']}",
            " ".join(f"{100 * x['fwd_completion']:.0f}" for x in s.values()),
            " ".join("–" if x["first_escape_step"] is None else str(x["first_escape_step"])
                     for x in s.values())]) + " |")
    return "\n".join(lines)


def render(rec: dict, sub, every, out: Path) -> str:
    from toy_jax import verdict as V
    from toy_jax.evaluate import COLLAPSE_BELOW, LEARNED_AT

    d, pv = rec["digest"], rec["digest"]["provenance"]
    n_done = len(d["cells"])
    lines = [f"# Toy study, preset `{rec['preset']}`", "",
             f"Command: `{rec['command']}`; commit {pv['commit'][:7]}, {pv['cpu']}, "
             f"{pv['date'][:10]}. Record: [report.json](report.json) (every cell's per-seed "
             f"readings, final and over training). {n_done} of {len(every)} cells finished"
             + ("." if n_done == len(every) else "; rerun the same command to finish the "
                                                  "rest.")]
    if rec["preset"] == "quick" and every:
        cfg = every[0][2]
        steps = ", ".join(f"{m.name.upper()} {cfg.steps_of(m.name):,} steps" for m in cfg.models)
        lines += ["", "The `quick` preset is a smaller, shorter configuration than the paper's "
                  f"Table 8 (d_model {cfg.model.d_model}, batch {cfg.train.batch_size}, {steps}; "
                  "toy_jax/README.md): its numbers are not the paper's setting."]
    t2 = sub("table2")
    lines += ["", "## Table 2", "",
              "Top-3 success (%), mean ± s.e.m. over seeds, headline weights (EMA for the MDM, "
              "raw for the ARM); the paper's Table 2 beside. Forward = the partner generated "
              "after the cue (completion); reverse = the [M] filled among all 53 outputs (infill, "
              "pad included); letter-level = the same with the pad output excluded.", "",
              table2_table(t2), "", "Every reading, both weights, Δ and peaks over training:",
              "", V.verdict_table(t2), "", "Reverse infill of the MDM under the readings of "
              "\"sample from the top k\" (final / peak over training @ median step):", "",
              V.sampler_table(t2), "", V.forward_check(t2) or "–", "",
              "The ARM's knowledge of absolute position (`analysis.arm_hazard`):", "",
              V.hazard_table(t2)]
    ab = sub("ablations")
    names = list(dict.fromkeys(c["variant"] for c in ab["cells"]))
    lines += ["", "## Ablations", "", "Top-3 success (%), mean ± s.e.m. over seeds, headline "
              "weights of each objective; Δ vs baseline: the variant's mean reverse top-3 minus "
              "that of the baseline model with the same objective (Table 2's cell at the same "
              "L), ± the s.e. of the difference.", "", ablation_table(ab), "",
              "Variants: " + "; ".join(f"`{n}` = {E.VARIANTS[n].note}" for n in names
                                       if n in E.VARIANTS) + "."
              + "".join(f" `{v}` ({E.VARIANTS[v].note}) is left out: under this preset it is "
                        "the baseline." for v in rec.get("left_out", {}).get("ablations", [])),
              "",
              "Every reading and both weights:", "", V.verdict_table(ab)]
    lines += ["", "## Collapse by initialisation", "",
              f"The MDM's seeds by forward completion top-3 at the end (learned ≥ "
              f"{100 * LEARNED_AT:.0f} %, collapsed < {100 * COLLAPSE_BELOW:.0f} %, partial "
              f"between; `evaluate.forward_status`), and the first tracked step at which the "
              f"[M]->cue attention weight over forward contexts reached {ESCAPE_WEIGHT} "
              "(`collapse.classify_run`; – never). init standard = GPT-2's (the default), "
              "radd = RADD's.", "", collapse_table(rec["collapse"])]
    f = rec["figures"]
    rel = lambda p: Path(p).relative_to(out / REPORT).as_posix()
    pngs = [p for p in f.get("files", []) if p.endswith(".png")]
    lines += ["", "## Figures", ""]
    if "reverse_curves" in f:
        lines.append(f"- [reverse_curves.png]({rel(f['reverse_curves'])}): the MDM's reverse "
                     "infill (expected top-3) over training, every cell, seeds thin, mean thick")
    what = {"correlation": "Fig. 6a / 9 left: forward/reverse score correlation vs Δ1 + Δ2",
            "attention_dynamics": "Fig. 6b / 9 right: [M] → cue attention over training",
            "reverse_over_training": "reverse infill over training, raw and EMA",
            "fig5_probabilities": "Fig. 5: reverse-query probabilities per target position",
            "assumptions": "Theorem 4.1's assumptions measured in the trained MDM"}
    for p in pngs:
        key = next((k for k in what if Path(p).name.startswith(k)), None)
        lines.append(f"- [{Path(p).name}]({rel(p)})" + (f": {what[key]}" if key else ""))
    if pngs:
        lines.append("- [figures/analysis.md](figures/analysis.md): the numbers behind them")
    elif "reverse_curves" not in f:
        lines.append("None yet (drawn when Table 2's cells are finished).")
    lines += ["", "## Cells", "", "| variant | L | models | seeds | steps | run directory | "
              "wall this command (s) |", "|---|---|---|---|---|---|---|"]
    for v, L, cfg in every:
        d_ = E.cell_dir(out, v, L)
        state = (f"{rec['wall_s'][f'{v}/L{L}']:.0f}" if f"{v}/L{L}" in rec["wall_s"] else
                 "reused" if E.is_finished(cfg, d_) else "not finished")
        steps = ",".join(dict.fromkeys(str(E.model_steps(cfg, m.name)) for m in cfg.models))
        lines.append(f"| {v} | {L} | {','.join(m.name for m in cfg.models)} | "
                     f"{len(cfg.seeds)} | {steps} | `{d_}` | {state} |")
    return "\n".join(lines) + "\n"
