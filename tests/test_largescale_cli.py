"""End-to-end CLI finetune + evaluation per tiny preset, resume, Table 1 collection, bad input."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from largescale_torch.commands import base_commands, table1_commands
from test_largescale_common import REPO, data_dir, subprocess_env  # noqa: F401
from interruptible import default_sigint  # noqa: E402

FINETUNE = str(REPO / "largescale_torch" / "finetune.py")
E2E = {
    "tiny-llama": ("parent_child", "p2c"),
    "tiny-qwen": ("person_description", "d2p"),
    "tiny-llada": ("trex", "forward"),
}


def _run(args, data_dir=None, timeout=120, cwd=REPO):  # noqa: F811
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                          env=subprocess_env(), timeout=timeout)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):  # noqa: F811
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for preset, (dataset, direction) in E2E.items():
        d = root / preset
        r = _run([FINETUNE, "--model", preset, "--dataset", dataset, "--direction", direction, "--seed", "1",
                  "--out", str(d), "--epochs", "1", "--max-train-examples", "8", "--max-eval-examples", "4",
                  "--data-dir", data_dir])
        assert r.returncode == 0, r.stderr[-2000:]
        out[preset] = (d, r)
    return out


@pytest.mark.parametrize("preset", list(E2E))
def test_e2e_finetune_and_eval(runs, preset):
    d, r = runs[preset]
    res = json.loads((d / "results.json").read_text())
    assert res["family"] == preset.split("-")[1] and res["is_mdm"] == (preset == "tiny-llada")
    for direction in ("forward", "reverse"):
        assert 0.0 <= res[direction]["final"] <= res[direction]["best"] <= 1.0 and res[direction]["n"] == 4
    assert res["protocol"]["gen_length"] == 32 and res["protocol"]["max_new_tokens"] == 32
    for f in ("config.json", "dataset.json", "metrics.jsonl", "predictions.jsonl"):
        assert (d / f).is_file()
    resolved_model = json.loads((d / "config.json").read_text())["resolved"]["model_path"]
    for a in ("final", "best_forward", "best_reverse", "checkpoints/epoch_0001"):
        adapter = json.loads((d / a / "adapter_config.json").read_text())
        assert adapter["base_model_name_or_path"] == resolved_model  # never null, LLaDA included
    prov = json.loads((d / "config.json").read_text())["provenance"]
    assert prov == res["provenance"]
    assert len(prov["commit"]) == 40 and prov["libraries"]["torch"] and prov["libraries"]["peft"]
    assert prov["model"]["local_path"].endswith(preset) and prov["model"]["hub_revision"] is None
    if res["dataset"] == "trex":
        assert prov["data"]["sha256"] is None  # generated in code
    else:
        assert len(prov["data"]["sha256"]) == 64 and all(len(h) == 64 for h in prov["data"]["files"].values())
    assert res["protocol"]["chat_template"] is True and res["config"]["mdm_pad_to"] == "batch"
    metrics = [json.loads(l) for l in (d / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["epoch"] == 1 and metrics[0]["loss"] > 0 and "reverse_exact" in metrics[1]
    assert len((d / "predictions.jsonl").read_text().splitlines()) == 8
    assert "results.json" in r.stdout


def test_resume_extends_run(runs, data_dir):  # noqa: F811
    d, _ = runs["tiny-llama"]
    # resumed through a differently spelled --out (relative to another working directory)
    r = _run([FINETUNE, "--model", "tiny-llama", "--dataset", "parent_child", "--direction", "p2c", "--seed", "1",
              "--out", f"./{d.name}/../{d.name}", "--epochs", "2", "--max-train-examples", "8",
              "--max-eval-examples", "4", "--data-dir", data_dir], cwd=d.parent)
    assert r.returncode == 0, r.stderr[-2000:]
    epochs = [json.loads(l)["epoch"] for l in (d / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 1, 2, 2]  # epoch 1 kept, epoch 2 trained after resuming from the checkpoint
    assert json.loads((d / "results.json").read_text())["final_epoch"] == 2
    config_before = (d / "config.json").read_text()
    assert len(json.loads(config_before)["provenance_history"]) == 1  # the first start's record is kept
    bad = _run([FINETUNE, "--model", "tiny-llama", "--dataset", "parent_child", "--direction", "p2c", "--seed", "2",
                "--out", str(d), "--epochs", "2", "--max-train-examples", "8", "--max-eval-examples", "4",
                "--data-dir", data_dir])
    assert bad.returncode == 2 and "different config (seed)" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert (d / "config.json").read_text() == config_before  # refused before touching the run


def test_table1_and_analysis(runs, tmp_path, data_dir):  # noqa: F811
    root = runs["tiny-llama"][0].parent
    r = _run([str(REPO / "scripts" / "table1.py"), str(root), "--out", str(tmp_path / "t1.md")])
    assert r.returncode == 0, r.stderr
    assert "Table 1" in r.stdout and "89.9" in r.stdout and (tmp_path / "t1.json").is_file()
    assert "best-of-checkpoints" in r.stdout.splitlines()[0]
    final = _run([str(REPO / "scripts" / "table1.py"), str(root), "--final"])
    assert final.returncode == 0 and "final-epoch" in final.stdout.splitlines()[0]
    llada = runs["tiny-llada"][0]
    r = _run([str(REPO / "largescale_torch" / "analyze.py"), "--run", str(llada), "--max-examples", "6"])
    assert r.returncode == 0, r.stderr[-2000:]
    a = json.loads((llada / "analysis.json").read_text())
    ft = a["reverse_first_token"]
    assert ft["n"] == 6 and all(0 < p < 1 for p in ft["prob"]) and all(r >= 1 for r in ft["rank"])


def test_no_args_prints_usage_and_every_table1_command(data_dir):  # noqa: F811
    r = _run([FINETUNE])
    assert r.returncode == 0 and "usage:" in r.stdout
    cmds = [c for _, cs in table1_commands() for c in cs]
    assert len(cmds) == 5 * 3 * 3 and all(c in r.stdout for c in cmds)
    cmds += base_commands()  # the base-model control, one evaluate.py per model and row
    assert len(cmds) == 5 * 3 * 3 + 5 * 3 and all(c in r.stdout for c in cmds)
    readme = (REPO / "largescale_torch" / "README.md").read_text()
    assert all(c in readme for c in cmds), "largescale_torch/README.md is out of date with commands.py"


@pytest.mark.parametrize("args,needle", [
    (["--dataset", "wikipedia", "--direction", "p2c"], "unknown dataset"),
    (["--dataset", "trex", "--direction", "p2c"], "does not fit"),
    (["--dataset", "parent_child", "--direction", "sideways"], "does not fit"),
    (["--dataset", "parent_child", "--direction", "p2c", "--model", "/no/such/model"], "cannot load model"),
    (["--dataset", "parent_child", "--direction", "p2c", "--epochs", "0"], "--epochs"),
    (["--dataset", "parent_child", "--direction", "p2c", "--report-to", "mlflow"], "report-to"),
    (["--dataset", "parent_child", "--direction", "p2c", "--data-dir", "/no/such/dir"], "does not exist"),
])
def test_bad_input_one_line_error(args, needle, tmp_path, data_dir, capsys):  # noqa: F811
    from largescale_torch.finetune import main

    base = {"--model": "tiny-llama", "--seed": "1", "--out": str(tmp_path / "run"), "--data-dir": data_dir}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    argv = [x for kv in base.items() for x in kv]
    assert main(argv) == 2  # bad arguments / config
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run" / "results.json").exists()


def test_bad_input_subprocess_has_no_traceback(data_dir):  # noqa: F811
    r = _run([FINETUNE, "--model", "tiny-llama", "--dataset", "trex", "--direction", "c2p", "--seed", "1",
              "--out", "/tmp/never", "--data-dir", data_dir])
    assert r.returncode == 2 and r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1


def test_ctrl_c_exits_130_and_names_the_checkpoint(tmp_path, data_dir):  # noqa: F811
    out = tmp_path / "run"
    cmd = [sys.executable, FINETUNE, "--model", "tiny-llama", "--dataset", "parent_child", "--direction", "p2c",
           "--seed", "1", "--out", str(out), "--epochs", "500", "--max-train-examples", "8",
           "--max-eval-examples", "1", "--eval-every", "1000", "--save-every", "1", "--data-dir", data_dir]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env=subprocess_env(), preexec_fn=default_sigint)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("checkpoints/epoch_*/trainer_state.pt")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert "interrupted (last checkpoint" in last and "rerun the same command to resume" in last
    assert "Traceback" not in err and not (out / "results.json").exists()


@pytest.mark.parametrize("objective", ["sft", "pretrain"])
def test_objective_flag_reaches_the_config(objective, tmp_path, monkeypatch):
    """--objective selects the finetuning loss (TrainConfig.objective); pretrain masks the prompt too."""
    import largescale_torch.training as training
    from largescale_torch.finetune import main

    seen = {}

    def fake_run(cfg):
        seen["cfg"] = cfg
        return {d: {"final": 0.0, "best": 0.0} for d in ("forward", "reverse")}

    monkeypatch.setattr(training, "run", fake_run)
    argv = ["--model", "tiny-llama", "--dataset", "trex", "--direction", "forward", "--seed", "1",
            "--out", str(tmp_path / "run")]
    assert main(argv + (["--objective", objective] if objective != "sft" else [])) == 0
    assert seen["cfg"].objective == objective
