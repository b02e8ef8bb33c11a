"""scripts/make_figures.py (logic in toy_jax.figures) end to end on a tiny run directory of
the grid runner (toy_jax.experiments), and its one-line errors on bad input. The grid runner
and the study themselves: tests/test_toy_study.py."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from toy_jax import experiments
from toy_jax import figures as make_figures

ROOT = Path(__file__).resolve().parents[1]

TINY = ({"d_model": 8}, {"steps": 2, "batch_size": 4, "warmup_steps": 1, "track_every": 2}, {})


def _git_status() -> set | None:
    r = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                       capture_output=True, text=True)
    return set(r.stdout.splitlines()) if r.returncode == 0 else None


def test_grid_cells_to_figures_end_to_end(tmp_path, monkeypatch):
    t2 = tmp_path / "t2"
    cells = experiments.cells(experiments.GRIDS["table2"], "quick", [3], 2, overrides=TINY)
    (run,) = experiments.run_grid(cells, t2, progress=False, log=lambda s: None)
    assert run == t2 / "baseline" / "L3"
    res = json.loads((run / "results.json").read_text())
    vals = [res["per_seed"][s]["mdm"]["ema"]["reverse"]["infill"]["topk_success"]
            for s in ("0", "1")]
    assert all(0.0 <= v <= 1.0 for v in vals)

    figs = tmp_path / "figs"
    assert make_figures.main(["--runs", str(run), "--extra-runs", str(run),
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
    shutil.copytree(run, cwd / "runs" / "L3")
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


def test_bad_input_in_process(capsys, tmp_path):
    code = make_figures.main(["--runs", "/nonexistent/run", "--out", str(tmp_path / "o")])
    _one_line_error((code, capsys.readouterr().err))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("script,args", [("study.py", ["--preset", "huge"]),
                                         ("toy_grid.py", ["--L", "x"]),
                                         ("make_figures.py", ["--n-boot", "x"])])
def test_bad_flag_subprocess(script, args):
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args],
                       capture_output=True, text=True, timeout=60)
    _one_line_error((r.returncode, r.stderr))


@pytest.mark.parametrize("script", ["study.py", "toy_grid.py", "make_figures.py"])
def test_help(script):
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--out" in r.stdout
