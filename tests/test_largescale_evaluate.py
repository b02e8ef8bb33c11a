"""evaluate.py: the README's commands on the tiny presets (base model, your own facts, a saved
dataset, a run's adapter, LLaDA's reversal poems, Table 1's base row), one-line refusals that
write nothing, and the LoRA / sampler flags as part of a run's identity."""
from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from largescale_torch.commands import base_commands
from largescale_torch.modeling import resolve_model
from test_largescale_common import REPO, data_dir, subprocess_env  # noqa: F401
from test_largescale_userdata import write_poems

EVALUATE = str(REPO / "largescale_torch" / "evaluate.py")
FINETUNE = str(REPO / "largescale_torch" / "finetune.py")
README = (REPO / "largescale_torch" / "README.md").read_text()
SECTION = README.split("## Evaluate without training", 1)[1].split("\n## ", 1)[0]
FAST = ["--gen-length", "8", "--block-length", "8", "--sampler-steps", "8"]


def readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", SECTION, flags=re.S).group(1)
    return [ln.strip() for ln in block.splitlines() if ln.strip() and not ln.startswith("#")]


def _run(argv: list[str], cwd: Path, timeout: int = 180) -> subprocess.CompletedProcess:
    if argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
        if argv[1].endswith(".py"):
            argv[1] = str(REPO / argv[1])  # the README's scripts, run from another directory
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=subprocess_env(), timeout=timeout)


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory, data_dir):  # noqa: F811
    """Every command of the README's evaluate section, as written, in a fresh directory."""
    for preset in ("tiny-llada", "tiny-qwen", "tiny-llama"):
        resolve_model(preset, data_dir)  # builds the presets (the commands pass no --data-dir)
    cwd = tmp_path_factory.mktemp("readme")
    shutil.copytree(REPO / "examples", cwd / "examples", ignore=shutil.ignore_patterns("lm_eval"))
    write_poems(cwd / "poem_data.json")  # the user's file: a synthetic one in LLaDA's format
    outputs = []
    for cmd in readme_commands():
        argv = shlex.split(cmd)
        if argv[1] == "-c":
            pytest.importorskip("datasets")
        r = _run(argv, cwd)
        assert r.returncode == 0, f"{cmd}\n{r.stderr[-3000:]}"
        outputs.append((cmd, r))
    return cwd, outputs


def test_readme_section_covers_each_capability():
    cmds = readme_commands()
    joined = "\n".join(cmds)
    for needle in ("--dataset trex", "--dataset examples/my_facts.jsonl", "save_to_disk", "--run ",
                   "--adapter best_reverse", "--poems ", "scripts/table1.py", "--lora-targets", "--gen-length"):
        assert needle in joined, needle
    assert all(c in README for c in base_commands())


def test_base_model_evaluation(readme_run):
    cwd, _ = readme_run
    d = cwd / "runs/eval/tiny-llada-trex-base"
    res = json.loads((d / "results.json").read_text())
    assert res["kind"] == "evaluation" and res["weights"] == "base" and res["adapter"] is None
    assert res["family"] == "llada" and res["is_mdm"] and res["dataset"] == "trex" and res["direction"] == "forward"
    for direction in ("forward", "reverse"):
        assert res[direction]["n"] == 4 and res[direction]["final"] == res[direction]["best"]
        assert res[direction]["forward_passes_per_query"] > 0
    assert res["protocol"]["gen_length"] == 8 and res["protocol"]["decoding"]["steps"] == 8
    assert res["protocol"]["chat_template"] is True
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["kind"] == "evaluation" and cfg["provenance"] == res["provenance"]
    assert len(cfg["provenance"]["commit"]) == 40 and cfg["config"]["sampler_steps"] == 8
    rows = [json.loads(l) for l in (d / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and {r["direction"] for r in rows} == {"forward", "reverse"}
    assert len(json.loads((d / "dataset.json").read_text())["reverse"]) == 450
    assert not list(d.parent.glob(".*tmp*"))  # the temporary directory is gone


def test_own_facts_jsonl_and_saved_dataset(readme_run):
    cwd, _ = readme_run
    res = json.loads((cwd / "runs/eval/tiny-qwen-my-facts/results.json").read_text())
    assert res["dataset"] == str((cwd / "examples/my_facts.jsonl").resolve()) and res["forward"]["n"] == 3
    prov = res["provenance"]["data"]
    assert prov["kind"] == "jsonl" and len(prov["sha256"]) == 64
    saved = cwd / "runs/eval/tiny-qwen-my-facts-saved/results.json"
    if saved.is_file():  # needs the optional datasets package
        other = json.loads(saved.read_text())
        assert other["provenance"]["data"]["kind"] == "saved"
        assert [r["target"] for r in map(json.loads, (saved.parent / "predictions.jsonl").read_text().splitlines())] \
            == [r["target"] for r in map(json.loads, (cwd / "runs/eval/tiny-qwen-my-facts/predictions.jsonl")
                                         .read_text().splitlines())]


def test_finetune_records_lora_and_sampler_flags(readme_run):
    cwd, _ = readme_run
    run = cwd / "runs/eval/tiny-llama-my-facts"
    cfg = json.loads((run / "config.json").read_text())["config"]
    assert (cfg["lora_r"], cfg["lora_alpha"], cfg["lora_targets"]) == (8, 16, ["q_proj", "v_proj"])
    assert (cfg["gen_length"], cfg["block_length"], cfg["sampler_steps"]) == (8, 8, 8)
    adapter = json.loads((run / "final" / "adapter_config.json").read_text())
    assert adapter["r"] == 8 and adapter["lora_alpha"] == 16 and set(adapter["target_modules"]) == {"q_proj", "v_proj"}
    assert json.loads((run / "results.json").read_text())["protocol"]["max_new_tokens"] == 8


def test_run_adapter_evaluation(readme_run):
    cwd, _ = readme_run
    run = cwd / "runs/eval/tiny-llama-my-facts"
    res = json.loads((cwd / "runs/eval/tiny-llama-my-facts-best-reverse/results.json").read_text())
    assert res["weights"] == "adapter" and res["adapter"] == str((run / "best_reverse").resolve())
    assert res["model"] == "tiny-llama" and res["seed"] == 1 and res["source_run"] == str(run.resolve())
    assert res["protocol"]["max_new_tokens"] == 8  # the run's sampler settings
    assert res["resolved"]["adapter_config"]["r"] == 8
    trained = json.loads((run / "results.json").read_text())
    assert set(trained) - {"final_epoch"} <= set(res) | {"wall_time_s"}  # the same record, plus markers


def test_poems_and_table1(readme_run):
    cwd, outputs = readme_run
    res = json.loads((cwd / "runs/eval/tiny-llada-poems/results.json").read_text())
    assert res["dataset"].startswith("poems:") and res["forward"]["n"] == 3
    assert res["protocol"]["gen_length"] == 28 and res["protocol"]["steps"] == 28  # LLaDA's eval_reverse.py
    assert res["poems"]["paper_table4"]["LLaDA-8B-Instruct"] == {"forward": 51.8, "reverse": 45.6}
    rows = [json.loads(l) for l in (cwd / "runs/eval/tiny-llada-poems/predictions.jsonl").read_text().splitlines()]
    fwd = [r for r in rows if r["direction"] == "forward"]
    assert res["poems"]["forward"]["contains"] == sum(r["target"] in r["prediction"] for r in fwd) / 3
    assert fwd[0]["prompt"] == "青山望远路的下一句是什么？ 直接输出句子即可。"
    printed = dict(outputs)
    poem_cmd = next(c for c in printed if "--poems" in c)
    assert "LLaDA-8B-Instruct 51.8 / 45.6" in printed[poem_cmd].stdout
    table = printed["python scripts/table1.py runs/eval"].stdout
    assert "T-REx: base model, no finetuning | 0.0" in table or "T-REx: base model, no finetuning |" in table
    assert "Reversal poems" in table and "| GPT-4o (LLaDA paper, Table 4) | - | 82.7 | 34.3 |" in table
    assert "saved adapters not shown" in table


@pytest.mark.parametrize("args,needle", [
    (["--model", "tiny-llama", "--dataset", "trex", "--adapter", "/no/such/adapter"], "does not exist"),
    (["--model", "tiny-llama", "--dataset", "wikipedia"], "unknown dataset"),
    (["--model", "tiny-llama", "--dataset", "parent_child"], "--direction is needed"),
    (["--model", "tiny-llama"], "--model and --dataset are needed"),
    (["--run", "/no/such/run"], "has no config.json"),
    (["--model", "tiny-llama", "--dataset", "trex", "--poems", "p.json"], "not both"),
    (["--model", "tiny-llama", "--dataset", "trex", "--sampler-steps", "0"], "steps"),
    (["--model", "tiny-llama", "--poems", "/no/such/poems.json"], "does not exist"),
])
def test_bad_input_one_line_nothing_written(tmp_path, args, needle, capsys):
    from largescale_torch.evaluate import main

    out = tmp_path / "out"
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and err.startswith("error:")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_run_refusals_and_rerun(readme_run, tmp_path, capsys):
    from largescale_torch.evaluate import main

    cwd, _ = readme_run
    run = str(cwd / "runs/eval/tiny-llama-my-facts")
    assert main(["--run", run, "--model", "tiny-qwen", "--out", str(tmp_path / "x")]) == 2
    assert main(["--run", run, "--adapter", "best_sideways", "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "drop --model" in err and "best_sideways" in err and "final, best_forward, best_reverse" in err
    assert list(tmp_path.iterdir()) == []
    done = cwd / "runs/eval/tiny-llama-my-facts-best-reverse"
    before = (done / "results.json").read_text()
    assert main(["--run", run, "--adapter", "final", "--out", str(done)]) == 2  # another evaluation's directory
    assert "holds a different evaluation (adapter)" in capsys.readouterr().err
    assert (done / "results.json").read_text() == before
    # the same evaluation again (batch size may differ): replaced in one rename
    assert main(["--run", run, "--adapter", "best_reverse", "--out", str(done), "--eval-batch-size", "2"]) == 0
    after = json.loads((done / "results.json").read_text())
    assert after["config"]["eval_batch_size"] == 2 and after["forward"]["n"] == 3
    assert sorted(p.name for p in done.parent.iterdir() if p.name.startswith(".")) == []


def test_resume_refuses_changed_sampler_or_lora_and_accepts_old_configs(readme_run, capsys):
    from largescale_torch.finetune import main

    cwd, _ = readme_run
    run = cwd / "runs/eval/tiny-llama-my-facts"
    cmd = shlex.split(next(c for c in readme_commands() if "finetune.py" in c))[2:]
    cmd[cmd.index("--out") + 1] = str(run)
    cmd[cmd.index("--dataset") + 1] = str(cwd / "examples/my_facts.jsonl")  # the run's file, from here
    config_before = (run / "config.json").read_text()
    for flag, value, field in (("--sampler-steps", "4", "sampler_steps"), ("--lora-r", "4", "lora_r"),
                               ("--lora-targets", "q_proj", "lora_targets")):
        argv = list(cmd)
        if flag == "--lora-targets":
            i = argv.index(flag)
            argv[i: i + 3] = [flag, value]
        else:
            argv[argv.index(flag) + 1] = value
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"different config ({field})" in err and len(err.strip().splitlines()) == 1
    assert (run / "config.json").read_text() == config_before
    # a config.json from before the LoRA-target and sampler fields: resumes with the defaults it ran with
    old = cwd / "runs/eval/old-run"
    r = _run(["python", FINETUNE, "--model", "tiny-llama", "--dataset", "examples/my_facts.jsonl", "--direction",
              "forward", "--seed", "1", "--out", str(old), "--epochs", "1"], cwd)
    assert r.returncode == 0, r.stderr[-2000:]
    record = json.loads((old / "config.json").read_text())
    for name in ("lora_targets", "gen_length", "block_length", "sampler_steps", "temperature", "remasking",
                 "threshold", "prefix_cache"):
        del record["config"][name]
    (old / "config.json").write_text(json.dumps(record))
    r = _run(["python", FINETUNE, "--model", "tiny-llama", "--dataset", "examples/my_facts.jsonl", "--direction",
              "forward", "--seed", "1", "--out", str(old), "--epochs", "1"], cwd)
    assert r.returncode == 0, r.stderr[-2000:]
    r = _run(["python", FINETUNE, "--model", "tiny-llama", "--dataset", "examples/my_facts.jsonl", "--direction",
              "forward", "--seed", "1", "--out", str(old), "--epochs", "1", "--temperature", "0.5"], cwd)
    assert r.returncode == 2 and "different config (temperature)" in r.stderr


def test_bad_lora_target_is_refused_before_the_run_directory(tmp_path):
    r = _run(["python", FINETUNE, "--model", "tiny-llama", "--dataset", "trex", "--direction", "forward", "--seed",
              "1", "--out", str(tmp_path / "run"), "--lora-targets", "q_proj,nonexistent_proj"], REPO)
    last = r.stderr.strip().splitlines()[-1]  # after transformers' own weight-loading progress bar
    assert r.returncode == 2 and last == "error: --lora-targets: the model has no module named nonexistent_proj"
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()


def test_run_inherits_its_evaluation_cap_on_its_own_dataset(tmp_path):
    """--run evaluates what the run evaluated: its --max-eval-examples on its dataset (named or not,
    and then with its direction), all queries of another dataset unless a flag says otherwise."""
    from largescale_torch.evaluate_run import EvalRunConfig, resolve

    run = tmp_path / "run"
    run.mkdir()
    config = {"model": "tiny-llama", "dataset": "parent_child", "direction": "c2p", "seed": 3,
              "max_train_examples": 5, "max_eval_examples": 5}
    (run / "config.json").write_text(json.dumps({"config": config}))
    (run / "final").mkdir()
    (run / "final" / "adapter_config.json").write_text("{}")
    out = str(tmp_path / "ev")
    own = resolve(EvalRunConfig(out=out, run=str(run)))
    assert (own.dataset, own.direction, own.max_eval_examples) == ("parent_child", "c2p", 5)
    named = resolve(EvalRunConfig(out=out, run=str(run), dataset="parent_child"))
    assert (named.direction, named.max_eval_examples) == ("c2p", 5)
    assert resolve(EvalRunConfig(out=out, run=str(run), max_eval_examples=2)).max_eval_examples == 2
    other = resolve(EvalRunConfig(out=out, run=str(run), dataset="trex"))
    assert (other.dataset, other.direction, other.max_eval_examples) == ("trex", "forward", None)
    assert list(tmp_path.iterdir()) == [run]
