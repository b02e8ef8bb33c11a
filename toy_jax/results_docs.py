"""Build the tables of RESULTS.md, RESULTS_APPENDIX.md and README.md from the JSON files in results/.

    python scripts/make_results.py                 # rewrite the marked tables of every document (DOCS)
    python scripts/make_results.py --check         # exit 1 if a marked table differs from what results/ gives
    python scripts/make_results.py --figures       # also draw the figures made from the GPU-run digest
    python scripts/make_results.py --record-rerun runs/xmachine/baseline \\
        --rerun-command "..." --rerun-commit 1309a87 --out results/xmachine_L10_amd_epyc.json
    python scripts/make_results.py --record-table2 runs/study_quick/baseline \\
        --rerun-command "..." --rerun-commit feeb683 --out results/table2_quick_v3.json

(RUN_ROOT: a grid variant directory, RUN_ROOT/L<L>/results.json, as scripts/toy_grid.py and
scripts/study.py write them.)

A table lives in a marked block, `<!-- table:NAME -->` ... `<!-- /table:NAME -->`; only the text
between the markers is generated, the prose around it is written by hand. Every number in a
generated table comes from a file in results/ (each carries the command that produced it, the
code commit, the platform and the date; see `provenance` in each file). A block whose table
cannot be built from results/ is an error, so a document cannot keep a stale table.

Seed spread is the uncertainty shown: cells are per-seed values or mean (lowest–highest seed).

Which results file feeds which block is toy_jax/results_manifest.json (no result file is
named in code); the builders are `toy_jax.results_tables`. This module runs the manifest,
rewrites the documents, records reruns into results/ and draws the digest's figures. It is the
logic of scripts/make_results.py (which only calls `main`).
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from plumbing import io
from plumbing import provenance as pv
from plumbing.cli import OneLineParser, run_main  # argparse with one-line errors, exit 2
from toy_jax.collapse import render_diagnostics
from toy_jax.records import headline, per_weights, read_json
from toy_jax.results_tables import (
    DIRS,
    PROTOCOLS,
    VARIANT_ORDER,
    ResultsError,
    ablations,
    collapse_classify,
    cpu_paper_seed0,
    h200_letters,
    h200_rerun,
    h200_table2,
    h200_variants,
    mechanism_corr,
    mechanism_fig5,
    quick_table2,
    quick_table2_letter,
    readme_toy,
    toy_quick_L20,
    xmachine,
    xmachine_summary,
)

PROG = "make_results.py"
ROOT = Path(__file__).resolve().parents[1]
DOCS = ("RESULTS.md", "RESULTS_APPENDIX.md", "README.md", "toy_jax/README.md")
BLOCK_RE = re.compile(r"(<!-- table:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /table:(?P=name) -->)", re.S)
MANIFEST = Path(__file__).with_name("results_manifest.json")


def _load(path: Path) -> dict:
    if not path.is_file():
        raise ResultsError(f"missing results file: {path}")
    return json.loads(path.read_text())


# ------------------------------------------------------------------------------ registry
def _collapse_diagnostics(rec: dict, name: str) -> dict[str, str]:
    return {name: render_diagnostics(rec)}


def _toy_verdict(rec: dict, name: str) -> dict[str, str]:
    from toy_jax.verdict import tables  # lazy (with mini.summary below): they load numpy

    return tables(rec, name)


def _toy_study(rec: dict, name: str) -> dict[str, str]:
    from toy_jax.study import tables  # lazy: its tables load numpy

    return tables(rec, name)


def _mini_summary(rec: dict, name: str) -> dict[str, str]:
    from largescale_torch.mini.summary import tables

    return tables(rec, name)


# builder(*inputs) -> the markdown of the entry's block, or None (no block)
BLOCK_BUILDERS = {f.__name__: f for f in (
    quick_table2, toy_quick_L20, cpu_paper_seed0, ablations, mechanism_corr, mechanism_fig5,
    h200_table2, h200_variants, h200_letters, h200_rerun, readme_toy, xmachine,
    xmachine_summary, collapse_classify, quick_table2_letter)}
# builder(contents, file stem) -> {block name: markdown}, once per input file
FILE_BUILDERS = {"collapse_diagnostics": _collapse_diagnostics, "toy_verdict": _toy_verdict,
                 "mini_summary": _mini_summary, "toy_study": _toy_study}


def load_manifest(path: Path = MANIFEST) -> dict:
    """The manifest (see its "about"), checked: known builders, inputs, a block where needed."""
    m = _load(path)
    for section, known in (("tables", {**BLOCK_BUILDERS, **FILE_BUILDERS}), ("figures", FIGURES)):
        for entry in m.get(section, []):
            b, block = entry.get("builder"), entry.get("block")
            if b not in known:
                raise ResultsError(f"{path}: unknown builder {b!r} in {section}")
            if not entry.get("inputs") or not all(isinstance(i, str) for i in entry["inputs"]):
                raise ResultsError(f"{path}: builder {b!r} needs a list of inputs")
            if (b in BLOCK_BUILDERS) != isinstance(block, str):
                raise ResultsError(f"{path}: builder {b!r} " + (
                    "needs a block name" if block is None else "names its blocks itself"))
    return m


def _files(results: Path, pattern: str, optional: bool, cache: dict) -> list[Path]:
    """The file of `pattern` below results/ (a pattern with '*': its files in name order), read
    into `cache`; [] when absent and optional, else an error."""
    paths = sorted(results.glob(pattern)) if "*" in pattern else [results / pattern]
    paths = [p for p in paths if p.is_file()]
    if not paths and not optional:
        raise ResultsError(f"missing results file: {results / pattern}")
    for p in paths:
        if p not in cache:
            cache[p] = _load(p)
    return paths


def _args(results: Path, entry: dict, cache: dict) -> list | None:
    """A builder's arguments, one per input: a file's contents, or {file name: contents} for a
    pattern; None when an optional entry lacks one."""
    args = []
    for pattern in entry["inputs"]:
        paths = _files(results, pattern, entry.get("optional", False), cache)
        if not paths:
            return None
        args.append({p.name: cache[p] for p in paths} if "*" in pattern else cache[paths[0]])
    return args


# ------------------------------------------------------------------------------ driver
def build_tables(results: Path, manifest: dict | None = None) -> dict[str, str]:
    """Every table that results/ can give, by block name, as the manifest lays them out."""
    manifest = load_manifest() if manifest is None else manifest
    out: dict[str, str] = {}
    cache: dict = {}
    for entry in manifest["tables"]:
        b = entry["builder"]
        if b in FILE_BUILDERS:  # once per input file; an optional entry skips the absent ones
            made = {}
            for pattern in entry["inputs"]:
                for p in _files(results, pattern, entry.get("optional", False), cache):
                    # blocks named after the file: NAME for results/NAME.json, DIR_NAME below
                    made.update(FILE_BUILDERS[b](
                        cache[p], "_".join(p.relative_to(results).with_suffix("").parts)))
        else:
            args = _args(results, entry, cache)
            body = None if args is None else BLOCK_BUILDERS[b](*args)
            made = {} if body is None else {entry["block"]: body}
        for name, body in made.items():
            if name in out:
                raise ResultsError(f"block '{name}' is built twice (toy_jax/results_manifest.json)")
            out[name] = body
    return out


def update(text: str, tables: dict[str, str], where: str = "document") -> str:
    """Replace the body of every marked block in `text` with its generated table."""
    def sub(m: re.Match) -> str:
        name = m.group("name")
        if name not in tables:
            raise ResultsError(f"{where}: block '{name}' has no table in results/")
        return m.group(1) + tables[name] + m.group(4)
    return BLOCK_RE.sub(sub, text)


def provenance_here(command: str, commit: str) -> dict:
    """The provenance record (`plumbing.provenance.record`) of a run made on this machine at
    code `commit`, with its command and XLA_FLAGS."""
    xla = os.environ.get("XLA_FLAGS", "")
    return pv.record(command=command, commit=commit, **({"xla_flags": xla} if xla else {}))


def draw_figures(results: Path, out_dir: Path, manifest: dict | None = None) -> list[Path]:
    """The manifest's figures, drawn into `out_dir`."""
    manifest = load_manifest() if manifest is None else manifest
    written, cache = [], {}
    for entry in manifest.get("figures", []):
        args = _args(results, entry, cache)
        if args is not None:
            written += FIGURES[entry["builder"]](*args, out_dir)
    return written


def h200_over_training(curves_file: dict, out_dir: Path) -> list[Path]:
    """Reverse (and forward) greedy infill accuracy over training, every seed, from the digest's curves."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = curves_file["curves"]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def panel(ax, seeds: dict, key: str, title: str):
        import numpy as np
        ys = []
        for s in sorted(seeds, key=int):
            c = seeds[s]
            ax.plot(c["step"], c[key], lw=0.8, alpha=0.6, label=f"seed {s}")
            ys.append(c[key])
        n = min(len(y) for y in ys)
        mean = np.mean([y[:n] for y in ys], axis=0)
        ax.plot(seeds[sorted(seeds, key=int)[0]]["step"][:n], mean, "k-", lw=2.2, label="mean")
        ax.set_title(title, fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)

    # One variant, all 8 seeds: forward and reverse, raw and EMA weights.
    std = curves["paper_L20_mdm_8seeds/standard"]["mdm"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    for i, (w, pre) in enumerate((("raw", ""), ("EMA", "ema_"))):
        panel(axes[i, 0], std, pre + "infill_fwd_greedy_acc", f"forward greedy infill accuracy ({w})")
        panel(axes[i, 1], std, pre + "infill_rev_greedy_acc", f"reverse greedy infill accuracy ({w})")
    axes[0, 1].legend(fontsize=7, ncol=2)
    fig.suptitle("MDM, L = 20, Table 8 settings, `--init standard`, seeds 0–7 (H200; pad output allowed)",
                 fontsize=10)
    fig.tight_layout()
    p = out_dir / "h200_standard_L20_over_training.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    written.append(p)

    # Every variant: reverse greedy infill accuracy (raw weights), all seeds and the mean.
    names = [f"paper_L20_mdm_8seeds/{n}" for n in VARIANT_ORDER
             if f"paper_L20_mdm_8seeds/{n}" in curves] + ["bf16_partial_L20/radd"]
    fig, axes = plt.subplots(2, (len(names) + 1) // 2, figsize=(15, 7), sharex=True, sharey=True)
    for ax, name in zip(axes.flat, names):
        panel(ax, curves[name]["mdm"], "infill_rev_greedy_acc", name.split("/", 1)[1]
              + (" (bf16 forward)" if name.startswith("bf16") else ""))
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].set_ylabel("reverse greedy infill accuracy (raw)")
    fig.suptitle("MDM, L = 20, Table 8 settings: reverse greedy infill accuracy over training, "
                 "8 seeds per variant (H200; thin: seeds, black: mean)", fontsize=10)
    fig.tight_layout()
    p = out_dir / "h200_variants_L20_reverse_over_training.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    written.append(p)
    return written


FIGURES = {"h200_over_training": h200_over_training}  # builder(*inputs, out_dir) -> files


def _cells(run_root: Path) -> dict[str, dict]:
    """{L: results.json} of a grid variant directory (`toy_jax.experiments`' cell layout,
    RUN_ROOT/L<L>/results.json, e.g. runs/study_quick/baseline), ordered by L."""
    found = {p.parent.name[1:]: p for p in Path(run_root).glob("L*/results.json")
             if p.parent.name[1:].isdigit()}
    if not found:
        raise ResultsError(f"{run_root}: no L<L>/results.json (a grid variant directory, "
                           "e.g. runs/study_quick/baseline)")
    return {L: read_json(found[L]) for L in sorted(found, key=int)}


def _per_weights(res: dict) -> dict:
    """{seed: {model: {weights: {direction: {protocol: {metric: value}}}}}} of one results.json
    (the EMA block nested in the raw one, as results.json stores it, split out)."""
    return {seed: {name: {w: {d: {p: {k: round(float(v), 6) for k, v in b[d][p].items()
                                      if isinstance(v, (int, float))}
                                  for p in b[d]} for d in DIRS}
                          for w, b in by_w.items()}
                   for name, by_w in models.items()}
            for seed, models in per_weights(res).items()}


def _header(cells: dict) -> dict:
    """Preset and seeds of a grid variant's cells."""
    first = next(iter(cells.values()))
    return {"preset": first["config"].get("preset"), "seeds": first["seeds"]}


def record_table2(run_root: Path, command: str, commit: str, out: Path) -> None:
    """Record a grid variant's cells (RUN_ROOT/L<L>/results.json) into results/: every
    per-seed reading of both weight sets, and each model's forward status."""
    from toy_jax.evaluate import forward_status  # lazy: loads jax

    cells = _cells(run_root)
    rec = {**_header(cells), "L": {}}
    for L, res in cells.items():
        ps = _per_weights(res)
        head = {m: headline(res, m) for m in next(iter(ps.values()))}
        rec["L"][L] = {"per_seed": ps, "status": {
            m: {s: forward_status(ps[s][m][head[m]]["forward"]["completion"]["topk_success"])
                for s in ps} for m in head}}
    rec["provenance"] = provenance_here(command, commit)
    io.write_text(out, json.dumps(rec, indent=1) + "\n")


def record_rerun(run_root: Path, command: str, commit: str, out: Path) -> None:
    """Record a rerun (RUN_ROOT/L<L>/results.json) as per-seed top-3 success,
    top3_success[L][model][weights][direction][protocol] = [seed 0, seed 1, ...], with the
    provenance of this machine (the cross-machine table)."""
    cells = _cells(run_root)
    rec = {**_header(cells), "top3_success": {}}
    for L, res in cells.items():
        ps = _per_weights(res)
        seeds = [str(s) for s in res["seeds"]]
        rec["top3_success"][L] = {
            m: {w: {d: {p: [ps[s][m][w][d][p]["topk_success"] for s in seeds]
                         for p in PROTOCOLS} for d in DIRS} for w in ps[seeds[0]][m]}
            for m in ps[seeds[0]]}
    rec["provenance"] = provenance_here(command, commit)
    io.write_text(out, json.dumps(rec, indent=1) + "\n")


def _main(argv=None) -> int:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    ap.add_argument("--docs", type=Path, nargs="+", default=[ROOT / d for d in DOCS])
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    ap.add_argument("--figures", action="store_true", help="also draw the GPU-run figures")
    ap.add_argument("--record-rerun", type=Path, metavar="RUN_ROOT",
                    help="a grid variant directory (RUN_ROOT/L<L>/results.json, e.g. "
                         "runs/study_quick/baseline) to record as a cross-machine rerun")
    ap.add_argument("--record-table2", type=Path, metavar="RUN_ROOT",
                    help="a grid variant directory to record with every per-seed reading")
    ap.add_argument("--rerun-command", default="")
    ap.add_argument("--rerun-commit", default="")
    ap.add_argument("--out", type=Path, help="with --record-rerun: where to write")
    args = ap.parse_args(argv)
    try:
        for flag, src, record in (("--record-table2", args.record_table2, record_table2),
                                  ("--record-rerun", args.record_rerun, record_rerun)):
            if src:
                if not args.out or not args.rerun_command or not args.rerun_commit:
                    print(f"error: {flag} needs --out, --rerun-command and --rerun-commit",
                          file=sys.stderr)
                    return 2
                record(src, args.rerun_command, args.rerun_commit, args.out)
                print(f"wrote {args.out}")
                return 0
        tables = build_tables(args.results)
        stale = []
        for doc in args.docs:
            text = doc.read_text()
            new = update(text, tables, str(doc))
            if new != text:
                stale.append(doc)
                if not args.check:
                    io.write_text(doc, new)
        if args.figures:
            for p in draw_figures(args.results, args.results / "figures"):
                print(f"wrote {p}")
    except (ResultsError, OSError, KeyError, json.JSONDecodeError) as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if args.check:
        for doc in stale:
            print(f"{doc}: tables differ from results/ (run python scripts/make_results.py)")
        return 1 if stale else 0
    for doc in stale:
        print(f"updated {doc}")
    return 0


def main(argv=None) -> int:
    """scripts/make_results.py. Exit codes: 0 done (with --check: every table up to date),
    1 a difference (--check) or unusable results/, 2 bad arguments, 130 Ctrl-C."""
    return run_main(PROG, _main, argv)
