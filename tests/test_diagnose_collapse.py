"""scripts/diagnose_collapse.py (logic in toy_jax.collapse): the collapse classifier on
constructed runs, and a tiny diagnostics run end to end."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from toy_jax import collapse as dc
from toy_jax.configs import make_config
from toy_jax.evaluate import COLLAPSE_BELOW, LEARNED_AT, forward_status

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "diagnose_collapse.py"


def _constructed_run(out: Path, weights: dict, fwd_completion: dict | None) -> Path:
    """A run directory whose tracked cue attention and final forward completion are given:
    weights[seed] = [(step, attn_fwd_weight), ...]."""
    cfg = make_config(L=6, preset="quick", model="mdm", seeds=tuple(weights))
    out.mkdir(parents=True)
    (out / "config.json").write_text(cfg.to_json())
    rows = [{"model": "mdm", "seed": s, "step": st, "attn_fwd_weight": w, "loss": 1.0}
            for s, pts in weights.items() for st, w in pts]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if fwd_completion is not None:
        per_seed = {str(s): {"mdm": {"ema": {"forward": {"completion": {"topk_success": v}}}}}
                    for s, v in fwd_completion.items()}
        (out / "results.json").write_text(json.dumps(
            {"headline": {"mdm": "ema"}, "per_seed": per_seed}))
    return out


def test_forward_status_thresholds():
    assert forward_status(LEARNED_AT) == "learned"
    assert forward_status(COLLAPSE_BELOW - 1e-9) == "collapsed"
    assert forward_status((LEARNED_AT + COLLAPSE_BELOW) / 2) == "partial"


def test_classify_detects_the_collapsed_seed(tmp_path):
    """Seed 0 never attends to the cue and ends with 2 % forward completion; seed 1 escapes at
    step 200 and learns; seed 2 escapes only after the check step."""
    run = _constructed_run(tmp_path / "r", {
        0: [(100, 0.0), (200, 0.0), (300, 0.0), (400, 0.0)],
        1: [(100, 0.1), (200, 0.8), (300, 0.9), (400, 0.9)],
        2: [(100, 0.0), (200, 0.0), (300, 0.2), (400, 0.7)]},
        {0: 0.02, 1: 0.97, 2: 0.93})
    r = dc.classify_run(run, at=300)
    by = {e["seed"]: e for e in r["seeds"]}
    assert [by[s]["escaped"] for s in (0, 1, 2)] == [False, True, False]
    assert [by[s]["final_status"] for s in (0, 1, 2)] == ["collapsed", "learned", "learned"]
    assert by[1]["first_escape_step"] == 200 and by[2]["first_escape_step"] == 400
    assert by[0]["first_escape_step"] is None
    assert r["n_escaped"] == 1 and r["n_seeds"] == 3
    assert dc.classify_run(run, at=400)["n_escaped"] == 2


def test_classify_cli_writes_json_and_rejects_bad_input(tmp_path):
    run = _constructed_run(tmp_path / "r", {0: [(50, 0.0), (100, 0.9)]}, None)
    out = tmp_path / "c.json"
    r = subprocess.run([sys.executable, str(SCRIPT), "classify", str(run), "--at", "100",
                        "--out", str(out), "--note", "made by hand"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert d["runs"][0]["n_escaped"] == 1 and d["runs_made_by"] == "made by hand"
    assert "final_status" not in d["runs"][0]["seeds"][0]  # no results.json: no final status
    for args in (["classify", str(run), "--at", "500"], ["classify", str(tmp_path / "nope")]):
        r = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr


def test_tiny_diagnostics_run_and_record(tmp_path):
    out = tmp_path / "diag"
    r = subprocess.run([sys.executable, str(SCRIPT), "train", "--L", "4", "--seeds", "0", "1",
                        "--steps", "4", "--every", "2", "--out", str(out), "--train-flags",
                        "--d-model 8 --batch-size 4 --warmup 1"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(l) for l in (out / "diagnostics.jsonl").read_text().splitlines()]
    assert sorted({(x["seed"], x["step"]) for x in rows}) == [
        (s, t) for s in (0, 1) for t in (0, 2, 4)]
    for x in rows:  # the [M] row is a distribution over itself, the cue and the pads
        assert x["w_self"] + x["w_cue"] + x["w_pad"] == pytest.approx(1.0, abs=1e-5)
        assert 0.0 <= x["p_pad"] <= 1.0 and x["gnorm_w_head"] >= 0.0
    rec = dc.record(out)
    assert rec["run_config"]["model"]["init"] == "radd" and len(rec["rows"]) == 6
    md = dc.render_diagnostics(rec, steps=(0, 4))
    assert md.count("\n") == 2 + 4  # header, rule, 2 seeds x 2 steps
