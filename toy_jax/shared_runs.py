"""Digest of the paper-preset GPU run directories into small JSON files under results/.

    python scripts/digest_shared_runs.py --runs ../shared/runs/h200-2026-11-28 --out results/h200_2026-11-28.json

Reads only the run directories' own files (`config.json`, `metrics.jsonl`, `results.json`,
`table2.json`, `summary_L20.json`, and the first paragraph of `README.md` for the platform) and
writes two files:

- `--out`: per-seed end-of-training numbers of every run (all protocols, raw and EMA weights),
  each seed's forward status (`toy_jax.evaluate.forward_status`), the peak of the tracked
  reverse greedy infill accuracy, the letter-level (pad excluded) reading where it exists,
  and provenance: the SHA-256 of every file read, the code commit and platform of the runs,
  this command, the commit of this checkout and the date.
- `<out stem>_curves.json`: the tracked infill metrics of every seed over training, for figures.

`scripts/make_results.py` builds RESULTS.md's tables and figures from these files, so neither it
nor the tests need the run directories.

This module is the logic of scripts/digest_shared_runs.py (which only calls `main`).
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

from plumbing import io
from plumbing.cli import OneLineParser, run_main  # argparse with one-line errors, exit 2
from plumbing.provenance import git_state, utc_now
from toy_jax import records

PROG = "digest_shared_runs.py"

# The tracked infill metrics kept for the curves (raw and EMA weights, with the pad output allowed).
CURVE_KEYS = (
    "infill_fwd_greedy_acc", "infill_rev_greedy_acc", "infill_rev_p_target",
    "ema_infill_fwd_greedy_acc", "ema_infill_rev_greedy_acc",
)
READINGS = ("topk_success", "greedy_acc", "rank", "p_target")

# Variants of `paper_L20_mdm_8seeds/`, as the run directory's README describes them.
VARIANTS = {
    "radd": "the default at the runs' commit (RADD init: U(±1/√d) embeddings, LayerNorm bias 1)",
    "standard": "`--init standard` (GPT-2 init)",
    "emb1": "RADD init, embeddings from N(0, 1)",
    "lnb0": "RADD init, every LayerNorm bias 0",
    "vdm": "RADD init, low-discrepancy t sampler",
    "learned": "`--pos learned` (learned absolute positions, RADD init)",
}


class DigestError(ValueError):
    """A run directory is missing a file or holds something unexpected."""


def _load_json(path: Path, files: dict, root: Path):
    if not path.is_file():
        raise DigestError(f"missing file: {path}")
    data = path.read_bytes()
    files[str(path.relative_to(root))] = hashlib.sha256(data).hexdigest()
    return json.loads(data)


def _load_metrics(path: Path, files: dict, root: Path) -> list[dict]:
    if not path.is_file():
        raise DigestError(f"missing file: {path}")
    data = path.read_bytes()
    files[str(path.relative_to(root))] = hashlib.sha256(data).hexdigest()
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def _r(x: float, nd: int = 6) -> float:
    return float(round(float(x), nd))


def _seed_block(block: dict) -> dict:
    """{direction: {protocol: {reading: value}}} of one (model, weights)."""
    return {d: {p: {k: _r(block[d][p][k]) for k in READINGS if k in block[d][p]}
                for p in ("infill", "completion")} for d in ("forward", "reverse")}


def per_seed_results(results: dict) -> dict:
    """{seed: {model: {"raw"|"ema": {direction: {protocol: {reading: value}}}}}}."""
    return {seed: {name: {w: _seed_block(b) for w, b in by_w.items()}
                   for name, by_w in models.items()}
            for seed, models in records.per_weights(results).items()}


def tracked(rows: list[dict]) -> tuple[dict, dict]:
    """Per (model, seed): peak / last of the tracked reverse greedy infill accuracy, and the curves."""
    series: dict = {}
    for row in rows:
        if "infill_rev_greedy_acc" not in row:
            continue
        key = (row["model"], str(row["seed"]))
        series.setdefault(key, []).append(row)
    summary: dict = {}
    curves: dict = {}
    for (model, seed), rs in sorted(series.items()):
        rs = sorted(rs, key=lambda r: r["step"])
        rev = [r["infill_rev_greedy_acc"] for r in rs]
        i_peak = max(range(len(rev)), key=lambda i: rev[i])
        summary.setdefault(model, {})[seed] = {
            "raw_rev_greedy_infill_peak": _r(rev[i_peak]),
            "peak_step": rs[i_peak]["step"],
            "last_step": rs[-1]["step"],
            "raw_rev_greedy_infill_last": _r(rev[-1]),
            "raw_fwd_greedy_infill_last": _r(rs[-1]["infill_fwd_greedy_acc"]),
        }
        curves.setdefault(model, {})[seed] = {
            "step": [r["step"] for r in rs],
            **{k: [_r(r[k], 4) for r in rs] for k in CURVE_KEYS if k in rs[0]},
        }
    return summary, curves


def statuses(per_seed: dict, model: str, weights: str = "ema") -> dict:
    """Forward status of each seed from its forward completion top-k success (project rule)."""
    from toy_jax.evaluate import forward_status  # lazy: loads jax

    return {seed: forward_status(m[model][weights]["forward"]["completion"]["topk_success"])
            for seed, m in per_seed.items() if model in m}


def _readme_provenance(root: Path, files: dict) -> dict:
    path = root / "README.md"
    if not path.is_file():
        raise DigestError(f"missing file: {path}")
    text = path.read_text()
    files["README.md"] = hashlib.sha256(text.encode()).hexdigest()
    commit = re.search(r"at commit ([0-9a-f]{7,40})", text)
    platform = re.search(r"on one (\S+ GPU) \(([^)]*)\)", text)
    if not commit or not platform:
        raise DigestError(f"{path}: no 'at commit ...' / 'on one ... GPU (...)' line")
    return {"code_commit": commit.group(1),
            "platform": f"one NVIDIA {platform.group(1)}; {platform.group(2)}"}



def digest(root: Path) -> tuple[dict, dict]:
    """(digest, curves) of the run directories under `root`."""
    files: dict = {}
    out: dict = {"runs_of": _readme_provenance(root, files)}
    curves: dict = {}

    # Table 2 at Table 8's settings, 3 seeds, all L.
    t2 = _load_json(root / "table2_paper" / "table2.json", files, root)
    out["table2_paper"] = {"command": t2["command"], "seeds": t2["seeds"],
                           "wall_s": t2["wall_s"], "L": {}}
    for L in sorted(t2["runs"], key=int):
        run = root / "table2_paper" / f"L{L}"
        res = _load_json(run / "results.json", files, root)
        cfg = _load_json(run / "config.json", files, root)
        ps = per_seed_results(res)
        summ, cur = tracked(_load_metrics(run / "metrics.jsonl", files, root))
        out["table2_paper"]["L"][L] = {
            "preset": cfg["preset"], "steps": cfg["train"]["steps"], "per_seed": ps,
            "status_mdm": statuses(ps, "mdm"), "tracked": summ,
            "ms_per_step": {m: t["ms_per_step"] for m, t in res.get("timing", {}).items()},
        }
        curves[f"table2_paper/L{L}"] = cur

    # MDM at L = 20, 8 seeds, six variants.
    out["variants_L20"] = {}
    for name, what in VARIANTS.items():
        run = root / "paper_L20_mdm_8seeds" / f"{name}_L20"
        res = _load_json(run / "results.json", files, root)
        cfg = _load_json(run / "config.json", files, root)
        ps = per_seed_results(res)
        summ, cur = tracked(_load_metrics(run / "metrics.jsonl", files, root))
        out["variants_L20"][name] = {
            "what": what, "preset": cfg["preset"], "steps": cfg["train"]["steps"],
            "init": cfg["model"]["init"], "pos": cfg["model"]["pos"], "per_seed": ps,
            "status": statuses(ps, "mdm"), "tracked": summ["mdm"],
        }
        curves[f"paper_L20_mdm_8seeds/{name}"] = cur

    # The standard variant rerun and scored with the pad output excluded.
    run = root / "letters_only_L20" / "standard_L20"
    res = _load_json(run / "results.json", files, root)
    summ_json = _load_json(root / "letters_only_L20" / "summary_L20.json", files, root)
    letters = summ_json["standard"]["letters_only_infill"]
    ps = per_seed_results(res)
    out["letters_only_L20"] = {
        "what": "`--init standard`, L = 20, paper preset, seeds 0-7, step 3,000; infill queries "
                "scored with the logit of the pad output 0 set to -1e9 (summary_L20.json)",
        "per_seed": ps, "status": statuses(ps, "mdm"),
        "letters_only_infill": {
            seed: {w: {d: {k: _r(letters[f"{seed}_{w}_{d}"][k] / 100.0)
                           for k in ("greedy_acc", "topk_success")}
                       for d in ("forward", "reverse")} for w in ("raw", "ema")}
            for seed in ps},
    }

    # The default with its forward pass in bfloat16: metrics only, stopped at step 2,450.
    run = root / "bf16_partial_L20" / "radd_L20"
    cfg = _load_json(run / "config.json", files, root)
    summ, cur = tracked(_load_metrics(run / "metrics.jsonl", files, root))
    out["bf16_partial_L20"] = {
        "what": "the default (RADD init) with every parameter cast to bfloat16 in the forward pass; "
                "stopped by a time limit (metrics only)",
        "planned_steps": cfg["train"]["steps"], "tracked": summ["mdm"],
    }
    curves["bf16_partial_L20/radd"] = cur

    out["files_sha256"] = dict(sorted(files.items()))
    return out, curves


def _main(argv=None) -> int:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, required=True, help="the shared runs directory")
    ap.add_argument("--out", type=Path, required=True, help="digest JSON (curves go beside it)")
    args = ap.parse_args(argv)
    if not args.runs.is_dir():
        print(f"error: --runs: not a directory: {args.runs}", file=sys.stderr)
        return 2
    try:
        dig, curves = digest(args.runs)
    except (DigestError, KeyError, json.JSONDecodeError) as e:
        print(f"error: {args.runs}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    dig["digest"] = {
        "command": "python scripts/digest_shared_runs.py " + " ".join(
            ["--runs", str(args.runs), "--out", str(args.out)]),
        "commit": (git_state()["commit"] or "unknown")[:7],
        "date": utc_now(),
        "source": str(args.runs),
    }
    curves_path = args.out.with_name(args.out.stem + "_curves.json")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    io.write_text(args.out, json.dumps(dig, indent=1, sort_keys=True) + "\n")
    io.write_text(curves_path, json.dumps({"source": str(args.runs), "curves": curves},
                                          sort_keys=True, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} and {curves_path}")
    return 0


def main(argv=None) -> int:
    """scripts/digest_shared_runs.py. Exit codes: 0 done, 1 an unusable run directory (nothing
    written), 2 bad arguments, 130 Ctrl-C."""
    return run_main(PROG, _main, argv)
