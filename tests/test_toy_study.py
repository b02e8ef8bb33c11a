"""The one experiment layer: the named grids (Table 2, ablations, collapse by init), ad-hoc
variants from the command line, the grid runner (scripts/toy_grid.py) and the whole study
(scripts/study.py, logic in toy_jax.study) on tiny configurations: dry run, report, resume,
refusal of another config, one-line errors and Ctrl-C."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from toy_jax import configs, experiments as E, study as S
from toy_jax.train import build_parser as train_parser, config_from_args

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
TINY_MO = {"d_model": 8}
TINY_TO = {"steps": 4, "batch_size": 4, "warmup_steps": 1, "track_every": 2, "ckpt_every": 4}
TINY = (TINY_MO, TINY_TO, {})
TINY_FLAGS = ["--d-model", "8", "--steps", "4", "--batch-size", "4", "--warmup", "1",
              "--track-every", "2", "--ckpt-every", "4", "--no-progress"]


def _run(script: str, *args, timeout=300):
    return subprocess.run([sys.executable, f"scripts/{script}", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def _one_line_error(r, code=2):
    assert r.returncode == code, (r.stdout[-2000:], r.stderr[-2000:])
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr


# ------------------------------------------------------------------ the registry
def test_study_table2_cells_are_the_verdict_grids_baseline_cells(tmp_path):
    """A study pointed at the table2_verdict_cpu grid's directory reuses its baseline cells:
    same configs, same directories."""
    parts = S.study_cells("quick")
    t2 = {(v, L): c for v, L, c in parts["table2"]}
    assert sorted(t2) == [("baseline", L) for L in (10, 20, 30, 40)]
    grid = {(v, L): c for v, L, c in E.cells(E.GRIDS["table2_verdict_cpu"], "quick")
            if v == "baseline"}
    for L in (10, 20, 30, 40):
        want = E.VARIANTS["baseline"].config(L, "quick", range(8))
        assert t2[("baseline", L)] == want == grid[("baseline", L)]
        assert want.models == configs.make_config(L=L, preset="quick").models
        assert want.seeds == tuple(range(8))
        assert E.cell_dir(tmp_path, "baseline", L) == tmp_path / "baseline" / f"L{L}"
    # the ablations' and the collapse table's baselines are the same cells, run once
    cells = S.unique_cells(parts)
    assert len(cells) == len({(v, L) for v, L, _ in cells}) == 14
    assert [L for _, L, _ in cells] == sorted(L for _, L, _ in cells)  # cheap cells first


def test_ablation_variants_change_what_their_name_says():
    want = {"baseline": {"mdm": ("full", "mdm", "rope", "standard"),
                         "arm": ("causal", "arm", "rope", "standard")},
            "mdm_learned": {"mdm": ("full", "mdm", "learned", "standard")},
            "mdm_nopos": {"mdm": ("full", "mdm", "none", "standard")},
            "mdm_causal": {"mdm_causal": ("causal", "mdm", "rope", "standard")},
            "arm_learned": {"arm": ("causal", "arm", "learned", "standard")},
            "arm_rope": {"arm": ("causal", "arm", "rope", "standard")},
            "mdm_raddinit": {"mdm": ("full", "mdm", "rope", "radd")}}
    assert set(E.GRIDS["ablations"].variants) == set(want)
    for name, models in want.items():
        cfg = E.VARIANTS[name].config(10, "paper", (0, 1, 2))
        assert cfg.seeds == (0, 1, 2) and cfg.preset == "paper"
        got = {m: (*[getattr(cfg.spec(m), k) for k in ("attention", "objective")],
                   cfg.configs_for(m)[0].pos, cfg.model.init) for m in (s.name for s in cfg.models)}
        assert got == models, name
    assert set(E.GRIDS["collapse"].variants) == {"baseline", "mdm_raddinit"}
    assert E.VARIANTS["baseline"].config(10, "quick", (0,)).model.init == "standard"


def test_a_variant_equal_to_the_baseline_under_a_preset_is_left_out():
    """The ARM's positions ablation: learned positions under the paper preset (RoPE ARM), RoPE
    under the quick one (learned-position ARM); the other variant would repeat the baseline."""
    g = E.GRIDS["ablations"]
    for preset, gone, kept in (("quick", "arm_learned", "arm_rope"),
                               ("paper", "arm_rope", "arm_learned")):
        names = {v for v, _, _ in E.cells(g, preset)}
        assert gone not in names and kept in names and E.left_out(E.cells(g, preset), g.variants) == [gone]
        base = E.VARIANTS["baseline"].config(10, preset, (0,))
        assert E.same_as_baseline(E.VARIANTS[gone].config(10, preset, (0,)), base)
        assert not E.same_as_baseline(E.VARIANTS[kept].config(10, preset, (0,)), base)
    # a grid without the baseline keeps its control (the init sweep's GPT-2-init MDM)
    assert "mdm_standard" in {v for v, _, _ in E.cells(E.GRIDS["init_sweep"], "paper")}


def test_the_new_runner_builds_the_old_runners_configs():
    """reproduce_table2 / ablations / sweep built these configs; the grid cells are equal."""
    seeds, mo, to = (0, 1), {"d_model": 8}, {"steps": 20, "batch_size": 8, "warmup_steps": 5,
                                              "track_every": 10}
    (_, _, cfg), = E.cells(E.GRIDS["table2"], "quick", [4], 2, overrides=(mo, to, {}))
    assert cfg == configs.make_config(L=4, preset="quick", model="both", seeds=seeds,
                                      model_overrides=mo, train_overrides=to)
    for name, model, att, own in (("mdm_causal", "mdm", "causal", {}),
                                  ("mdm_learned", "mdm", None, {"pos": "learned"}),
                                  ("arm_learned", "arm", None, {"pos": "learned"})):
        (_, _, cfg), = E.cells(E.GRIDS["ablations"], "quick", [4], 2, [name],
                               overrides=(mo, to, {}))
        assert cfg == configs.make_config(L=4, preset="quick", model=model, seeds=seeds,
                                          attention=att, model_overrides={**mo, **own},
                                          train_overrides=to)
    v = E.parse_variant("radd=--model mdm --init radd --lr 0.002")
    flags = ["--model", "mdm", "--init", "radd", "--lr", "0.002", "--L", "4", "--seed", "0", "1",
             "--preset", "quick", "--d-model", "8", "--steps", "20", "--batch-size", "8",
             "--warmup", "5", "--track-every", "10"]
    (_, _, cfg), = E.cells(E.Grid("g", ("radd",)), "quick", [4], 2, registry={"radd": v},
                           overrides=(mo, to, {}))
    assert cfg == config_from_args(train_parser().parse_args(flags))


def test_variant_flags_override_the_grid_wide_ones():
    v = E.parse_variant("x=--steps 6 --ln-bias 0 --model mdm --attention causal --top-k 5")
    cfg = v.under(TINY).config(3, "quick", (0,))
    assert cfg.train.steps == 6 and cfg.train.batch_size == 4 and cfg.model.ln_bias == 0.0
    assert cfg.eval.top_k == 5 and [m.name for m in cfg.models] == ["mdm_causal"]
    assert E.parse_variant("base=").config(3, "quick", (0,)) == \
        configs.make_config(L=3, preset="quick")  # default model: both


@pytest.mark.parametrize("spec", [
    "x=--bogus", "x=--L 5", "x=--seed 3", "x=--out /tmp/elsewhere", "x=--preset paper",
    "noequals", "=--pos none", "x=--init foo", "x=--embed-init xavier", "x=--steps 0",
    "x=--pos 'learned", "baseline=--init radd"])
def test_bad_variant_specs_are_refused(spec):
    with pytest.raises(ValueError):
        v = E.parse_variant(spec)
        v.config(3, "quick", (0,))  # a value only the config refuses (--steps 0)


# ------------------------------------------------------------------ the grid runner CLI
def test_grid_runner_end_to_end_resume_refusal_and_dry_run(tmp_path):
    out = tmp_path / "g"
    argv = ["--variant", "base=--model mdm", "--variant", "lnb0=--model mdm --ln-bias 0 --steps 6",
            "--L", "3", "--seeds", "2", *TINY_FLAGS, "--out", str(out)]
    r = _run("toy_grid.py", *argv)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = json.loads((out / "lnb0" / "L3" / "config.json").read_text())
    assert cfg["model"]["ln_bias"] == 0.0 and cfg["train"]["steps"] == 6
    assert cfg["seeds"] == [0, 1] and [m["name"] for m in cfg["models"]] == ["mdm"]
    assert json.loads((out / "base" / "L3" / "config.json").read_text())["train"]["steps"] == 4
    rec = json.loads((out / "verdict.json").read_text())
    assert [(c["variant"], c["L"]) for c in rec["cells"]] == [("base", 3), ("lnb0", 3)]
    assert rec["command"].startswith("python scripts/toy_grid.py --variant")
    stamp = lambda: {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.parent.name == "L3"}
    before = stamp()
    r = _run("toy_grid.py", *argv)  # resumes: every cell finished, nothing retrained
    assert r.returncode == 0 and r.stdout.count("finished, reused") == 2, r.stderr[-2000:]
    assert stamp() == before
    r = _run("toy_grid.py", *argv, "--dry-run")
    assert r.returncode == 0 and r.stdout.count("  finished  ") == 2
    assert "2 cells; left: about 0 min" in r.stdout
    # another config in a cell directory: refused, one line, before anything runs
    bad = [a if a != "lnb0=--model mdm --ln-bias 0 --steps 6" else "lnb0=--model mdm"
           for a in argv] + ["--variant", "new=--model mdm"]
    r = _run("toy_grid.py", *bad)
    _one_line_error(r)
    assert "lnb0/L3" in r.stderr and "another config" in r.stderr
    assert not (out / "new").exists() and stamp() == before
    _one_line_error(_run("toy_grid.py", "--variant", "x=--L 5", "--out", str(out)))


def test_grid_runner_dry_run_of_a_named_grid_writes_nothing(tmp_path):
    r = _run("toy_grid.py", "--grid", "ablations", "--preset", "quick", "--dry-run", "--out",
             str(tmp_path / "a"))
    assert r.returncode == 0, r.stderr
    for v in E.GRIDS["ablations"].variants:
        for L in (10, 20):  # arm_learned is the quick preset's baseline ARM: left out
            assert (f"{v:<12} L={L:<3}" in r.stdout) == (v != "arm_learned"), v
    assert "arm_learned: left out, the baseline under preset quick" in r.stdout
    assert "12 cells" in r.stdout and not (tmp_path / "a").exists()


# ------------------------------------------------------------------ the study
def test_quick_study_dry_run_lists_table2_and_the_ablations(tmp_path):
    out = tmp_path / "study"
    r = _run("study.py", "--preset", "quick", "--dry-run", "--out", str(out))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for L in (10, 20, 30, 40):
        (row,) = [ln for ln in lines if ln.startswith(f"baseline     L={L:<3}")]
        cfg = E.VARIANTS["baseline"].config(L, "quick", range(8))
        steps = ",".join(dict.fromkeys(str(E.model_steps(cfg, m)) for m in ("mdm", "arm")))
        assert "models=mdm,arm" in row and "seeds=8" in row and f"steps={steps} " in row
        assert str(out / "baseline" / f"L{L}") in row
    for v in ("mdm_learned", "mdm_nopos", "mdm_causal", "arm_rope", "mdm_raddinit"):
        for L in (10, 20):
            assert sum(ln.startswith(f"{v:<12} L={L:<3}") for ln in lines) == 1, v
    assert "arm_learned left out (the baseline under preset quick)" in r.stdout
    assert not any(ln.startswith("arm_learned ") for ln in lines)
    assert "14 cells; left: about" in r.stdout and "min on the 2-core CPU" in r.stdout
    assert not out.exists()
    _one_line_error(_run("study.py", "--preset", "huge"))
    _one_line_error(_run("study.py", "--seeds", "0"))


def _tiny_grids():
    G = E.Grid
    return {"table2": G("table2", ("baseline",), Ls=(3,), n_seeds=2),
            "ablations": G("ablations", ("baseline", "mdm_causal"), Ls=(3,), n_seeds=2),
            "collapse": G("collapse", ("baseline", "mdm_raddinit"), Ls=(3,), n_seeds=2)}


def test_tiny_study_writes_one_report_and_resumes(tmp_path):
    out, log = tmp_path / "study", []
    rec = S.run_study("quick", out, overrides=TINY, grids=_tiny_grids(), n_boot=5,
                      progress=False, command="tiny study", log=log.append)
    rep = out / "report"
    md, js = (rep / "report.md").read_text(), json.loads((rep / "report.json").read_text())
    assert js == json.loads(json.dumps(rec))
    assert sorted((c["variant"], c["L"]) for c in js["digest"]["cells"]) == \
        [("baseline", 3), ("mdm_causal", 3), ("mdm_raddinit", 3)]
    assert js["parts"]["table2"] == [["baseline", 3, str(out / "baseline" / "L3")]]
    mdm = js["digest"]["cells"][0]["models"]["mdm"]["seeds"]
    assert set(mdm) == {"0", "1"} and "rev_letter" in mdm["0"]["ema"]["final"]
    for head in ("## Table 2", "## Ablations", "## Collapse by initialisation", "## Figures",
                 "## Cells", "Command: `tiny study`", "3 of 3 cells finished"):
        assert head in md, head
    assert "| 3 | MDM | EMA | 2 |" in md and "| 3 | ARM | raw | 2 |" in md  # Table 2 rows
    assert "| mdm_causal | 3 | MDM_CAUSAL | EMA | 2 |" in md  # beside the MDM baseline
    assert sum(ln.startswith(("| standard | baseline | 3 |", "| radd | mdm_raddinit | 3 |"))
               for ln in md.splitlines()) == 2
    assert {r["init"] for r in js["collapse"]} == {"standard", "radd"}
    for name in ("correlation", "attention_dynamics", "fig5_probabilities_L3_quick"):
        assert f"(figures/{name}.png)" in md and (rep / "figures" / f"{name}.png").is_file()
    assert "(reverse_curves.png)" in md and (rep / "reverse_curves.png").is_file()
    assert sum("done in" in ln for ln in log) == 3
    # the same tables from report.json alone (make_results' `toy_study` blocks)
    blocks = S.tables(js, "s")
    assert set(blocks) == {"s_table2", "s_ablations", "s_collapse"}
    assert all(body.endswith("|\n") and body in md for body in blocks.values())

    stamp = lambda: {p: p.stat().st_mtime_ns for p in out.rglob("*")
                     if p.is_file() and "report" not in p.parts}
    figs = {p: p.stat().st_mtime_ns for p in (rep / "figures").iterdir()}
    before, again = stamp(), []
    S.run_study("quick", out, overrides=TINY, grids=_tiny_grids(), n_boot=5, progress=False,
                command="tiny study", log=again.append)
    assert sum("finished, reused" in ln for ln in again) == 3
    assert not any("done in" in ln or ln.startswith("figures:") for ln in again)
    assert stamp() == before  # nothing retrained
    assert {p: p.stat().st_mtime_ns for p in (rep / "figures").iterdir()} == figs
    assert "| baseline | 3 | mdm,arm | 2 | 4 |" in (rep / "report.md").read_text()


def test_table2_table_shows_the_paper_beside_and_a_missing_reading_as_a_dash():
    fin = lambda fwd, rev, letter: {"final": {"fwd_completion": fwd, "rev_top3": rev,
                                              "rev_letter": letter}, "curve": {}}
    seeds = {"0": {"ema": fin(0.99, 0.4, 0.9), "raw": fin(0.98, 0.3, None)},
             "1": {"ema": fin(0.97, 0.6, 0.7), "raw": fin(0.96, 0.5, None)}}
    arm = {"0": {"raw": fin(1.0, 0.0, None)}, "1": {"raw": fin(1.0, 0.0, None)}}
    d = {"cells": [{"variant": "baseline", "L": 20, "models": {
        "mdm": {"headline": "ema", "seeds": seeds}, "arm": {"headline": "raw", "seeds": arm}}}]}
    rows = S.table2_table(d).splitlines()
    assert rows[2] == ("| 20 | MDM | EMA | 2 | 98.0 ± 1.0 | 97.36 | 50.0 ± 10.0 | 40 60 | "
                       "55.70 | 80.0 ± 10.0 |")
    assert rows[3] == "| 20 | ARM | raw | 2 | 100.0 ± 0.0 | 99.80 | 0.0 ± 0.0 | 0 0 | 0.00 | – |"


def test_study_refuses_a_cell_with_another_config_before_running(tmp_path):
    out = tmp_path / "study"
    (out / "mdm_causal" / "L3").mkdir(parents=True)
    cfg = configs.make_config(L=3, preset="quick", seeds=(0, 1), model_overrides=TINY_MO,
                              train_overrides=TINY_TO)  # another run's config
    (out / "mdm_causal" / "L3" / "config.json").write_text(cfg.to_json())
    with pytest.raises(ValueError, match="mdm_causal/L3 another config"):
        S.run_study("quick", out, overrides=TINY, grids=_tiny_grids(), progress=False,
                    log=lambda s: None)
    assert not (out / "baseline").exists() and not (out / "report").exists()


@pytest.mark.parametrize("script,args", [("study.py", []),
                                         ("toy_grid.py", ["--grid", "table2", "--L", "10"])])
def test_ctrl_c_is_one_line_and_says_how_to_resume(script, args, tmp_path):
    """Ctrl-C in the first cell, made deterministic: a sitecustomize in the subprocess makes
    `rundir.run_experiment` raise KeyboardInterrupt (a real SIGINT while training a tiny
    config can leave the process waiting in jax.device_get for good, toy_jax/train.py too)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import toy_jax.rundir as r\n\n\ndef _stop(*a, **k):\n    raise KeyboardInterrupt\n\n\n"
        "r.run_experiment = _stop\n")
    out = tmp_path / "study"
    r = subprocess.run([sys.executable, f"scripts/{script}", *args, "--preset", "quick",
                        "--seeds", "1", "--out", str(out), "--no-progress"], cwd=ROOT,
                       env=dict(ENV, PYTHONPATH=f"{site}{os.pathsep}{ROOT}"),
                       capture_output=True, text=True, timeout=300)
    _one_line_error(r, 130)
    line = r.stderr.strip()
    assert line == (f"{script}: interrupted; finished cells and checkpoints are kept in {out}; "
                    "rerun the same command to resume")
