"""The miniature end to end at tiny size: pretrain, finetune, readings, table; and its command line."""
from __future__ import annotations

import json

import pytest
import torch
from test_largescale_common import data_dir  # noqa: F401

from largescale_torch.constants import ConfigError
from largescale_torch.mini.pretrain import init_models, llada_config, pack, pretrain
from largescale_torch.mini.report import plot, render_markdown
from largescale_torch.mini.run import MiniConfig, build_data, run_mini

TINY = dict(hidden=16, heads=2, ffn=32, layers=1, n_pairs=3, mentions=2, pretrain_steps=3, pretrain_batch=4,
            seq_len=16, epochs=1, evals=1, batch_size=64, seeds=(1,), datasets=("parent_child", "trex"))


def test_mdm_and_arm_share_one_initialisation_and_differ_in_attention(data_dir):  # noqa: F811
    from largescale_torch.modeling import check_bidirectional

    _, corpus, tok = build_data(MiniConfig(**TINY), data_dir)
    mdm, arm = init_models(llada_config(16, 1, 2, 32, 5e5, tok), seed=1)
    a, m = arm.state_dict(), mdm.state_dict()
    assert set(a) == set(m) and all(torch.equal(a[k], m[k]) for k in a)
    assert check_bidirectional(mdm, len(tok)) and not check_bidirectional(arm, len(tok))
    rows = pack(tok, corpus, 16)
    before = {k: v.clone() for k, v in mdm.state_dict().items()}
    losses = pretrain(mdm, True, rows, 2, 4, 1e-3, 0.0, 1, tok.mask_token_id)
    assert len(losses) == 2 and all(l > 0 for l in losses)
    assert any(not torch.equal(before[k], v) for k, v in mdm.state_dict().items())


def test_tiny_miniature_end_to_end(tmp_path, data_dir):  # noqa: F811
    cfg = MiniConfig(**TINY)
    res = run_mini(cfg, tmp_path / "runs", data_dir, workers=1)
    assert [(r["family"], r["seed"]) for r in res["records"]] == [("llada", 1), ("llama", 1)]
    for r in res["records"]:
        assert set(r["datasets"]) == {"parent_child", "trex"}
        pc = r["datasets"]["parent_child"]
        assert pc["forward"]["n"] == pc["reverse"]["n"] == 3
        reads = pc["readings"]
        assert set(reads) == ({"trained", "pretrained", "random_init"} | ({"causal_mask"} if r["is_mdm"] else set()))
        rr = reads["trained"]["reverse_rank"]
        assert rr["n_candidates"] == 3 and rr["chance_rank"] == 2.0 and 1 <= rr["mean_rank"] <= 3
        assert len(rr["ranks"]) == len(rr["shares_word"]) == 3 and rr["overlap"]["n"] + rr["no_overlap"]["n"] == 3
        assert reads["trained"]["positive_control"]["n_queries"] == 3
        assert ("attention" in reads["trained"]) == r["is_mdm"]
        run_cfg = json.loads((tmp_path / "runs" / r["family"] / "seed1" / "parent_child" / "config.json").read_text())
        assert run_cfg["config"]["model"].endswith("pretrained") and run_cfg["config"]["objective"] == "sft"
    again = run_mini(cfg, tmp_path / "runs", data_dir, workers=1)  # finished jobs are read back, not rerun
    assert again["records"] == res["records"]
    md = render_markdown({**res, "command": "python scripts/mini_table1.py"})
    assert "paper LLaDA 8B" in md and "76.7/48.3" in md and "chance" in md and "random initialisation" in md
    assert "shares a word" in md and "finetuned, causal mask" in md
    # Records written before the split (no per-query ranks, no overlap keys) still render, as n/a.
    old = json.loads(json.dumps(res))
    for r in old["records"]:
        for d in r["datasets"].values():
            for reads in d["readings"].values():
                for k in ("ranks", "shares_word", "shortcut_ranks", "all", "overlap", "no_overlap", "n_answers"):
                    reads["reverse_rank"].pop(k)
    assert "| n/a (n/a) | n/a (n/a) |" in render_markdown(old)
    plot(res, tmp_path / "fig.png")
    assert (tmp_path / "fig.png").stat().st_size > 5_000
    with pytest.raises(ConfigError, match="another configuration"):
        run_mini(MiniConfig(**{**TINY, "hidden": 32}), tmp_path / "runs", data_dir)


def _script():
    """scripts/mini_table1.py's module (it only calls largescale_torch.mini.cli.main)."""
    from largescale_torch.mini import cli

    return cli


@pytest.mark.parametrize("argv,needle", [
    (["--n-pairs", "0"], "--n-pairs"),
    (["--n-pairs", "91"], "--n-pairs"),
    (["--families", "qwen"], "unknown model families"),
    (["--datasets", "poems"], "unknown datasets"),
    (["--hidden", "30"], "heads"),
    (["--lr", "-1"], "--lr"),
    (["--pretrain-steps", "-1"], "--pretrain-steps"),
    (["--workers", "0"], "--workers"),
    (["--rope-theta", "0"], "--rope-theta"),
    (["--finetune-objective", "dpo"], "--finetune-objective"),
    (["--epochs", "x"], "invalid int"),
])
def test_script_bad_arguments_exit_2(argv, needle, capsys, tmp_path):
    try:
        rc = _script().main(["--runs", str(tmp_path / "r"), "--out", str(tmp_path / "m"), *argv])
    except SystemExit as exc:
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.md").exists()
