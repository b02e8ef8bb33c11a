import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--L", "3", "--preset", "quick", "--d-model", "8", "--steps", "4", "--batch-size", "4",
        "--track-every", "2", "--no-progress"]


def _run(*args):
    return subprocess.run([sys.executable, str(ROOT / "toy_jax" / "train.py"), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_cli_end_to_end_and_bad_input(tmp_path):
    out = tmp_path / "run"
    r = _run(*TINY, "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((out / "results.json").read_text())
    for name in ("mdm", "arm"):
        for d in ("forward", "reverse"):
            for proto in ("infill", "completion"):
                for w in (res["models"][name], res["models"][name]["ema"]):
                    m = w[d][proto]
                    extra = {"topk_expected", "topk_uniform", "in_topk"}
                    assert set(m) == {"topk_success", "greedy_acc", "p_target", "rank"} | (
                        extra if proto == "infill" else set())
                    assert all(0.0 <= m[k] <= 1.0 for k in set(m) - {"rank"})
    assert res["headline"] == {"mdm": "ema", "arm": "raw"}
    assert (out / "config.json").exists() and (out / "metrics.jsonl").exists()
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    # bad input: one-line error, non-zero exit, nothing overwritten
    for bad in (["--L", "1"], ["--steps", "0"], ["--preset", "huge"], ["--model", "gpt"],
                ["--pos", "alibi"], ["--d-model", "12"]):  # 12 differs from the run's 8
        r = _run(*TINY, *bad, "--out", str(out))
        assert r.returncode != 0, bad
        assert len(r.stderr.strip().splitlines()) == 1, (bad, r.stderr)
        assert "Traceback" not in r.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before

    # unreadable checkpoint
    ck = out / "checkpoints" / "mdm"
    for f in ck.rglob("*"):
        if f.is_file() and "default" in f.parts:
            f.write_bytes(b"garbage")
    r = _run(*TINY, "--out", str(out))
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "checkpoint" in r.stderr
    assert json.loads((out / "results.json").read_text()) == res


@pytest.mark.parametrize("flag", ["--help"])
def test_help(flag):
    r = _run(flag)
    assert r.returncode == 0 and "--pos" in r.stdout and "--preset" in r.stdout
    for knob in ("--embed-init", "--ln-bias", "--t-sampler"):
        assert knob in r.stdout
