"""Smoke tests of `python theory/verify.py`."""
import json
import os
import subprocess
import sys

import pytest

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
    assert report["passed"] and [c["id"] for c in report["checks"]] == [1, 2, 3, 4, 5]
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
