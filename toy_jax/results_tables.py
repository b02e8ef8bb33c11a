"""The markdown tables of RESULTS.md, README.md and toy_jax/README.md, built from results/ JSON.

Each builder takes the parsed contents of results files (a file's JSON; for a set of files,
{file name: JSON}) and returns the body of one marked block, `<!-- table:NAME -->` ... `<!--
/table:NAME -->`: a markdown table ending in a newline. Nothing here reads a file or imports
jax; toy_jax/results_manifest.json says which files feed which block, and
`toy_jax.results_docs` rewrites the documents (`python scripts/make_results.py`).

Seed spread is the uncertainty shown: cells are per-seed values or mean (lowest–highest seed).
"""
from __future__ import annotations

from plumbing.provenance import summary

DIRS = ("forward", "reverse")
SHORT = {"forward": "fwd", "reverse": "rev"}
VARIANT_ORDER = ("radd", "standard", "emb1", "lnb0", "vdm", "learned")
PROTOCOLS = ("infill", "completion")

# Table 2 of the paper: top-3 success (%) averaged over 3 seeds, (forward, reverse) per L.
# Same values as toy_jax.analysis.PAPER_TABLE2 (a test checks that they agree); kept here so
# that building the tables reads JSON only.
PAPER_TABLE2 = {"mdm": {10: (99.31, 43.10), 20: (97.36, 55.70), 30: (96.91, 33.89),
                        40: (97.27, 38.37)},
                "arm": {10: (99.83, 0.00), 20: (99.80, 0.00), 30: (99.93, 0.00),
                        40: (99.93, 0.00)}}


class ResultsError(ValueError):
    """results/ cannot produce a table that a document asks for."""


# ------------------------------------------------------------------------------ formatting
def pct(x: float, nd: int = 1) -> str:
    return f"{100.0 * x:.{nd}f}"


def spread(values, nd: int = 1) -> str:
    """mean (lowest–highest) in %, over seeds."""
    v = [100.0 * x for x in values]
    if len(v) == 1:
        return f"{v[0]:.{nd}f}"
    return f"{sum(v) / len(v):.{nd}f} ({min(v):.{nd}f}–{max(v):.{nd}f})"


def per_seed(values, nd: int = 1, sep: str = " / ") -> str:
    return sep.join(f"{100.0 * x:.{nd}f}" for x in values)


def table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"



def _seed_word(ids: str) -> str:
    return ("seeds " if "," in ids else "seed ") + ids


def _seeds(d: dict) -> list[str]:
    return sorted(d, key=int)


# ------------------------------------------------------------------------------ GPU runs
def h200_table2(dig: dict) -> str:
    """Table 2 at Table 8's settings on the H200, per seed."""
    t2 = dig["table2_paper"]
    Ls = sorted(t2["L"], key=int)
    head = ["model, weights", "reading"] + [f"L={L} {d}" for L in Ls for d in ("fwd", "rev")]
    rows = [["MDM, EMA (paper Table 2, mean of 3 seeds)", "top-3, protocol not stated"]
            + [f"{PAPER_TABLE2['mdm'][int(L)][i]:.2f}" for L in Ls for i in (0, 1)]]

    def cells(model, weights, proto, reading="topk_success", fmt=per_seed):
        out = []
        for L in Ls:
            ps = t2["L"][L]["per_seed"]
            for d in DIRS:
                vals = [ps[s][model][weights][d][proto][reading] for s in _seeds(ps)]
                out.append(fmt(vals))
        return out

    rank_fmt = lambda vals: " / ".join(f"{v:.1f}" for v in vals)  # noqa: E731
    rows.append(["MDM, EMA", "infill top-3"] + cells("mdm", "ema", "infill"))
    rows.append(["MDM, EMA", "completion top-3"] + cells("mdm", "ema", "completion"))
    rows.append(["MDM, EMA", "infill: rank of the target (1 = first)"]
                + cells("mdm", "ema", "infill", "rank", rank_fmt))
    status = []
    for L in Ls:
        st = t2["L"][L]["status_mdm"]
        status += [" / ".join(st[s] for s in _seeds(st)), ""]
    rows.append(["MDM", "seed status (EMA fwd completion)"] + status)
    rows.append(["ARM, raw (paper Table 2, mean of 3 seeds)", "top-3, protocol not stated"]
                + [f"{PAPER_TABLE2['arm'][int(L)][i]:.2f}" for L in Ls for i in (0, 1)])
    rows.append(["ARM, raw", "infill top-3"] + cells("arm", "raw", "infill"))
    rows.append(["ARM, raw", "completion top-3"] + cells("arm", "raw", "completion"))
    return table(head, rows)


def _variant_row(name: str, v: dict) -> list[str]:
    ps = v["per_seed"]
    seeds = _seeds(ps)
    st = v["status"]
    n_col = sum(st[s] == "collapsed" for s in seeds)
    n_part = sum(st[s] == "partial" for s in seeds)
    col_ids = ", ".join(s for s in seeds if st[s] == "collapsed")
    fmt = lambda vals: " ".join(f"{100 * x:.1f}" for x in vals)  # noqa: E731
    g = lambda w, d, p, k="topk_success": [ps[s]["mdm"][w][d][p][k] for s in seeds]  # noqa: E731
    peaks = [v["tracked"][s]["raw_rev_greedy_infill_peak"] for s in seeds]
    last = [v["tracked"][s]["raw_rev_greedy_infill_last"] for s in seeds]
    collapsed = f"{n_col} / {len(seeds)}" + (f" ({_seed_word(col_ids)})" if col_ids else "")
    if n_part:
        collapsed += "; partial: seed " + ", ".join(s for s in seeds if st[s] == "partial")
    return [f"`{name}`", v["what"], collapsed,
            fmt(g("ema", "forward", "completion")), fmt(g("ema", "reverse", "infill")),
            fmt(g("ema", "reverse", "completion")),
            " ".join(f"{x:.1f}" for x in g("ema", "reverse", "infill", "rank")),
            " ".join(f"{100 * x:.0f}" for x in peaks), " ".join(f"{100 * x:.0f}" for x in last)]


def _mean_curve(seeds: dict, key: str = "infill_rev_greedy_acc") -> str:
    """Peak of the seed-mean curve (step) and its last value, in %."""
    ys = [seeds[s][key] for s in _seeds(seeds)]
    n = min(len(y) for y in ys)
    mean = [sum(y[i] for y in ys) / len(ys) for i in range(n)]
    steps = seeds[_seeds(seeds)[0]]["step"][:n]
    i = max(range(n), key=lambda j: mean[j])
    return f"{100 * mean[i]:.0f} (step {steps[i]:,}) → {100 * mean[-1]:.0f}"


def h200_variants(dig: dict, curves_file: dict) -> str:
    """Collapse rate and reverse success of the 8-seed L = 20 variants (+ the bf16 run); the
    curves over training come from the digest's `_curves.json` file."""
    curves = curves_file["curves"]
    head = ["variant", "what it changes", "collapsed (EMA fwd completion < 50 %)",
            "EMA fwd completion top-3 %, seeds 0–7", "EMA rev infill top-3 %, seeds 0–7",
            "EMA rev completion top-3 %, seeds 0–7",
            "EMA rev infill: mean rank of the target (1 = first), seeds 0–7",
            "raw rev greedy infill %, peak over training, seeds 0–7",
            "same at the last step, seeds 0–7", "mean over seeds: peak (step) → last step"]
    var = dig["variants_L20"]
    names = [n for n in VARIANT_ORDER if n in var] + sorted(set(var) - set(VARIANT_ORDER))
    rows = [_variant_row(n, var[n]) + [_mean_curve(curves[f"paper_L20_mdm_8seeds/{n}"]["mdm"])]
            for n in names]
    bf = dig["bf16_partial_L20"]
    tr = bf["tracked"]
    seeds = _seeds(tr)
    last_step = {tr[s]["last_step"] for s in seeds}
    if len(last_step) != 1:
        raise ResultsError("bf16 run: seeds end at different steps")
    step = last_step.pop()
    col = [s for s in seeds if tr[s]["raw_fwd_greedy_infill_last"] < 0.5]
    rows.append(["`radd` + bf16 forward", bf["what"] + f", step {step:,} of {bf['planned_steps']:,}",
                 f"{len(col)} / {len(seeds)}" + (f" ({_seed_word(', '.join(col))})" if col else "")
                 + f"; criterion: raw fwd greedy infill < 50 % at step {step:,}",
                 "–", "–", "–", "–",
                 " ".join(f"{100 * tr[s]['raw_rev_greedy_infill_peak']:.0f}" for s in seeds),
                 " ".join(f"{100 * tr[s]['raw_rev_greedy_infill_last']:.0f}" for s in seeds),
                 _mean_curve(curves["bf16_partial_L20/radd"]["mdm"])])
    return table(head, rows)


def h200_letters(dig: dict) -> str:
    """Standard init, L = 20, 8 seeds: the pad-allowed and the letter-level (pad excluded) readings."""
    lo = dig["letters_only_L20"]
    ps, let = lo["per_seed"], lo["letters_only_infill"]
    seeds = _seeds(ps)
    fwd_p, rev_p = PAPER_TABLE2["mdm"][20]
    head = ["reading", "weights", "forward: mean (lowest–highest seed), %",
            "reverse: mean (lowest–highest seed), %", "paper Table 2, L=20 (fwd / rev)"]
    rows = []
    for w in ("ema", "raw"):
        paper = f"{fwd_p:.2f} / {rev_p:.2f}" if w == "ema" else ""
        for proto, reading, label in (("infill", "greedy_acc", "pad allowed: infill greedy"),
                                      ("infill", "topk_success", "pad allowed: infill top-3"),
                                      ("completion", "topk_success", "pad allowed: completion top-3")):
            rows.append([label, w] + [spread([ps[s]["mdm"][w][d][proto][reading] for s in seeds])
                                      for d in DIRS]
                        + [paper if reading == "topk_success" else ""])
        for reading, label in (("greedy_acc", "letter-level (pad excluded): infill greedy"),
                               ("topk_success", "letter-level (pad excluded): infill top-3")):
            rows.append([label, w] + [spread([let[s][w][d][reading] for s in seeds]) for d in DIRS]
                        + [paper if reading == "topk_success" else ""])
    ranks = {d: [ps[s]["mdm"]["ema"][d]["infill"]["rank"] for s in seeds] for d in DIRS}
    rows.append(["pad allowed: rank of the target among all outputs (infill, mean)", "ema"]
                + [f"{min(ranks[d]):.2f}–{max(ranks[d]):.2f}" for d in DIRS] + [""])
    return table(head, rows)


def h200_rerun(dig: dict) -> str:
    """The same command run twice on the H200 (`standard`, L = 20): per-seed differences."""
    a = dig["variants_L20"]["standard"]["per_seed"]
    b = dig["letters_only_L20"]["per_seed"]
    seeds = _seeds(a)
    head = ["weights", "reading", "first run, seeds 0–7 (%)", "second run, seeds 0–7 (%)",
            "largest abs. difference (points)", "spread over seeds, first run (points)"]
    rows = []
    for w in ("ema", "raw"):
        for d in DIRS:
            for p in PROTOCOLS:
                x = [a[s]["mdm"][w][d][p]["topk_success"] for s in seeds]
                y = [b[s]["mdm"][w][d][p]["topk_success"] for s in seeds]
                diff = max(abs(u - v) for u, v in zip(x, y))
                rows.append([w, f"{SHORT[d]} {p} top-3", " ".join(f"{100 * u:.1f}" for u in x),
                             " ".join(f"{100 * v:.1f}" for v in y), pct(diff),
                             pct(max(x) - min(x))])
    return table(head, rows)


# ------------------------------------------------------------------------------ CPU runs
def quick_table2(res: dict) -> str:
    """Table 2 at the quick preset: mean (lowest–highest seed)."""
    t = res["top3_success"]
    Ls = sorted(t, key=int)
    head = ["model", "weights", "protocol"] + [f"L={L} {d}" for L in Ls for d in ("fwd", "rev")]
    rows = []
    for model in ("mdm", "arm"):
        rows.append([f"{model.upper()} (paper Table 2)", "EMA" if model == "mdm" else "raw",
                     "not stated"] + [f"{PAPER_TABLE2[model][int(L)][i]:.2f}" for L in Ls for i in (0, 1)])
        for w in ("raw", "ema"):
            for p in PROTOCOLS:
                rows.append([model.upper(), w, p] + [spread(t[L][model][w][d][p]) for L in Ls for d in DIRS])
    return table(head, rows)


def quick_table2_letter(rec: dict) -> str:
    """A recorded reproduce_table2.py run (per-seed readings, `record_table2`): every reading."""
    Ls = sorted(rec["L"], key=int)
    readings = [("infill", "topk_success", "infill top-3"),
                ("completion", "topk_success", "completion top-3"),
                ("infill", "greedy_acc", "infill greedy"),
                ("infill", "rank", "infill: rank of the target among all outputs (mean)"),
                ("infill_letter", "greedy_acc", "letter-level greedy"),
                ("infill_letter", "topk_success", "letter-level top-3"),
                ("infill_letter", "rank", "letter-level rank of the target (mean)")]
    head = ["model", "weights", "reading"] + [f"L={L} {d}" for L in Ls for d in ("fwd", "rev")]
    rows = []
    for model in ("mdm", "arm"):
        for w in (("ema", "raw") if model == "mdm" else ("raw", "ema")):
            for proto, reading, label in readings:
                cells = []
                for L in Ls:
                    ps = rec["L"][L]["per_seed"]
                    for d in DIRS:
                        vals = [ps[s][model][w][d].get(proto, {}).get(reading) for s in _seeds(ps)]
                        if any(v is None for v in vals):
                            cells.append("–")
                        elif reading == "rank":
                            cells.append(f"{sum(vals) / len(vals):.2f} ({min(vals):.2f}–{max(vals):.2f})")
                        else:
                            cells.append(spread(vals))
                rows.append([model.upper(), w, label] + cells)
        status = []
        for L in Ls:
            st = rec["L"][L]["status"].get(model, {})
            status += [" / ".join(st[s] for s in _seeds(st)), ""]
        rows.append([model.upper(), "ema" if model == "mdm" else "raw",
                     "seed status (fwd completion), seeds " + ", ".join(_seeds(st))] + status)
    return table(head, rows)


def cpu_paper_seed0(res: dict) -> str:
    t = res["top3_success"]
    head = ["model", "weights", "protocol"] + [f"L={L} {d}" for L in sorted(t, key=int) for d in ("fwd", "rev")]
    rows = []
    for model in ("mdm", "arm"):
        for w in ("raw", "ema"):
            for p in PROTOCOLS:
                rows.append([model.upper(), w, p] + [per_seed(t[L][model][w][d][p])
                                                     for L in sorted(t, key=int) for d in DIRS])
    return table(head, rows)


ABLATION_LABELS = {
    "mdm": ("MDM (RoPE, RADD init) [baseline]", ("ema", "raw")),
    "arm": ("ARM (RoPE) [baseline]", ("raw", "ema")),
    "mdm_learned": ("MDM, learned positions", ("ema", "raw")),
    "mdm_nopos": ("MDM, no positions", ("ema", "raw")),
    "mdm_causal": ("MDM objective on the causal decoder", ("ema", "raw")),
    "arm_learned": ("ARM, learned positions", ("raw", "ema")),
    "mdm_stdinit": ("MDM, GPT-2 (standard) init", ("ema", "raw")),
}


def ablations(res: dict) -> str:
    t = res["top3_success"]
    Ls = sorted(next(iter(t.values())), key=int)
    head = ["variant", "weights"] + [f"L={L} {p} {d}" for L in Ls for p in ("infill", "compl.")
                                     for d in ("fwd", "rev")]
    rows = []
    for key, block in t.items():
        label, order = ABLATION_LABELS.get(key, (key, ("ema", "raw")))
        for w in order:
            rows.append([label, w] + [spread(block[L][w][d][p]) for L in Ls for p in PROTOCOLS for d in DIRS])
    return table(head, rows)


def _label(rec: dict) -> str:
    return rec.get("label") or summary(rec["provenance"])


def _by_date(reruns: dict[str, dict]) -> list[dict]:
    """Recorded reruns ({file name: contents}), oldest first: 'rerun 1' is the first made."""
    return sorted(reruns.values(), key=lambda r: r["provenance"]["date"])


def xmachine(committed: dict, reruns: dict[str, dict], L: str = "10") -> str:
    """Per seed: the committed quick Table 2 at one L against reruns of the same code elsewhere
    (`reruns`: {file name: a `record_rerun` file})."""
    reruns = _by_date(reruns)
    a = committed["top3_success"][L]
    seeds = committed["seeds"]
    for r in reruns:
        if r["seeds"] != seeds:
            raise ResultsError("rerun seeds differ from the committed table's")
    names = " / ".join(["committed"] + [f"rerun {i + 1}" for i in range(len(reruns))])
    head = ["model", "weights", "reading"] + [f"seed {s}: {names}" for s in seeds] + [
        "largest abs. difference from committed (points)", "spread over seeds, committed (points)"]
    rows = []
    for model in ("mdm", "arm"):
        for w in ("ema", "raw"):
            for d in DIRS:
                for p in PROTOCOLS:
                    x = a[model][w][d][p]
                    ys = [r["top3_success"][L][model][w][d][p] for r in reruns]
                    cells = [" / ".join(f"{100 * v:.1f}" for v in [x[i]] + [y[i] for y in ys])
                             for i in range(len(seeds))]
                    diff = max(abs(u - v) for y in ys for u, v in zip(x, y))
                    rows.append([model.upper(), w, f"{SHORT[d]} {p}"] + cells
                                + [pct(diff), pct(max(x) - min(x))])
    return table(head, rows)


def xmachine_summary(committed: dict, reruns: dict[str, dict], L: str = "10") -> str:
    """Per rerun and model: how many cells equal the committed value, and the differences."""
    reruns = _by_date(reruns)
    a = committed["top3_success"][L]
    head = ["run", "platform", "model", "cells (weights × direction × protocol × seed)",
            "identical to the committed value", "mean abs. difference (points)",
            "largest abs. difference (points)", "mean seed spread, committed (points)"]
    rows = [["committed", summary(committed["provenance"]), "", "", "", "", "", ""]]
    for i, r in enumerate(reruns):
        b = r["top3_success"][L]
        for model in ("mdm", "arm"):
            diffs, spreads = [], []
            for w in ("ema", "raw"):
                for d in DIRS:
                    for p in PROTOCOLS:
                        x, y = a[model][w][d][p], b[model][w][d][p]
                        diffs += [abs(u - v) for u, v in zip(x, y)]
                        spreads.append(max(x) - min(x))
            same = sum(dd == 0.0 for dd in diffs)
            rows.append([f"rerun {i + 1}", _label(r) if model == "mdm" else "", model.upper(),
                         str(len(diffs)), str(same), pct(sum(diffs) / len(diffs), 2),
                         pct(max(diffs)), pct(sum(spreads) / len(spreads))])
    return table(head, rows)


# ------------------------------------------------------------------------------ mechanism
def mechanism_corr(analysis: dict, stdinit: dict) -> str:
    head = ["run", "model", "across-letter corr, trained (mean over placement pairs)",
            "same, raw weights", "same, at initialisation", "mean (1/D) Tr R(Δ1+Δ2)",
            "pairs with corr > 0"]
    rows = []

    def row(label, r, m, extra_pos=None):
        c = m["correlation"]["heads"][0]
        raw = m.get("correlation_raw_weights")
        init = m["correlation_init"]["heads"][0]
        pos = m["correlation"]["pos"]
        # mean over all (Δ1, Δ2) placement pairs, as the assumptions analysis averages it
        summ = m.get("assumptions", {}).get("summary", {})
        trace = (f"{summ['mean_trace']:.3f} (D={m['correlation']['d_head']})" if pos == "rope"
                 else "(no RoPE)")
        raw_s = f"{raw['heads'][0]['overall_mean']:+.3f}" if raw else "–"
        rows.append([label, r, f"{c['overall_mean']:+.3f}", raw_s, f"{init['overall_mean']:+.3f}",
                     trace, f"{100 * c['frac_positive']:.1f} %"])

    for src in (analysis, stdinit):
        for r in src["runs"]:
            m = r["models"]["mdm"]
            if "correlation" not in m:
                continue
            label = f"`{r['dir']}` ({r['preset']}, L={r['L']}, seed {r['seed']}, step {m['step']:,})"
            row(label, f"MDM ({m['headline_weights']})", m)
        for r in src.get("extra_runs", []):
            label = f"`{r['dir']}` (L={r['correlation']['L']}, seed 0)"
            row(label, "MDM (ema)", r)
    return table(head, rows)


def mechanism_fig5(analysis: dict, stdinit: dict) -> str:
    head = ["run", "model", "p(correct lowercase)", "max p(other letter)", "p(`0`)",
            "p(correct) > every other letter"]
    rows = []
    for src in (analysis, stdinit):
        for r in src["runs"]:
            for name, m in r["models"].items():
                mean = m["reverse_probabilities"]["mean"]
                rows.append([f"`{r['dir']}` ({r['preset']}, L={r['L']}, step {m['step']:,})",
                             f"{name.upper()} ({m['headline_weights']})", f"{mean['p_target']:.3f}",
                             f"{mean['p_max_other']:.3f}", f"{mean['p_pad']:.3f}",
                             f"{100 * mean['frac_target_beats_others']:.1f} % of queries"])
    return table(head, rows)


# ------------------------------------------------------------------------------ later inputs
def collapse_classify(files: dict[str, dict]) -> str | None:
    """One row per run of the collapse-classification files (scripts/diagnose_collapse.py
    classify) among `files` ({file name: contents}); None if there is none."""
    head = ["file", "run", "L", "init", "steps", "seeds", "escaped the self-attention state at the check step",
            "final status (learned / partial / collapsed)", "indicator agrees (escaped ⇔ learned)"]
    rows = []
    for name, d in files.items():
        runs = d.get("runs") if isinstance(d, dict) else None
        if not (isinstance(runs, list) and runs and isinstance(runs[0].get("seeds"), list)
                and "n_escaped" in runs[0]):
            continue  # another kind of collapse file (e.g. per-step diagnostics)
        for run in runs:
            seeds = run["seeds"]
            finals = [x.get("final_status") for x in seeds]
            if all(st is not None for st in finals):
                final = " / ".join(str(finals.count(k)) for k in ("learned", "partial", "collapsed"))
                agree = sum((x["escaped"] == (x["final_status"] == "learned")) for x in seeds)
                agree_s = f"{agree} / {len(seeds)}"
            else:
                final, agree_s = "–", "–"
            rows.append([f"`{name}`", f"`{run['run']}`", str(run["L"]), str(run["init"]),
                         f"{run['steps']:,}", str(run["n_seeds"]),
                         f"{run['n_escaped']} / {run['n_seeds']} (step {d['at']:,})", final, agree_s])
    return table(head, rows) if rows else None


# ------------------------------------------------------------------------------ README blocks
def toy_quick_L20(quick: dict) -> str:
    """toy_jax/README.md: the L = 20 column of the quick Table 2, one row per (model, weights)."""
    t = quick["top3_success"]["20"]
    head = ["model, weights", "fwd infill", "fwd completion", "rev infill", "rev completion"]
    rows = []
    for model, order in (("mdm", ("ema", "raw")), ("arm", ("raw", "ema"))):
        for i, w in enumerate(order):
            label = f"{model.upper()}, {w if w == 'raw' else 'EMA'}" + (" (headline)" if i == 0 else "")
            rows.append([label] + [spread(t[model][w][d][p]) for d in DIRS for p in PROTOCOLS])
    return table(head, rows)


def readme_toy(dig: dict, quick: dict) -> str:
    t2 = dig["table2_paper"]["L"]
    lo = dig["letters_only_L20"]
    seeds = _seeds(lo["per_seed"])
    head = ["L = 20, top-3 success %", "paper Table 2 (3 seeds, protocol not stated)", "H200, Table 8 settings, RADD init, 3 seeds",
            "H200, Table 8, `--init standard`, 8 seeds", "CPU, quick preset, 3 seeds"]
    ps = t2["20"]["per_seed"]
    s3 = _seeds(ps)
    q = quick["top3_success"]["20"]
    rows = []
    for model, w in (("mdm", "ema"), ("arm", "raw")):
        for i, d in enumerate(DIRS):
            for p in PROTOCOLS:
                std = (spread([lo["per_seed"][s]["mdm"]["ema"][d][p]["topk_success"] for s in seeds])
                       if model == "mdm" else "–")
                rows.append([f"{model.upper()} ({w}) {SHORT[d]} {p}", f"{PAPER_TABLE2[model][20][i]:.2f}",
                             per_seed([ps[s][model][w][d][p]["topk_success"] for s in s3]) + " (per seed)",
                             std, spread(q[model][w][d][p])])
    for i, d in enumerate(DIRS):
        rows.append([f"MDM (ema) {SHORT[d]}, letter-level (pad excluded) infill top-3",
                     f"{PAPER_TABLE2['mdm'][20][i]:.2f}", "–",
                     spread([lo["letters_only_infill"][s]["ema"][d]["topk_success"] for s in seeds]), "–"])
    return table(head, rows)
