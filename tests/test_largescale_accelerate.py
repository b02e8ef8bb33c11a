"""The unchanged training script under `accelerate launch` with two CPU processes (data parallel).

Launched through the running interpreter (`sys.executable -m accelerate.commands.launch`), so
the test uses this environment's accelerate, whatever `accelerate` comes first on PATH.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from test_largescale_common import REPO, data_dir, subprocess_env  # noqa: F401


def test_two_process_data_parallel(tmp_path, data_dir):  # noqa: F811
    if importlib.util.find_spec("accelerate") is None:
        pytest.skip("accelerate is not installed")
    env = subprocess_env()
    env["ACCELERATE_USE_CPU"] = "1"  # torchrun-style launch of 2 processes on CPU (gloo)
    shadow = tmp_path / "bin"  # a broken `accelerate` first on PATH must not matter
    shadow.mkdir()
    (shadow / "accelerate").write_text("#!/bin/sh\necho wrong accelerate >&2\nexit 3\n")
    (shadow / "accelerate").chmod(0o755)
    env["PATH"] = f"{shadow}{os.pathsep}{env.get('PATH', '')}"
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29533",
           str(REPO / "largescale_torch" / "finetune.py"), "--model", "tiny-llama", "--dataset", "parent_child",
           "--direction", "c2p", "--seed", "1", "--out", str(out), "--epochs", "1",
           "--max-train-examples", "10", "--max-eval-examples", "5", "--data-dir", data_dir]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())
    assert res["resolved"]["num_processes"] == 2
    assert res["forward"]["n"] == 5 and res["reverse"]["n"] == 5  # shards gathered back in full
    assert r.stdout.count("results.json") == 1
