"""The tables of RESULTS.md, its appendix and README.md are regenerated from results/ and must match (JSON only)."""
from __future__ import annotations

import fnmatch
import json
import re
import shutil
from pathlib import Path

import pytest

from toy_jax import results_docs as mr  # scripts/make_results.py
from toy_jax import results_tables as rt
from toy_jax import shared_runs as dg  # scripts/digest_shared_runs.py

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("doc", mr.DOCS)
def test_tables_regenerate_without_difference(doc):
    tables = mr.build_tables(ROOT / "results")
    text = (ROOT / doc).read_text()
    blocks = [m.group("name") for m in mr.BLOCK_RE.finditer(text)]
    assert blocks, f"{doc} has no generated tables"
    regenerated = mr.update(text, tables, doc)
    if regenerated != text:
        stale = [m.group("name") for m in mr.BLOCK_RE.finditer(text)
                 if m.group("body") != tables.get(m.group("name"))]
        pytest.fail(f"{doc}: tables {stale} differ from results/ (run python scripts/make_results.py)")


def _blocks(doc: str) -> set[str]:
    return {m.group("name") for m in mr.BLOCK_RE.finditer((ROOT / doc).read_text())}


def test_results_and_appendix_have_the_gpu_tables():
    names = _blocks("RESULTS.md") | _blocks("RESULTS_APPENDIX.md")
    assert {"h200_table2", "h200_variants", "h200_letters", "quick_table2", "xmachine_L10"} <= names


def test_a_changed_number_is_detected(tmp_path):
    """Corrupt one value in a copy of results/: the regenerated appendix must differ."""
    res = tmp_path / "results"
    shutil.copytree(ROOT / "results", res, ignore=shutil.ignore_patterns("*.png"))
    path = res / "table2_quick.json"
    d = json.loads(path.read_text())
    d["top3_success"]["10"]["mdm"]["ema"]["reverse"]["completion"][2] += 0.1
    path.write_text(json.dumps(d))
    text = (ROOT / "RESULTS_APPENDIX.md").read_text()
    assert mr.update(text, mr.build_tables(res)) != text


def test_results_md_is_short_and_every_table_is_generated():
    """RESULTS.md is at most 250 lines; in it and its appendix every table row lies in a
    generated block (no hand-typed tables)."""
    text = (ROOT / "RESULTS.md").read_text()
    assert len(text.splitlines()) <= 250
    for doc in ("RESULTS.md", "RESULTS_APPENDIX.md"):
        outside = mr.BLOCK_RE.sub("", (ROOT / doc).read_text())
        rows = [ln for ln in outside.splitlines() if ln.lstrip().startswith("|")]
        assert not rows, f"{doc}: table rows outside a generated block: {rows[:3]}"


def test_results_md_has_the_quick_verdict_section():
    text = (ROOT / "RESULTS.md").read_text()
    section = text.split("\n## Table 2 at the quick preset, 8 seeds\n", 1)[1].split("\n## ", 1)[0]
    assert "<!-- prose:toy_verdict_quick -->" in section
    names = {m.group("name") for m in mr.BLOCK_RE.finditer(section)}
    assert names == {"toy_verdict_quick", "toy_verdict_quick_forward",
                     "toy_verdict_quick_arm_positions"}
    appendix = (ROOT / "RESULTS_APPENDIX.md").read_text()  # the sampler readings live there
    assert "<!-- table:toy_verdict_quick_sampler -->" in appendix


def test_a_block_without_data_is_an_error(tmp_path):
    text = "x\n<!-- table:nonexistent -->\nold\n<!-- /table:nonexistent -->\n"
    with pytest.raises(mr.ResultsError):
        mr.update(text, mr.build_tables(ROOT / "results"))


def test_paper_constants_agree_with_the_package():
    """The paper's Table 2 here equals toy_jax.analysis.PAPER_TABLE2 (read from source: no jax import)."""
    import ast
    tree = ast.parse((ROOT / "toy_jax" / "analysis.py").read_text())
    values = [ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
              and any(getattr(t, "id", None) == "PAPER_TABLE2" for t in node.targets)]
    assert values == [rt.PAPER_TABLE2]


def test_every_results_json_carries_provenance():
    for name in ("table2_quick.json", "ablations_quick.json", "table2_paper_L20_seed0.json"):
        prov = json.loads((ROOT / "results" / name).read_text())["provenance"]
        assert {"command", "commit", "platform", "date"} <= set(prov)
    (digest,) = {e["inputs"][0] for e in mr.load_manifest()["tables"] if e["builder"] == "h200_table2"}
    dig = json.loads((ROOT / "results" / digest).read_text())
    assert {"code_commit", "platform"} <= set(dig["runs_of"])
    assert {"command", "commit", "date"} <= set(dig["digest"])
    for f in (ROOT / "results").glob("xmachine_L10_*.json"):
        assert {"command", "commit", "platform", "date"} <= set(json.loads(f.read_text())["provenance"])


def test_spread_and_per_seed_format():
    assert rt.spread([0.1, 0.2, 0.6]) == "30.0 (10.0–60.0)"
    assert rt.spread([0.5]) == "50.0"
    assert rt.per_seed([0.0, 0.975, 0.0]) == "0.0 / 97.5 / 0.0"


def test_digest_tracked_peak_and_last():
    rows = [{"model": "mdm", "seed": 0, "step": s, "infill_rev_greedy_acc": a, "infill_fwd_greedy_acc": f}
            for s, a, f in ((50, 0.0, 0.1), (100, 0.6, 0.5), (150, 0.05, 0.9))]
    rows.append({"model": "mdm", "seed": 0, "step": 150, "loss": 1.0})  # a loss-only row is skipped
    summary, curves = dg.tracked(rows)
    s = summary["mdm"]["0"]
    assert (s["raw_rev_greedy_infill_peak"], s["peak_step"]) == (0.6, 100)
    assert (s["raw_rev_greedy_infill_last"], s["last_step"], s["raw_fwd_greedy_infill_last"]) == (0.05, 150, 0.9)
    assert curves["mdm"]["0"]["step"] == [50, 100, 150]


def test_digest_cli_bad_input_is_one_line(tmp_path, capsys):
    assert dg.main(["--runs", str(tmp_path / "nope"), "--out", str(tmp_path / "d.json")]) == 2
    assert dg.main(["--runs", str(tmp_path), "--out", str(tmp_path / "d.json")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error:") for line in err)
    assert not (tmp_path / "d.json").exists()


def test_make_results_check_fails_on_a_stale_table(tmp_path, capsys):
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- table:quick_table2 -->\n| stale |\n<!-- /table:quick_table2 -->\n")
    assert mr.main(["--docs", str(doc), "--check"]) == 1
    assert "stale" in doc.read_text()  # --check does not write
    assert mr.main(["--docs", str(doc)]) == 0
    assert mr.main(["--docs", str(doc), "--check"]) == 0


def _strings_in_code(path: Path) -> set[str]:
    """The string constants of a module, docstrings left out."""
    import ast

    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return {n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs}


def test_result_files_are_named_by_the_manifest_only():
    """Every input of the manifest is in results/ (or its entry is optional), and no code of the
    table driver or builders names a results file."""
    manifest = mr.load_manifest()
    inputs = {i for e in manifest["tables"] + manifest["figures"] for i in e["inputs"]}
    for e in manifest["tables"] + manifest["figures"]:
        if not e.get("optional"):
            for i in e["inputs"]:
                assert list((ROOT / "results").glob(i)), i
    code = _strings_in_code(ROOT / "toy_jax" / "results_docs.py") | _strings_in_code(
        ROOT / "toy_jax" / "results_tables.py")
    stems = {Path(i).stem for i in inputs if "*" not in i}
    named = [s for s in code if s in stems or any(
        fnmatch.fnmatch(token, Path(i).name) for token in re.findall(r"[\w.*-]+\.json", s)
        for i in inputs)]
    assert not named, named


def test_manifest_entries(tmp_path):
    """An optional entry without its file gives no block; a required one is an error; a bad
    entry is refused when the manifest is read."""
    (tmp_path / "a.json").write_text(json.dumps({"top3_success": {}}))
    entry = {"block": "t", "builder": "quick_table2", "inputs": ["missing.json"]}
    assert mr.build_tables(tmp_path, {"tables": [{**entry, "optional": True}]}) == {}
    with pytest.raises(mr.ResultsError, match="missing results file"):
        mr.build_tables(tmp_path, {"tables": [entry]})
    assert set(mr.build_tables(tmp_path, {"tables": [{**entry, "inputs": ["a.json"]}]})) == {"t"}
    with pytest.raises(mr.ResultsError, match="built twice"):
        mr.build_tables(tmp_path, {"tables": [{**entry, "inputs": ["a.json"]}] * 2})
    for bad, why in (({**entry, "builder": "nope"}, "unknown builder"),
                     ({"builder": "quick_table2", "inputs": ["a.json"]}, "needs a block name"),
                     ({"block": "t", "builder": "toy_verdict", "inputs": ["a.json"]},
                      "names its blocks itself"),
                     ({"block": "t", "builder": "quick_table2", "inputs": []}, "list of inputs")):
        path = tmp_path / "manifest.json"
        path.write_text(json.dumps({"tables": [bad]}))
        with pytest.raises(mr.ResultsError, match=why):
            mr.load_manifest(path)


def _fake_cell(root: Path, L: str, top3: dict, seeds: list) -> None:
    """A grid cell's results.json (EMA nested in the raw block) holding the given top-3 values."""
    def block(m, w, i):
        return {d: {p: {"topk_success": top3[m][w][d][p][i], "greedy_success": 0.0}
                    for p in rt.PROTOCOLS} for d in rt.DIRS}
    per_seed = {str(s): {m: {**block(m, "raw", i), "ema": block(m, "ema", i)} for m in top3}
                for i, s in enumerate(seeds)}
    (root / f"L{L}").mkdir(parents=True)
    (root / f"L{L}" / "results.json").write_text(json.dumps(
        {"config": {"preset": "quick"}, "seeds": seeds, "headline": {"mdm": "ema", "arm": "ema"},
         "per_seed": per_seed}))


def test_record_rerun_reads_grid_cells_and_feeds_the_cross_machine_table(tmp_path, capsys):
    committed = json.loads((ROOT / "results" / "xmachine_L10_amd_epyc.json").read_text())
    r6 = lambda t: ({k: r6(v) for k, v in t.items()} if isinstance(t, dict)
                    else [round(x, 6) for x in t])
    top3 = r6(committed["top3_success"]["10"])
    _fake_cell(tmp_path / "baseline", "10", top3, committed["seeds"])
    out = tmp_path / "rerun.json"
    assert mr.main(["--record-rerun", str(tmp_path / "baseline"), "--rerun-command", "c",
                    "--rerun-commit", "abc1234", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["top3_success"] == {"10": top3} and rec["seeds"] == committed["seeds"]
    assert rec["provenance"]["commit"] == "abc1234" and rec["provenance"]["command"] == "c"
    summary = rt.xmachine_summary(dict(committed, top3_success={"10": top3}), {"r": rec})
    n = len(committed["seeds"]) * 2 * 2 * 2
    assert f"| {n} | {n} |" in summary  # every cell identical to the recorded values
    t2 = tmp_path / "t2.json"
    assert mr.main(["--record-table2", str(tmp_path / "baseline"), "--rerun-command", "c",
                    "--rerun-commit", "abc1234", "--out", str(t2)]) == 0
    ps = json.loads(t2.read_text())["L"]["10"]["per_seed"]
    assert ps["0"]["mdm"]["ema"]["reverse"]["infill"]["topk_success"] == top3["mdm"]["ema"]["reverse"]["infill"][0]
    assert mr.main(["--record-rerun", str(tmp_path / "none"), "--rerun-command", "c",
                    "--rerun-commit", "x", "--out", str(tmp_path / "no.json")]) == 1
    assert not (tmp_path / "no.json").exists()
    assert "no L<L>/results.json" in capsys.readouterr().err
