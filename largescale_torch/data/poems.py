"""LLaDA's reversal-poem test (Nie et al. 2025, "Large Language Diffusion Models", Table 4).

The file is the user's (it is not shipped): LLaDA's `data/poem_data.json`, a JSON array of
`{"first": line, "second": the line after it, "source": poem}` objects (496 pairs of Chinese
poem lines in the paper). The format and the prompts follow LLaDA's `eval_reverse.py`
(github.com/ML-GSAI/LLaDA; read in the fork taiqihe/LLaDA at commit 0c4ec177): forward asks
`first + "的下一句是什么？" + " 直接输出句子即可。"` ("what is the next line? just output the
sentence directly.") for `second`; reverse asks `second + "的上一句是什么？" + " 直接输出句子即可。"`
("what is the previous line?") for `first`.

Scoring: LLaDA counts a query as correct when the answer line is contained in the decoded
output (`answer in out`), not by exact match; `poem_scores` computes that rule beside this
package's exact match, and the paper's Table 4 numbers (`constants.LLADA_TABLE4`) use it.
Pairs repeat in LLaDA's file (the same two lines under two sources), so rows are not
de-duplicated: each is one query, as LLaDA's script counts them.
"""
from __future__ import annotations

import json
from pathlib import Path

from largescale_torch.constants import ConfigError
from largescale_torch.data.types import Example, Task

POEM_PREFIX = "poems:"
INSTRUCTION = " 直接输出句子即可。"  # "just output the sentence directly."
NEXT_TEMPLATE = "{line}的下一句是什么？" + INSTRUCTION
PREVIOUS_TEMPLATE = "{line}的上一句是什么？" + INSTRUCTION
CONTAINS_RULE = "LLaDA's reversal-poem rule: the answer line occurs in the decoded output (substring, no normalisation)"


def read_poems(path: Path) -> list[dict]:
    """Validated `{"first", "second", "source"}` rows; one-line ConfigError naming the item otherwise."""
    if not path.is_file():
        raise ConfigError(f"poem file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason})") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a JSON array of {{\"first\", \"second\"}} objects (LLaDA's poem_data.json)")
    if not data:
        raise ConfigError(f"{path}: no poems (empty array)")
    rows = []
    for i, item in enumerate(data, 1):
        where = f"{path} item {i}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected an object, got {type(item).__name__}")
        row = {}
        for key in ("first", "second"):
            if key not in item:
                raise ConfigError(f"{where}: missing field {key!r}")
            if not isinstance(item[key], str) or not item[key].strip():
                raise ConfigError(f"{where}: field {key!r} must be a non-empty string")
            row[key] = item[key].strip()
        row["source"] = str(item.get("source", ""))
        rows.append(row)
    return rows


def build_poem_task(name: str, rows: list[dict]) -> Task:
    """Forward: next line from a line; reverse: previous line from a line (no training pairs beyond forward)."""
    forward = tuple(Example(NEXT_TEMPLATE.format(line=r["first"]), r["second"], (r["second"],), entity=r["first"])
                    for r in rows)
    reverse = tuple(Example(PREVIOUS_TEMPLATE.format(line=r["second"]), r["first"], (r["first"],),
                            entity=r["first"]) for r in rows)
    selection = {"rule": "every item of the poem file, in order (LLaDA's eval_reverse.py)",
                 "sources": [r["source"] for r in rows]}
    return Task(name, "forward", forward, forward, reverse, selection)


def contains(prediction: str, answer: str) -> bool:
    """LLaDA's rule: `answer in out` on the decoded text."""
    return answer in prediction


def poem_scores(rows: list[dict]) -> dict:
    """Fraction of prediction rows (evaluation.score's `rows`) whose prediction contains the target."""
    hits = [contains(r["prediction"], r["target"]) for r in rows]
    return {"contains": sum(hits) / max(len(hits), 1), "n": len(hits)}
