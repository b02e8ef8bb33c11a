"""The miniature Table 1 end to end: models from scratch, the training run, the sampler, exact match, the table."""
from __future__ import annotations

import json

import pytest
import torch

from largescale_torch import mini
from largescale_torch.constants import ConfigError

TINY = dict(hidden=32, heads=4, ffn=64, layers=1, batch_size=20, seeds=(1,))


def test_tokenizer_round_trips_every_answer():
    train, reverse = mini.mini_task(6)
    tok = mini.word_tokenizer([f"{e.prompt} {e.target}" for e in (*train, *reverse)])
    assert tok.unk_token_id not in tok(train[0].prompt).input_ids
    for e in (*train, *reverse):
        ids = tok(" " + e.target, add_special_tokens=False).input_ids
        assert 1 <= len(ids) <= 3 and tok.decode(ids, skip_special_tokens=True) == e.target
    assert tok(train[0].prompt).input_ids[0] == tok.bos_token_id


def test_mdm_and_arm_share_one_initialisation(tmp_path):
    from largescale_torch.modeling import check_bidirectional, load_base, resolve_model

    train, reverse = mini.mini_task(2)
    tok = mini.word_tokenizer([f"{e.prompt} {e.target}" for e in (*train, *reverse)])
    paths = mini.write_models(mini.MiniConfig(**TINY), tok, 1, tmp_path)
    mdm, _, ids_m = load_base(resolve_model(str(paths["llada"])), torch.float32)
    arm, _, ids_a = load_base(resolve_model(str(paths["llama"])), torch.float32)
    assert resolve_model(str(paths["llada"])).is_mdm and not resolve_model(str(paths["llama"])).is_mdm
    V = mdm.config.vocab_size
    assert check_bidirectional(mdm, V) and not check_bidirectional(arm, V)
    a, m = arm.state_dict(), mdm.state_dict()
    assert set(a) == set(m) and all(torch.equal(a[k], m[k]) for k in a)
    assert ids_m.mask == tok.mask_token_id and ids_m.eos == ids_a.eos == tok.eos_token_id


def test_arm_learns_forward_and_table_is_written(tmp_path):
    """The learning path end to end: a 1-layer ARM trained from scratch memorises 4 pairs.

    Threshold 0.9 forward exact match on the 20 training queries (4 pairs x 5 phrasings).
    Chance is far lower: an answer is 1-3 words out of a 45-token vocabulary, and a model that
    ignores the subject can match at most one pair's 5 queries (0.25), so >= 0.9 needs every
    subject mapped to its object. 30 full-batch steps, about 3 s of CPU; measured on seed 1:
    0.4, 0.35, 0.5, 0.7, 1.0, 1.0 after 5, 10, ..., 30 steps. The MDM needs over a thousand
    steps (minutes) and is checked by the miniature table itself (`scripts/mini_table1.py`).
    """
    cfg = mini.MiniConfig(**TINY, n_pairs=4, epochs=30, eval_every=30, lr=3e-3, families=("llama",))
    res = mini.run_mini(cfg, tmp_path / "runs")
    (run,) = res["runs"]
    assert run["forward"]["n"] == run["reverse"]["n"] == 20
    assert run["forward"]["best"] >= 0.9, run
    assert run["reverse"]["best"] <= run["forward"]["best"]
    kinds = run["reverse_final_answers"]
    assert abs(sum(kinds.values()) - 1) < 1e-9 and kinds["correct"] == run["reverse"]["final"]
    results = json.loads((tmp_path / "runs" / "llama" / "seed1" / "results.json").read_text())
    assert results["config"]["full_finetune"] and not results["config"]["chat_template"]
    md = mini.render_markdown(res, "python scripts/mini_table1.py")
    assert "ARM (Llama, causal)" in md and f"{100 * run['forward']['best']:.1f}" in md
    mini.plot_curves(res, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 5_000


def test_mdm_runs_through_the_same_pipeline(tmp_path):
    cfg = mini.MiniConfig(**TINY, n_pairs=1, epochs=1, eval_every=1, families=("llada",))
    res = mini.run_mini(cfg, tmp_path / "runs")
    (run,) = res["runs"]
    assert run["is_mdm"] and run["forward"]["n"] == 5
    results = json.loads((tmp_path / "runs" / "llada" / "seed1" / "results.json").read_text())
    assert results["protocol"]["decoding"].startswith("LLaDA") and results["config"]["mdm_pad_to"] == "gen_length"


def test_runs_dir_of_another_config_is_refused(tmp_path):
    cfg = mini.MiniConfig(**TINY, n_pairs=1, epochs=1, families=("llama",))
    mini.run_mini(cfg, tmp_path)
    with pytest.raises(ConfigError, match="another configuration"):
        mini.run_mini(mini.MiniConfig(**{**TINY, "hidden": 64}, n_pairs=1, epochs=1, families=("llama",)), tmp_path)


@pytest.mark.parametrize("argv,needle", [
    (["--n-pairs", "0"], "--n-pairs"),
    (["--n-pairs", "91"], "--n-pairs"),
    (["--families", "qwen"], "unknown model families"),
    (["--hidden", "30"], "heads"),
    (["--lr", "-1"], "--lr"),
    (["--mdm-pad-to", "none"], "invalid choice"),
])
def test_script_bad_arguments_exit_2(argv, needle, capsys, tmp_path):
    import importlib.util

    from test_largescale_common import REPO

    spec = importlib.util.spec_from_file_location("mini_table1", REPO / "scripts" / "mini_table1.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        rc = module.main(["--runs", str(tmp_path / "r"), "--out", str(tmp_path / "m"), *argv])
    except SystemExit as exc:
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.md").exists()
