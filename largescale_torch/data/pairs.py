"""Your own facts: forward/reverse query pairs from a JSONL file or a `datasets` save_to_disk directory.

One row per fact (a JSON object per line, or a row of the saved dataset):

    {"id": "f1", "subject": "Daphne Barrington",
     "forward": {"query": "Daphne Barrington is known as", "answer": "the director of A Journey Through Time"},
     "reverse": {"query": "The director of A Journey Through Time is", "answer": "Daphne Barrington"}}

`id` (string or integer) names the pair and must be unique; `forward` and `reverse` each
hold a non-empty `query` and `answer`; `subject` is optional. The reverse question asks for
the forward statement's subject (the "B is A" of Section 3), so the reverse answer must be
that subject: equal to `subject` when given (after the evaluation's normalisation), and
occurring in the forward query. Any other key is refused, so a misspelt field is not silently
ignored. Training uses the forward queries and answers only (the paper's protocol); evaluation
asks both. Every problem is one line naming the file and the row (`ConfigError`, exit code 2),
found before anything is written.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from largescale_torch.constants import ConfigError
from largescale_torch.data.types import Example, Task

TOP_KEYS = ("id", "subject", "forward", "reverse")
SIDE_KEYS = ("query", "answer")
SAVED_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / m).is_file() for m in SAVED_MARKERS)


def _string(row: dict, key: str, where: str, path: str) -> str:
    value = row.get(key)
    if value is None:
        raise ConfigError(f"{where}: missing field {path!r}")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: field {path!r} must be a non-empty string")
    return value.strip()


def validate_row(row, where: str) -> dict:
    """One row checked against the schema above; returns {id, subject, forward, reverse} as strings."""
    if not isinstance(row, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(row).__name__}")
    unknown = sorted(set(row) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(TOP_KEYS)})")
    if row.get("id") is None:
        raise ConfigError(f"{where}: missing field 'id'")
    if not isinstance(row["id"], (str, int)) or isinstance(row["id"], bool) or str(row["id"]).strip() == "":
        raise ConfigError(f"{where}: field 'id' must be a non-empty string or an integer")
    out = {"id": str(row["id"])}
    for side in ("forward", "reverse"):
        part = row.get(side)
        if part is None:
            raise ConfigError(f"{where}: missing field {side!r}")
        if not isinstance(part, dict):
            raise ConfigError(f"{where}: field {side!r} must be an object with 'query' and 'answer'")
        unknown = sorted(set(part) - set(SIDE_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown field '{side}.{unknown[0]}' (fields: query, answer)")
        out[side] = {k: _string(part, k, where, f"{side}.{k}") for k in SIDE_KEYS}
    subject = row.get("subject")
    if subject is not None:
        subject = _string(row, "subject", where, "subject")
        from largescale_torch.evaluation import normalise  # imported late: evaluation imports this package

        if normalise(out["reverse"]["answer"]) != normalise(subject):
            raise ConfigError(f"{where}: reverse answer {out['reverse']['answer']!r} is not the forward "
                              f"subject {subject!r}")
    else:
        subject = out["reverse"]["answer"]
    if subject.lower() not in out["forward"]["query"].lower():
        raise ConfigError(f"{where}: reverse answer {out['reverse']['answer']!r} is not the forward subject "
                          f"(it does not occur in forward.query {out['forward']['query']!r})")
    out["subject"] = subject
    return out


def _check_unique(rows: list[tuple[str, dict]]) -> None:
    first: dict[str, str] = {}
    for where, row in rows:
        if row["id"] in first:
            raise ConfigError(f"{where}: duplicate id {row['id']!r} (first at {first[row['id']]})")
        first[row["id"]] = where


def read_jsonl_pairs(path: Path) -> list[dict]:
    """Validated rows of a JSONL file, in file order (blank lines skipped)."""
    if not path.is_file():
        raise ConfigError(f"dataset file {path} does not exist")
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason})") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path} line {lineno}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{where}: not valid JSON ({err.msg})") from None
        rows.append((where, validate_row(raw, where)))
    if not rows:
        raise ConfigError(f"{path}: no rows (empty file)")
    _check_unique(rows)
    return [r for _, r in rows]


def read_saved_pairs(path: Path) -> list[dict]:
    """Validated rows of a `datasets` save_to_disk directory (a Dataset, or a DatasetDict of one split)."""
    try:
        import datasets
    except ImportError:
        raise ConfigError(f"{path} is a `datasets` save_to_disk directory; reading it needs the datasets "
                          "package (pip install datasets)") from None
    try:
        ds = datasets.load_from_disk(str(path))
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read {path} with datasets.load_from_disk: {str(err).splitlines()[0]}") from None
    if isinstance(ds, datasets.DatasetDict):
        if len(ds) != 1:
            raise ConfigError(f"{path} holds the splits {', '.join(ds)}; save one split (dataset['train'])")
        ds = next(iter(ds.values()))
    rows = [(f"{path} row {i + 1}", validate_row(dict(r), f"{path} row {i + 1}")) for i, r in enumerate(ds)]
    if not rows:
        raise ConfigError(f"{path}: no rows (empty dataset)")
    _check_unique(rows)
    return [r for _, r in rows]


def build_pairs_task(name: str, rows: list[dict], source: str) -> Task:
    """Train and forward: the forward queries; reverse: the reverse queries (answers: the subjects)."""
    forward = tuple(Example(r["forward"]["query"], r["forward"]["answer"], (r["forward"]["answer"],),
                            entity=r["subject"]) for r in rows)
    reverse = tuple(Example(r["reverse"]["query"], r["reverse"]["answer"], (r["reverse"]["answer"],),
                            entity=r["subject"]) for r in rows)
    selection = {"rule": f"every row of {source}, in order", "source": source, "ids": [r["id"] for r in rows]}
    return Task(name, "forward", forward, forward, reverse, selection)


def path_checksum(path: Path) -> dict:
    """sha256 of a file, or over a directory's files (relative path and bytes, sorted)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    total, per_file = hashlib.sha256(), {}
    for f in files:
        rel = f.name if f == path else str(f.relative_to(path))
        payload = f.read_bytes()
        per_file[rel] = hashlib.sha256(payload).hexdigest()
        total.update(rel.encode() + b"\0" + payload)
    return {"root": str(path.resolve()), "sha256": total.hexdigest(), "files": per_file}
