"""Figure 7 analysis with its controls (untrained base, causal mask) on tiny presets, the plot, and CLI errors."""
from __future__ import annotations

import json
import math

import pytest
import torch

from largescale_torch import analyze, plot_figure7
from largescale_torch.analysis import causal_attention
from largescale_torch.modeling import check_bidirectional, load_base, resolve_model
from test_largescale_common import data_dir  # noqa: F401

N = 12  # reverse queries and Parent-Child pairs analysed


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):  # noqa: F811
    from largescale_torch.training import TrainConfig, run

    root = tmp_path_factory.mktemp("fig7")
    out = {}
    for preset in ("tiny-llada", "tiny-llama"):
        d = root / preset
        # lr 1e-2 so that one epoch moves the adapter visibly away from the untrained base
        run(TrainConfig(model=preset, dataset="parent_child", direction="p2c", seed=1, out=str(d), epochs=1,
                        lr=1e-2, data_dir=data_dir, max_train_examples=8, max_eval_examples=2))
        out[preset] = d
    return out


def test_causal_attention_switches_the_mask_and_restores_it(data_dir):  # noqa: F811
    model, _, _ = load_base(resolve_model("tiny-llada", data_dir), torch.float32)
    V = model.config.vocab_size
    assert check_bidirectional(model, V)
    with causal_attention(model):
        assert not check_bidirectional(model, V)
    assert check_bidirectional(model, V)


def test_mdm_analysis_reports_both_controls(runs, capsys):
    d = runs["tiny-llada"]
    assert analyze.main(["--run", str(d), "--max-examples", str(N), "--min-group", "2"]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in ("trained", "untrained", "causal_mask"))
    a = json.loads((d / "analysis.json").read_text())
    assert set(a["controls"]) == {"untrained", "causal_mask"}
    for name, v in plot_figure7.variants(a):
        ft, ac = v["reverse_first_token"], v["attention_correlation"]
        assert ft["n"] == N and all(0 < p < 1 for p in ft["prob"]), name
        assert ac["n_pairs"] == N and math.isfinite(ac["overall_mean"]) and -1 <= ac["overall_mean"] <= 1, name
    # three different models: the adapter changes the trained numbers, the mask changes the control's
    probs = {name: v["reverse_first_token"]["prob"] for name, v in plot_figure7.variants(a)}
    assert probs["trained"] != probs["untrained"] and probs["trained"] != probs["causal_mask"]


def test_arm_analysis_reports_untrained_control_only(runs):
    a = analyze.analyze_run(str(runs["tiny-llama"]), max_examples=N)
    assert set(a["controls"]) == {"untrained"} and "attention_correlation" not in a
    assert a["controls"]["untrained"]["reverse_first_token"]["n"] == N
    assert a["reverse_first_token"]["prob"] != a["controls"]["untrained"]["reverse_first_token"]["prob"]


def test_plot_draws_runs_with_controls(runs, tmp_path):
    for d in runs.values():
        if not (d / "analysis.json").is_file():
            analyze.analyze_run(str(d), max_examples=N, min_group=2)
    out = tmp_path / "fig7.png"
    assert plot_figure7.main(["--runs", *map(str, runs.values()), "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000


@pytest.mark.parametrize("argv,code,needle", [
    (["--run", "/no/such/run"], 2, "not a run directory"),
    (["--run", "RUN", "--adapter", "best"], 2, "invalid choice"),
    (["--run", "RUN", "--max-examples", "0"], 2, "--max-examples"),
    (["--run", "RUN", "--min-group", "1"], 2, "--min-group"),
])
def test_analyze_bad_arguments_exit_2_with_one_line(runs, argv, code, needle, capsys):
    argv = [str(runs["tiny-llama"]) if a == "RUN" else a for a in argv]
    try:
        rc = analyze.main(argv)
    except SystemExit as exc:  # argparse errors exit from parse_args
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == code and needle in err and len(err.strip().splitlines()) == 1


def test_help_documents_every_flag():
    text = analyze.build_parser().format_help()
    assert "first N reverse queries" in text and "--min-group" in text


def test_plot_missing_analysis_exits_2(tmp_path, capsys):
    assert plot_figure7.main(["--runs", str(tmp_path), "--out", str(tmp_path / "f.png")]) == 2
    assert "analyze.py" in capsys.readouterr().err
