"""The seed axis sharded over two (simulated CPU) devices trains exactly as on one device."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# Train a tiny 2-seed MDM with `trainer.train_model`, save its parameters, metrics and the
# number of devices its parameters live on.
SCRIPT = r"""
import json, sys
import jax, numpy as np
from toy_jax.configs import make_config
from toy_jax.trainer import train_model

out = sys.argv[1]
cfg = make_config(L=3, preset="quick", model="mdm", seeds=(0, 1),
                  model_overrides=dict(d_model=8),
                  train_overrides=dict(steps=4, batch_size=4, track_every=2))
tm = train_model(cfg, "mdm", metrics_path=__import__("pathlib").Path(out + ".jsonl"),
                 progress=False)
leaves = jax.tree_util.tree_leaves_with_path({"params": tm.params, "ema": tm.ema})
np.savez(out + ".npz", **{jax.tree_util.keystr(p): np.asarray(v) for p, v in leaves})
json.dump({"device_count": jax.device_count(),
           "param_devices": len(leaves[0][1].sharding.device_set)}, open(out + ".json", "w"))
"""


def _train(tmp_path, n_devices: int):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    if n_devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n_devices}"
    out = str(tmp_path / f"dev{n_devices}")
    r = subprocess.run([sys.executable, "-c", SCRIPT, out], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads(Path(out + ".json").read_text())
    metrics = [json.loads(l) for l in Path(out + ".jsonl").read_text().splitlines()]
    return info, dict(np.load(out + ".npz")), metrics


def test_two_devices_match_one(tmp_path):
    info1, p1, m1 = _train(tmp_path, 1)
    info2, p2, m2 = _train(tmp_path, 2)
    assert info1 == {"device_count": 1, "param_devices": 1}
    assert info2 == {"device_count": 2, "param_devices": 2}  # the sharded path ran
    assert p1.keys() == p2.keys() and len(p1) > 10
    for k in p1:
        assert p1[k].shape[0] == 2  # the seed axis
        np.testing.assert_allclose(p2[k], p1[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert [(r["seed"], r["step"]) for r in m1] == [(r["seed"], r["step"]) for r in m2]
    # continuous metrics only: after 4 steps from a zero head the logits are nearly tied, and
    # ranks / argmax flip on float round-off that differs between the two programs
    for a, b in zip(m1, m2):
        for k, v in a.items():
            if k not in ("time_s", "model") and not isinstance(v, list) \
                    and "rank" not in k and "greedy" not in k:
                np.testing.assert_allclose(b[k], v, rtol=1e-5, atol=1e-6, err_msg=k)
    # the two seeds differ, so equal results are not trivially equal
    assert not np.allclose(p1["['params']['embed']"][0], p1["['params']['embed']"][1])
