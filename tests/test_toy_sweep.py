"""scripts/sweep.py (logic in toy_jax.sweep): a tiny grid end to end, resume, dry run, and bad
variant flags."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from toy_jax import sweep

ROOT = Path(__file__).resolve().parents[1]

TINY = ["--preset", "quick", "--L", "3", "--seeds", "0", "1", "--d-model", "8", "--steps", "4",
        "--batch-size", "4", "--track-every", "2", "--no-progress"]


def test_tiny_grid_end_to_end_resume_and_dry_run(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = TINY + ["--variant", "base=", "--variant", "lnb0=--ln-bias 0 --steps 6",
                   "--out", str(out)]
    assert sweep.main(argv) == 0
    s = json.loads((out / "summary.json").read_text())
    assert [(r["variant"], r["L"]) for r in s["runs"]] == [("base", 3), ("lnb0", 3)]
    # flags reach the configs: the variant's own --steps wins over the sweep-wide one
    cfg = json.loads((out / "lnb0_L3" / "config.json").read_text())
    assert cfg["model"]["ln_bias"] == 0.0 and cfg["train"]["steps"] == 6
    assert cfg["seeds"] == [0, 1] and [m["name"] for m in cfg["models"]] == ["mdm"]
    assert json.loads((out / "base_L3" / "config.json").read_text())["train"]["steps"] == 4
    for run in s["runs"]:
        res = json.loads((out / f"{run['variant']}_L3" / "results.json").read_text())
        rows = [json.loads(l) for l in
                (out / f"{run['variant']}_L3" / "metrics.jsonl").read_text().splitlines()]
        steps = res["config"]["train"]["steps"]
        for seed in ("0", "1"):
            m = run["seeds"][seed]["mdm"]
            r = res["per_seed"][seed]["mdm"]
            # every reading of results.json is in the summary, raw and EMA, values unchanged
            assert set(m["end"]["raw"]["reverse"]) == set(r["reverse"]) >= {"infill",
                                                                            "completion"}
            assert m["end"]["ema"]["forward"] == r["ema"]["forward"]
            fwd = r["ema"]["forward"]["completion"]["topk_success"]
            assert m["collapsed"] == (fwd < 0.5)
            curve = [(x["step"], x["infill_rev_greedy_acc"]) for x in rows
                     if x["seed"] == int(seed)]
            t = m["tracked_rev_raw"]
            assert t["peak"] == max(v for _, v in curve)
            assert dict(curve)[t["peak_step"]] == t["peak"]
            second = [v for st, v in curve if st > steps / 2]
            assert t["mean_second_half"] == pytest.approx(sum(second) / len(second))
    md = (out / "summary.md").read_text()
    assert "| base | 3 | mdm | 0 |" in md and "| lnb0 | 3 | mdm | 1 |" in md
    assert "rev infill" in md and (out / "reverse_curves.png").stat().st_size > 0

    # rerun: finished runs are reused, not retrained
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.json*") if "summary" not in p.name}
    assert sweep.main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in before} == before

    # dry run: the grid with its state and a measured estimate; writes nothing
    capsys.readouterr()
    new = tmp_path / "fresh"
    assert sweep.main(TINY + ["--variant", "base=", "--variant", "std=--init standard",
                              "--out", str(new), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "2 variants x 1 L x 2 seeds = 2 runs" in text
    assert "measured at L=3" in text and "ms/step" in text
    assert text.count("[new]") == 2 and "estimated time:" in text
    assert not new.exists()
    assert sweep.main(argv + ["--dry-run"]) == 0  # the finished grid costs nothing
    assert "estimated time: 0 s" in capsys.readouterr().out
    # another config in an existing run directory is refused before anything runs
    assert sweep.main([a if a != "lnb0=--ln-bias 0 --steps 6" else "lnb0=--ln-bias 0.5"
                       for a in argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "lnb0_L3 holds a run" in err, err
    assert {p: p.stat().st_mtime_ns for p in before} == before


@pytest.mark.parametrize("variant", [
    "x=--bogus", "x=--L 5", "x=--seed 3", "x=--out /tmp/elsewhere", "noequals", "=--pos none",
    "x=--init foo", "x=--embed-init xavier", "x=--d-model 7 --heads 2", "x=--steps 0",
    "x=--pos 'learned"])
def test_bad_variant_flags_are_one_line_errors(variant, tmp_path, capsys):
    out = tmp_path / "sweep"
    code = sweep.main(TINY + ["--variant", "ok=", "--variant", variant, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("sweep.py: error:") and not out.exists()


def test_duplicate_names_and_no_variant(tmp_path, capsys):
    for extra in (["--variant", "a=", "--variant", "a=--init standard"], []):
        assert sweep.main(TINY + extra + ["--out", str(tmp_path / "s")]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_help_lists_the_shared_overrides():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "sweep.py"), "--help"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0
    for flag in ("--variant", "--dry-run", "--steps", "--embed-init", "--t-sampler", "--seeds"):
        assert flag in r.stdout
