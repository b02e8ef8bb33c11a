"""toy_jax.records: the one reader of run directories, both result layouts."""
import json

from toy_jax import records

BLOCK = lambda v: {"forward": {"infill": {"topk_success": v}}, "reverse": {"infill": {"topk_success": v / 2}}}


def test_weights_of_reads_the_nested_entry_and_the_per_weights_view():
    nested = {**BLOCK(0.8), "ema": BLOCK(0.9)}
    view = records.weights_of(nested)
    assert view == {"raw": BLOCK(0.8), "ema": BLOCK(0.9)}
    assert records.weights_of(view) == view
    assert records.weights_of(BLOCK(0.7)) == {"raw": BLOCK(0.7)}  # no EMA weights


def test_reading_follows_the_headline(tmp_path):
    res = {"seeds": [3], "headline": {"mdm": "ema", "arm": "raw"},
           "per_seed": {"3": {"mdm": {**BLOCK(0.8), "ema": BLOCK(0.9)},
                              "arm": {**BLOCK(0.6), "ema": BLOCK(0.5)}}}}
    assert records.reading(res, 3, "mdm") == BLOCK(0.9)
    assert records.reading(res, "3", "arm") == BLOCK(0.6)
    assert records.reading(res, 3, "mdm", "raw") == BLOCK(0.8)
    old = {k: v for k, v in res.items() if k != "headline"}  # files older than `headline`
    assert records.reading(old, 3, "mdm") == BLOCK(0.8)
    assert records.per_weights(res)["3"]["arm"]["ema"] == BLOCK(0.5)


def test_read_run_files(tmp_path):
    assert records.read_results(tmp_path) is None and records.read_metrics(tmp_path) == []
    rows = [{"model": "mdm", "seed": 0, "step": 10, "loss": 1.0},
            {"model": "mdm", "seed": 1, "step": 10, "attn_fwd_weight": 0.2},
            {"model": "arm", "seed": 0, "step": 10, "attn_fwd_weight": 0.1}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    (tmp_path / "config.json").write_text('{"L": 6}')
    assert records.read_config(tmp_path) == {"L": 6}
    assert records.read_metrics(tmp_path) == rows
    assert records.read_metrics(tmp_path, "mdm", tracked=True) == [rows[1]]
    assert records.read_metrics(tmp_path, "mdm", seed=0) == [rows[0]]
