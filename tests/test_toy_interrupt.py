"""The toy CLIs' exit codes (0 done, 1 failure, 2 bad arguments, 130 Ctrl-C), Ctrl-C of a
training run (one line, then the same command resumes to the uninterrupted result) and the
defaults that train.py --help shows."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toy_jax import bench, train
from plumbing.cli import UsageError, run_main
from toy_jax import figures as make_figures
from toy_jax import summarize as summarize_runs

from interruptible import default_sigint

ROOT = Path(__file__).resolve().parents[1]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("exc,code", [(UsageError("bad --x"), 2), (OSError("disk full"), 1),
                                      (FloatingPointError("nan"), 1),
                                      (RuntimeError("checkpoint"), 1),
                                      (KeyboardInterrupt(), 130)])
def test_run_main_codes(exc, code, capsys):
    def body(argv):
        raise exc

    assert run_main("prog.py", body, []) == code
    line = _one_line(capsys)
    assert line.startswith("prog.py: ")
    assert ("interrupted" in line) == (code == 130)


def test_run_main_passes_bugs_and_results_through(capsys):
    assert run_main("prog.py", lambda argv: 0, []) == 0
    with pytest.raises(TypeError):  # a bug keeps its traceback
        run_main("prog.py", lambda argv: None + 1, [])
    assert capsys.readouterr().err == ""


def test_interrupt_message_is_the_last_line_after_a_progress_bar(capsys):
    from tqdm.auto import tqdm

    def body(argv):
        bar = tqdm(total=10, file=sys.stderr, desc="mdm")
        bar.update(3)
        raise KeyboardInterrupt("rerun the same command to resume")

    assert run_main("prog.py", body, []) == 130
    err = capsys.readouterr().err
    assert err.rstrip().splitlines()[-1] == "prog.py: interrupted; rerun the same command to resume"


def _interrupt(*a, **k):
    raise KeyboardInterrupt


@pytest.mark.parametrize("mod,target,argv", [
    (train, "toy_jax.rundir.run_experiment", ["--L", "3", "--steps", "1"]),
    (make_figures, "toy_jax.figures.make_figures", ["--runs", "."]),  # scripts/make_figures.py
    (summarize_runs, "toy_jax.summarize.summarize", None),  # scripts/summarize_runs.py
    (bench, "toy_jax.bench.setup_jax", ["--no-torch"]),  # scripts/bench_toy.py's main
])
def test_every_toy_cli_exits_130_on_ctrl_c(mod, target, argv, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(target, _interrupt)
    if argv is None:  # summarize_runs: one run directory with a results.json
        (tmp_path / "results.json").write_text("{}")
        argv = [str(tmp_path)]
    else:
        argv = [*argv, "--out", str(tmp_path / "o")]
    assert mod.main(argv) == 130
    line = _one_line(capsys)
    assert "interrupted" in line and "Traceback" not in line
    if mod is train:  # scripts/study.py and scripts/toy_grid.py: tests/test_toy_study.py
        assert "rerun the same command" in line


@pytest.mark.parametrize("mod,argv,code", [
    (train, ["--L", "1"], 2),
    (train, ["--steps", "0"], 2),
    (make_figures, ["--runs", "/nonexistent/run"], 2),
    (summarize_runs, ["/nonexistent/run"], 2),
    (bench, ["--L", "1"], 2),
    (bench, ["--L"], 2),
    (bench, ["--steps", "0"], 2),
])
def test_bad_arguments_exit_2(mod, argv, code, capsys):
    try:
        got = mod.main(argv)
    except SystemExit as e:  # argparse
        got = e.code
    assert got == code
    _one_line(capsys)


def test_train_help_shows_presets_and_defaults():
    r = subprocess.run([sys.executable, str(ROOT / "toy_jax" / "train.py"), "--help"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())  # argparse wraps help lines
    from toy_jax.configs import PRESET_CHOICES, make_config

    cfgs = {p: make_config(preset=p) for p in PRESET_CHOICES}
    for flag, field in (("--batch-size", "batch_size"), ("--steps", "steps"),
                        ("--warmup", "warmup_steps"), ("--track-every", "track_every")):
        vals = ", ".join(f"{p}: {getattr(c.train, field)}" for p, c in cfgs.items())
        assert f"({vals})" in text, flag
    assert f"(paper: {cfgs['paper'].model.d_model}, quick: {cfgs['quick'].model.d_model})" in text
    assert "one vmapped program (default: 0)" in text  # --seed
    assert "preset values" in r.stdout
    table = r.stdout.split("preset values", 1)[1]
    assert any(ln.split()[:3] == ["--lr", "0.0003", "0.001"] for ln in table.splitlines())


TINY = ["--L", "3", "--preset", "quick", "--model", "mdm", "--d-model", "8", "--steps", "40",
        "--batch-size", "4", "--track-every", "2", "--ckpt-every", "2", "--no-progress"]


def _cmd(out: Path) -> list[str]:
    return [sys.executable, str(ROOT / "toy_jax" / "train.py"), *TINY, "--out", str(out)]


def _metrics(out: Path) -> list[dict]:
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "time_s"} for r in rows]


def test_ctrl_c_one_line_then_same_command_resumes_exactly(tmp_path):
    out, ref = tmp_path / "run", tmp_path / "ref"
    # the uninterrupted reference runs beside the interrupted run
    p_ref = subprocess.Popen(_cmd(ref), cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    p = subprocess.Popen(_cmd(out), cwd=tmp_path, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    ck = out / "checkpoints" / "mdm"
    deadline = time.monotonic() + 400
    while not (ck.is_dir() and any(d.name.isdigit() for d in ck.iterdir())):
        assert p.poll() is None, p.stderr.read()
        assert time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("train.py: interrupted; last checkpoint: ")
    assert f"{ck}/" in lines[0] and lines[0].endswith("rerun the same command to resume")
    assert not (out / "results.json").exists()

    r = subprocess.run(_cmd(out), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "absl" not in r.stderr, r.stderr
    _, ref_err = p_ref.communicate(timeout=600)
    assert p_ref.returncode == 0, ref_err[-2000:]
    got = json.loads((out / "results.json").read_text())
    want = json.loads((ref / "results.json").read_text())
    assert got["models"] == want["models"] and got["per_seed"] == want["per_seed"]
    assert _metrics(out) == _metrics(ref)
