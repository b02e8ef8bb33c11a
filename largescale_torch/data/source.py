"""Locating, downloading and reading the Berglund et al. (2024) files."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
import urllib.request
from pathlib import Path

from largescale_torch.constants import DATA_ENV_VAR, UPSTREAM_COMMIT, UPSTREAM_REPO, ConfigError
from largescale_torch.paths import cache_dir

# Paths relative to the upstream repository's `data/` folder.
PARENT_CHILD_CSV = "celebrity_relations/parent_child_pairs.csv"
PERSON_DESCRIPTION_DIR = "reverse_experiments/june_version_7921032488"
PERSON_DESCRIPTION_FILES = tuple(
    f"{PERSON_DESCRIPTION_DIR}/{name}.jsonl"
    for name in (
        "p2d_prompts_train",
        "p2d_prompts_test",
        "p2d_reverse_prompts_test",
        "d2p_prompts_train",
        "d2p_prompts_test",
        "d2p_reverse_prompts_test",
    )
)
REQUIRED_FILES = (PARENT_CHILD_CSV, *PERSON_DESCRIPTION_FILES)


def _data_root(base: Path) -> Path:
    """Accept either a checkout of the upstream repository or its `data/` folder."""
    return base / "data" if (base / "data").is_dir() else base


def resolve_data_dir(data_dir: str | None = None, download: bool = True) -> Path:
    """`--data-dir`, else $REVERSAL_CURSE_DATA, else a download at the pinned upstream commit."""
    given = data_dir or os.environ.get(DATA_ENV_VAR)
    if given:
        base = Path(given).expanduser()
        if not base.is_dir():
            source = "--data-dir" if data_dir else f"${DATA_ENV_VAR}"
            raise ConfigError(f"data directory {base} (from {source}) does not exist")
        return _data_root(base)
    if not download:
        raise FileNotFoundError(f"no data directory: pass --data-dir or set ${DATA_ENV_VAR}")
    return download_upstream()


def download_upstream(files=REQUIRED_FILES) -> Path:
    """Fetch the needed files from github.com/lukasberglund/reversal_curse at a pinned commit."""
    root = cache_dir() / "reversal_curse" / UPSTREAM_COMMIT / "data"
    for rel in files:
        dest = root / rel
        if dest.is_file():
            continue
        url = f"https://raw.githubusercontent.com/{UPSTREAM_REPO}/{UPSTREAM_COMMIT}/data/{rel}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                payload = response.read()
        except OSError as err:
            raise FileNotFoundError(
                f"cannot download {url} ({err}); pass --data-dir or set ${DATA_ENV_VAR}"
            ) from None
        with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp:
            tmp.write(payload)
        os.replace(tmp.name, dest)
    return root


def data_checksum(root: Path, files=REQUIRED_FILES) -> dict:
    """sha256 over the data files this package reads (path and bytes, in order), plus per-file hashes."""
    total, per_file = hashlib.sha256(), {}
    for rel in files:
        path = root / rel
        if not path.is_file():
            per_file[rel] = None
            continue
        payload = path.read_bytes()
        per_file[rel] = hashlib.sha256(payload).hexdigest()
        total.update(rel.encode() + b"\0" + payload)
    return {"root": str(root.resolve()), "sha256": total.hexdigest(), "files": per_file}


def data_file(root: Path, rel: str) -> Path:
    path = root / rel
    if not path.is_file():
        raise FileNotFoundError(f"missing data file {path}")
    return path


def read_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in columns if c not in header]
            if missing:
                raise ValueError(f"malformed data file {path}: missing column(s) {', '.join(missing)}")
            rows = [{c: (row.get(c) or "").strip() for c in columns} for row in reader]
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"malformed data file {path}: {err}") from None
    if not rows:
        raise ValueError(f"malformed data file {path}: no rows")
    return rows


def read_prompt_completion_jsonl(path: Path) -> list[dict[str, str]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"malformed data file {path}: line {lineno}: {err.msg}") from None
            if not (
                isinstance(row, dict)
                and isinstance(row.get("prompt"), str)
                and isinstance(row.get("completion"), str)
            ):
                raise ValueError(f"malformed data file {path}: line {lineno} lacks string prompt/completion")
            rows.append({"prompt": row["prompt"], "completion": row["completion"]})
    if not rows:
        raise ValueError(f"malformed data file {path}: no rows")
    return rows
