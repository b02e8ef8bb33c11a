"""Smoke tests of `python theory/verify.py`."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from interruptible import default_sigint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "theory", "verify.py")


def test_quick_run_writes_report(tmp_path):
    out = tmp_path / "tmp"
    res = subprocess.run([sys.executable, "theory/verify.py", "--quick", "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ALL CHECKS PASS" in res.stdout
    for name in ("report.json", "report.md", "fig1_closed_form_vs_mc.png", "fig2_theorem41_bound.png",
                 "fig3_eq1_riemann.png", "fig4_table4_cantelli.png", "fig5_asymmetric_slack.png"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] and [c["id"] for c in report["checks"]] == [1, 2, 3, 4, 5, 6]
    assert report["checks"][5]["name"] == "delta1_ne_delta2_fixed_rho"
    assert "[PASS] 6. delta1_ne_delta2_fixed_rho" in res.stdout
    assert report["checks"][3]["numbers"]["matching_conventions"] == ["round(4)-then-truncate(3)"]


def test_runs_from_another_directory(tmp_path):
    res = subprocess.run([sys.executable, SCRIPT, "--quick", "--seed", "3", "--dims", "16,32"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [["--dims", "15"], ["--dims", "0"], ["--dims", "-4"], ["--dims", "a"],
                                  ["--base", "1"], ["--base", "0.5"], ["--base", "x"], ["--bogus"],
                                  ["--seed", "1.5"]])
def test_bad_arguments_one_line_error(tmp_path, args):
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, SCRIPT, "--quick", "--out", str(out), *args],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "error" in res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""
    assert not out.exists()


def test_unwritable_out_fails_before_computing(tmp_path):
    """An --out that cannot be a directory (a path under a regular file) is refused up front: exit 2."""
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, SCRIPT, "--out", str(blocker / "out")],  # full preset
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - t0
    assert res.returncode == 2
    assert res.stdout == ""  # no report printed: nothing was computed
    assert len(res.stderr.strip().splitlines()) == 1 and "--out" in res.stderr and "Traceback" not in res.stderr
    assert elapsed < 30  # imports only; the full preset computes for much longer
    assert blocker.read_text() == "x"


def test_interrupt_exits_130_with_one_line(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, SCRIPT, "--out", str(out)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    deadline = time.monotonic() + 60
    while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # --out is created right before the (full-preset) computation starts
    time.sleep(0.5)
    assert proc.poll() is None, "finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert len(stderr.strip().splitlines()) == 1 and "interrupted" in stderr and "Traceback" not in stderr
    assert stdout == ""
    assert not out.exists()  # created for this run, left empty, removed again
