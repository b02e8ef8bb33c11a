"""Your own datasets: the JSONL schema and its one-line errors, save_to_disk directories, LLaDA's
reversal-poem file (loader, prompts, scorer), and the data registry without an import circle."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from largescale_torch.constants import ConfigError
from largescale_torch.data import build_task
from largescale_torch.data.poems import NEXT_TEMPLATE, PREVIOUS_TEMPLATE, poem_scores
from largescale_torch.data.registry import canonical_dataset, data_provenance, dataset_kind
from test_largescale_common import REPO, subprocess_env

EXAMPLE = REPO / "examples" / "my_facts.jsonl"
EVALUATE = str(REPO / "largescale_torch" / "evaluate.py")
FINETUNE = str(REPO / "largescale_torch" / "finetune.py")


def _row(i, subject="Ada Quill", answer=None, **over):
    row = {"id": f"r{i}", "subject": subject,
           "forward": {"query": f"{subject} wrote", "answer": f"Book {i}"},
           "reverse": {"query": f"Book {i} was written by", "answer": answer or subject}}
    row.update(over)
    return row


def _write(path: Path, rows) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def test_example_file_builds_a_forward_task():
    task = build_task(str(EXAMPLE), "forward")
    assert task.dataset == str(EXAMPLE.resolve()) and len(task.train) == len(task.forward) == len(task.reverse) == 3
    assert task.train == task.forward  # training: the forward statements only
    assert task.reverse[0].prompt == "The tidal clock was invented by" and task.reverse[0].target == "Velora Quenby"
    assert task.reverse[2].target == "Tobin Ashgrove" and task.reverse[2].entity == "Tobin Ashgrove"  # no subject
    assert task.selection["ids"] == ["f1", "f2", "f3"]
    prov = data_provenance(str(EXAMPLE), None)
    assert len(prov["sha256"]) == 64 and prov["kind"] == "jsonl"


@pytest.mark.parametrize("rows,needle", [
    ([_row(1), {"id": "r2", "forward": {"query": "Ada Quill wrote", "answer": "B"},
                "reverse": {"query": "B was written by"}}], "line 2: missing field 'reverse.answer'"),
    ([{"forward": {"query": "q", "answer": "a"}, "reverse": {"query": "q", "answer": "a"}}], "line 1: missing field 'id'"),
    ([_row(1), "", _row(1)], "line 3: duplicate id 'r1' (first at"),
    ([_row(1, answer="Someone Else")], "line 1: reverse answer 'Someone Else' is not the forward subject 'Ada Quill'"),
    ([{k: v for k, v in _row(1, answer="Bob Ray").items() if k != "subject"}], "is not the forward subject"),
    ([_row(1), "{not json"], "line 2: not valid JSON"),
    ([_row(1, revers={"query": "x"})], "line 1: unknown field 'revers'"),
    ([_row(1, forward={"query": "Ada Quill wrote", "answer": ""})], "field 'forward.answer' must be a non-empty"),
    ([], "no rows (empty file)"),
])
def test_bad_jsonl_is_one_line_naming_the_row(tmp_path, rows, needle):
    path = _write(tmp_path / "facts.jsonl", rows)
    with pytest.raises(ConfigError) as err:
        build_task(path, "forward")
    assert needle in str(err.value) and len(str(err.value).splitlines()) == 1
    assert str(tmp_path / "facts.jsonl") in str(err.value)


def test_duplicate_id_names_both_lines(tmp_path):
    path = _write(tmp_path / "d.jsonl", [_row(1), _row(2), _row(1)])
    with pytest.raises(ConfigError, match=r"line 3: duplicate id 'r1' \(first at .*line 1\)"):
        build_task(path, "forward")


def test_registry_kinds_and_directions(tmp_path):
    assert dataset_kind("trex") == "builtin" and dataset_kind(str(EXAMPLE)) == "jsonl"
    assert canonical_dataset("poems:examples/x.json").startswith("poems:/")
    with pytest.raises(ConfigError, match="unknown dataset 'wikipedia'"):
        build_task("wikipedia", "forward")
    with pytest.raises(ConfigError, match="does not fit"):
        build_task(str(EXAMPLE), "p2c")
    with pytest.raises(ConfigError, match="does not exist"):
        build_task(str(tmp_path / "missing.jsonl"), "forward")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ConfigError, match="not a datasets save_to_disk directory"):
        build_task(str(tmp_path / "plain"), "forward")


def test_save_to_disk_directory(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = [_row(1), _row(2, subject="Bo Fenn")]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "facts"))
    task = build_task(str(tmp_path / "facts"), "forward")
    assert [e.target for e in task.reverse] == ["Ada Quill", "Bo Fenn"] and dataset_kind(str(tmp_path / "facts")) == "saved"
    datasets.Dataset.from_list([_row(1), _row(1)]).save_to_disk(str(tmp_path / "dup"))
    with pytest.raises(ConfigError, match="row 2: duplicate id 'r1'"):
        build_task(str(tmp_path / "dup"), "forward")


def test_data_package_has_no_import_circle():
    """Each builder module imports on its own in a fresh interpreter (types first, registry last)."""
    for mod in ("types", "pairs", "poems", "parent_child", "person_description", "trex", "registry"):
        r = subprocess.run([sys.executable, "-c", f"import largescale_torch.data.{mod}"], capture_output=True,
                           text=True, env=subprocess_env(), timeout=60)
        assert r.returncode == 0, r.stderr
    src = (REPO / "largescale_torch" / "data" / "types.py").read_text()
    assert "import largescale_torch.data" not in src and "from largescale_torch.data" not in src


# --- LLaDA's reversal-poem file ------------------------------------------------------------------

SYNTHETIC_POEMS = [  # LLaDA's data/poem_data.json layout; lines invented for the test
    {"first": "青山望远路", "second": "白水绕孤村", "source": "测试•甲"},
    {"first": "风过竹林静", "second": "月明松影长", "source": "测试•乙"},
    {"first": "晨钟惊宿鸟", "second": "暮鼓送归舟", "source": "测试•丙"},
]


def write_poems(path: Path, items=SYNTHETIC_POEMS) -> Path:
    path.write_text(json.dumps(items, ensure_ascii=False, indent=4), encoding="utf-8")
    return path


def test_poem_loader_builds_llada_prompts(tmp_path):
    path = write_poems(tmp_path / "poem_data.json")
    task = build_task(f"poems:{path}", "forward")
    assert task.dataset == f"poems:{path.resolve()}" and len(task.forward) == len(task.reverse) == 3
    assert task.forward[0].prompt == "青山望远路的下一句是什么？ 直接输出句子即可。" and task.forward[0].target == "白水绕孤村"
    assert task.reverse[1].prompt == PREVIOUS_TEMPLATE.format(line="月明松影长") and task.reverse[1].target == "风过竹林静"
    assert NEXT_TEMPLATE.endswith(" 直接输出句子即可。")
    assert task.selection["sources"] == ["测试•甲", "测试•乙", "测试•丙"]


def test_poem_scorer_is_llada_containment_rule():
    rows = [{"prediction": "白水绕孤村。", "target": "白水绕孤村"},  # extra punctuation: still contained
            {"prediction": "答案是：月明松影长", "target": "月明松影长"},  # preamble: contained
            {"prediction": "暮鼓送归", "target": "暮鼓送归舟"},  # truncated: not contained
            {"prediction": "", "target": "青山望远路"}]
    assert poem_scores(rows) == {"contains": 0.5, "n": 4}


@pytest.mark.parametrize("content,needle", [
    ("[]", "no poems (empty array)"),
    ('{"first": "a"}', "expected a JSON array"),
    ('[{"first": "a", "second": "b"}, {"first": "c"}]', "item 2: missing field 'second'"),
    ('[{"first": "a", "second": 3}]', "item 1: field 'second' must be a non-empty string"),
    ("[{", "not valid JSON"),
])
def test_bad_poem_file_is_one_line(tmp_path, content, needle):
    path = tmp_path / "poems.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        build_task(f"poems:{path}", "forward")
    assert needle in str(err.value) and len(str(err.value).splitlines()) == 1


# --- the CLIs refuse bad files in one line and write nothing -------------------------------------

@pytest.mark.parametrize("script", ["evaluate", "finetune"])
def test_cli_bad_dataset_file_writes_nothing(tmp_path, script):
    bad = _write(tmp_path / "bad.jsonl", [_row(1), _row(1)])
    out = tmp_path / "out"
    args = [EVALUATE, "--model", "tiny-llama", "--dataset", bad, "--out", str(out)] if script == "evaluate" else \
        [FINETUNE, "--model", "tiny-llama", "--dataset", bad, "--direction", "forward", "--seed", "1",
         "--out", str(out)]
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=subprocess_env(), timeout=120,
                       cwd=REPO)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().startswith("error:") and "duplicate id 'r1'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]
