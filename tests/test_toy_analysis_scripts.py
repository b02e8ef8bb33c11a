"""scripts/reproduce_table2.py, scripts/ablations.py and scripts/make_figures.py (logic in
toy_jax.table2, toy_jax.ablations, toy_jax.figures) end to end on a tiny configuration, and
their one-line errors on bad input."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from toy_jax import ablations
from toy_jax import figures as make_figures
from toy_jax import table2 as reproduce_table2

ROOT = Path(__file__).resolve().parents[1]

TINY = ["--steps", "2", "--d-model", "8", "--batch-size", "4", "--warmup", "1",
        "--no-progress"]


def _git_status() -> set | None:
    r = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                       capture_output=True, text=True)
    return set(r.stdout.splitlines()) if r.returncode == 0 else None


def test_table_ablations_figures_end_to_end(tmp_path, monkeypatch):
    t2 = tmp_path / "t2"
    assert reproduce_table2.main(["--L", "3", "--seeds", "0", "1", "--track-every", "2",
                                  "--out", str(t2), *TINY]) == 0
    md = (t2 / "table2.md").read_text()
    assert "| MDM | ema | infill |" in md and "| ARM | raw | completion |" in md
    assert "Command: `python scripts/reproduce_table2.py --L 3" in md
    summary = json.loads((t2 / "table2.json").read_text())
    vals = summary["top3_success"]["3"]["mdm"]["ema"]["reverse"]["infill"]
    assert len(vals) == 2 and all(0.0 <= v <= 1.0 for v in vals)
    assert summary["wall_s"]["3"] > 0

    ab = tmp_path / "ab"
    assert ablations.main(["--L", "3", "--seeds", "0", "1", "--track-every", "2",
                           "--variants", "mdm", "arm",
                           "--baselines-from", str(t2), "--out", str(ab), *TINY]) == 0
    md = (ab / "ablations.md").read_text()
    for label in ("MDM (RoPE) [baseline] | ema", "ARM (RoPE) [baseline] | raw"):
        assert label in md, label
    res = json.loads((ab / "ablations.json").read_text())["top3_success"]
    # the reused baseline is exactly Table 2's run (no retraining)
    assert res["mdm"]["3"]["ema"]["reverse"]["infill"] == vals

    figs = tmp_path / "figs"
    assert make_figures.main(["--runs", str(t2 / "L3"), "--extra-runs", str(t2 / "L3"),
                              "--out", str(figs), "--n-boot", "5"]) == 0
    for name in ("correlation", "attention_dynamics", "reverse_over_training",
                 "fig5_probabilities_L3_quick", "assumptions_L3_quick"):
        p = figs / f"{name}.png"
        assert p.exists() and p.read_bytes()[:4] == b"\x89PNG", name
    a = json.loads((figs / "analysis.json").read_text())
    mdm = a["runs"][0]["models"]["mdm"]
    assert np.all(np.isfinite(mdm["correlation"]["heads"][0]["corr_mean"]))
    assert len(mdm["correlation"]["heads"][0]["delta_sum"]) == 3  # sums 2, 3, 4 at L = 3
    assert np.all(np.isfinite(list(mdm["assumptions"]["summary"].values())))
    assert mdm["over_training"]["ema_infill_rev_p_target"]["final_step"] == 2
    assert "arm" in a["runs"][0]["models"] and a["extra_runs"][0]["model"] == "mdm"
    assert "across-letter score correlation" in (figs / "analysis.md").read_text()

    # no arguments, as the README runs it: every run under ./runs, figures in runs/figures
    cwd = tmp_path / "cwd"
    shutil.copytree(t2 / "L3", cwd / "runs" / "L3")
    (cwd / "runs" / "not_a_run").mkdir()
    before = _git_status()
    monkeypatch.chdir(cwd)
    assert make_figures.main([]) == 0
    for name in ("correlation", "fig5_probabilities_L3_quick", "analysis"):
        assert list((cwd / "runs" / "figures").glob(f"{name}.*")), name
    assert sorted(p.name for p in cwd.iterdir()) == ["runs"]  # nothing outside runs/
    after = _git_status()
    if before is not None:  # nothing written into the checkout
        assert not [ln for ln in after - before
                    if ln.endswith((".png", "analysis.json", "analysis.md"))]


def test_make_figures_without_runs_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert make_figures.main([]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no toy run" in err and "--runs" in err
    assert list(tmp_path.iterdir()) == []


def _one_line_error(res):
    code, err = res
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("mod,args", [
    (reproduce_table2, ["--L", "1"]),
    (reproduce_table2, ["--L", "3", "3"]),
    (ablations, ["--variants", "mdm_alibi"]),
    (ablations, ["--baselines-from", "/nonexistent/dir"]),
    (make_figures, ["--runs", "/nonexistent/run"]),
])
def test_bad_input_in_process(mod, args, capsys, tmp_path):
    code = mod.main([*args, "--out", str(tmp_path / "o")] if mod is not make_figures
                    else [*args, "--out", str(tmp_path / "o")])
    _one_line_error((code, capsys.readouterr().err))
    assert not (tmp_path / "o" / "table2.md").exists()


@pytest.mark.parametrize("script,args", [("reproduce_table2.py", ["--preset", "huge"]),
                                         ("ablations.py", ["--L", "x"])])
def test_bad_flag_subprocess(script, args):
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args],
                       capture_output=True, text=True, timeout=60)
    _one_line_error((r.returncode, r.stderr))


@pytest.mark.parametrize("script", ["reproduce_table2.py", "ablations.py", "make_figures.py"])
def test_help(script):
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--out" in r.stdout


def test_ablation_variant_configs():
    """Each ablation changes exactly what its name says (the rest is the preset's)."""
    want = {"mdm": ("full", "mdm", "rope", "standard"),
            "arm": ("causal", "arm", "rope", "standard"),
            "mdm_learned": ("full", "mdm", "learned", "standard"),
            "mdm_nopos": ("full", "mdm", "none", "standard"),
            "mdm_causal": ("causal", "mdm", "rope", "standard"),
            "arm_learned": ("causal", "arm", "learned", "standard"),
            "mdm_raddinit": ("full", "mdm", "rope", "radd")}
    assert set(want) == set(ablations.VARIANTS)
    for name, (att, obj, pos, init) in want.items():
        cfg = ablations.variant_config(name, 10, "quick", (0, 1, 2), {}, {})
        (spec,) = cfg.models
        assert (spec.attention, spec.objective, cfg.model.pos, cfg.model.init) == \
            (att, obj, pos, init), name
        assert cfg.seeds == (0, 1, 2) and cfg.preset == "quick"
