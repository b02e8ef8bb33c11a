"""scripts/summarize_runs.py on a tiny real run, and its one-line error on a missing run."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--L", "3", "--steps", "2", "--d-model", "8", "--batch-size", "4", "--warmup", "1",
        "--track-every", "2", "--no-progress"]


def test_summarize_tiny_run(tmp_path):
    run = tmp_path / "tiny"
    subprocess.run([sys.executable, "toy_jax/train.py", *TINY, "--seed", "0", "1", "--out", str(run)],
                   cwd=ROOT, check=True, capture_output=True)
    out = subprocess.run([sys.executable, "scripts/summarize_runs.py", str(run), "--out",
                          str(tmp_path / "t.md")], cwd=ROOT, check=True, capture_output=True, text=True)
    rows = [ln for ln in out.stdout.splitlines() if ln.startswith("| tiny |")]
    # 2 models x 2 seeds x (raw, ema), each with 6 success cells (3 readings x fwd, rev) in [0, 100]
    assert len(rows) == 8
    for ln in rows:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        assert all(0.0 <= float(c) <= 100.0 for c in cells[5:11])
    assert (tmp_path / "t.md").read_text() == out.stdout


def test_summarize_missing_run(tmp_path):
    out = subprocess.run([sys.executable, "scripts/summarize_runs.py", str(tmp_path / "nope")],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
