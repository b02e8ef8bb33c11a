"""The README's commands are exercised so the docs cannot drift from the code."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _code_lines(text: str) -> list[str]:
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.S)
    return [ln.strip() for b in blocks for ln in b.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def _python_commands(text: str) -> list[list[str]]:
    """Every `python path/to/script.py ...` invocation in a README code block."""
    cmds = []
    for line in _code_lines(text):
        for part in line.split("&&"):
            argv = shlex.split(part.strip())
            if len(argv) >= 2 and argv[0] == "python" and argv[1].endswith(".py"):
                cmds.append(argv[1:])
    return cmds


def test_quick_start_has_exactly_two_commands():
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert len(_code_lines(quick)) == 2


def test_ci_runs_the_readme_test_command():
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    test_cmd = _code_lines(quick)[1]
    assert "pytest" in test_cmd
    assert test_cmd in (ROOT / ".ci" / "run").read_text().splitlines()


_CMDS = _python_commands(README)


def test_readme_names_entry_points():
    scripts = {c[0] for c in _CMDS}
    assert {"theory/verify.py", "toy_jax/train.py", "largescale_torch/finetune.py"} <= scripts


@pytest.mark.parametrize("script", sorted({c[0] for c in _CMDS}))
def test_readme_commands_use_existing_flags(script):
    """Each script the README runs exists, answers --help, and knows every flag the README passes it."""
    assert (ROOT / script).is_file(), f"README runs {script}, which does not exist"
    out = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for argv in (c for c in _CMDS if c[0] == script):
        for tok in argv[1:]:
            if tok.startswith("--"):
                flag = tok.split("=", 1)[0]
                assert flag in out.stdout, f"README passes {flag} to {script}, which --help does not list"
