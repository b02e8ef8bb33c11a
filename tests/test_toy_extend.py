"""Rerunning a finished run with a larger --steps trains on from its last checkpoint and equals
a run started with that many steps; any other config change is still refused."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--L", "3", "--model", "mdm", "--d-model", "8", "--batch-size", "4", "--warmup", "1",
        "--track-every", "2", "--ckpt-every", "2", "--no-progress", "--seed", "0"]


def _train(out, *extra):
    return subprocess.run([sys.executable, "toy_jax/train.py", *TINY, "--out", str(out), *extra],
                          cwd=ROOT, capture_output=True, text=True)


def test_extend_equals_longer_run(tmp_path):
    assert _train(tmp_path / "ext", "--steps", "4").returncode == 0
    assert _train(tmp_path / "ext", "--steps", "8").returncode == 0
    assert _train(tmp_path / "full", "--steps", "8").returncode == 0
    ext = json.loads((tmp_path / "ext" / "results.json").read_text())
    full = json.loads((tmp_path / "full" / "results.json").read_text())
    assert ext["per_seed"] == full["per_seed"]
    assert json.loads((tmp_path / "ext" / "config.json").read_text())["train"]["steps"] == 8
    # fewer steps, or another change, is refused with a one-line error
    for extra in (["--steps", "6"], ["--steps", "10", "--lr", "0.01"]):
        r = _train(tmp_path / "ext", *extra)
        assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
