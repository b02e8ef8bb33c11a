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


def _fake_run(d, value: float, time_s: float = 1.0):
    d.mkdir(parents=True)
    (d / "config.json").write_text('{"L": 4}')
    res = {"seeds": [0], "headline": {"mdm": "ema"},
           "per_seed": {"0": {"mdm": {**BLOCK(value), "ema": BLOCK(value)}}},
           "models": {"mdm": BLOCK(value)}, "models_sem": {"mdm": BLOCK(0.0)},
           "timing": {"mdm": {"train_s": time_s}}}
    (d / "results.json").write_text(json.dumps(res))
    (d / "metrics.jsonl").write_text(json.dumps(
        {"model": "mdm", "seed": 0, "step": 5, "loss": value, "time_s": time_s}) + "\n")


def test_compare_counts_identical_numbers_and_ignores_wall_clock(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    _fake_run(tmp_path / "a", 0.5)
    _fake_run(tmp_path / "b", 0.5, time_s=9.0)  # another wall time: still identical
    _fake_run(tmp_path / "c", 0.25)
    same = records.compare(tmp_path / "a", tmp_path / "b")
    assert same["bit_identical"] and same["per_seed"] == {
        "identical": 4, "total": 4, "largest_difference": 0.0, "first_differences": []}
    other = records.compare(tmp_path / "a", tmp_path / "c")
    assert not other["bit_identical"] and other["per_seed"]["identical"] == 0
    assert other["per_seed"]["largest_difference"] == 0.25
    assert other["metrics_rows"] == {"identical": 0, "total": 1, "only_in_one": 0}
    script = Path(__file__).resolve().parents[1] / "scripts" / "compare_runs.py"
    run = lambda *a: subprocess.run([sys.executable, str(script), *map(str, a)],
                                    capture_output=True, text=True, timeout=60)
    r = run(tmp_path / "a", tmp_path / "b", "--out", tmp_path / "cmp.json")
    assert r.returncode == 0 and "bit-identical" in r.stdout
    assert json.loads((tmp_path / "cmp.json").read_text())["bit_identical"]
    assert run(tmp_path / "a", tmp_path / "c").returncode == 1
    r = run(tmp_path / "a", tmp_path / "nothing")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
