"""Atomic writes: a result file is either the old one or the whole new one, never half."""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; when the block ends without an exception, the
    temporary file replaces `path` (os.replace, atomic on one filesystem), else it is removed.
    For writers that need a path (torch.save, savefig, ...)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    """`path.write_text(text)`, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj, indent: int | None = 2) -> None:
    """`obj` as JSON (`indent`, a final newline), atomically."""
    write_text(path, json.dumps(obj, indent=indent) + "\n")
