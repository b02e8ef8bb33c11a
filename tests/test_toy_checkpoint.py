"""Damaged toy checkpoints: an unreadable step falls back to the previous one with one line,
no step readable is a one-line error with advice, and an unfinished write is cleaned up."""
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import pytest

from toy_jax.checkpoint import (Checkpointer, CheckpointUnreadable, resume_note, saved_steps,
                                unreadable_reason)

ROOT = Path(__file__).resolve().parents[1]


class State(NamedTuple):
    params: dict
    step: object


def _state(v: int) -> State:
    return State({"w": jnp.full((4, 8), float(v)), "b": jnp.arange(3.0) + v},
                 jnp.asarray(v, jnp.int32))


def _truncate_data(step_dir: Path) -> None:
    """Cut the array data files of one saved step to half (as a full disk or a copy cut short
    would). All of them: which OCDBT file holds the arrays that a restore reads varies."""
    files = [f for f in step_dir.rglob("*") if f.is_file() and f.parent.name == "d"]
    assert files
    for f in files:
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


@pytest.fixture
def saved(tmp_path):
    """A checkpoint directory holding steps 1 and 2."""
    d = tmp_path / "checkpoints" / "mdm"
    ck = Checkpointer(d)
    ck.save(1, _state(1))
    ck.save(2, _state(2))
    ck.wait()
    ck.close()
    return d


def test_resume_falls_back_and_moves_the_unreadable_step_aside(saved):
    _truncate_data(saved / "2")
    notes = []
    ck = Checkpointer(saved, notify=notes.append)
    try:
        st = ck.restore_latest(_state(0))
        assert int(st.step) == 1 and np.all(np.asarray(st.params["w"]) == 1.0)
        assert len(notes) == 1 and "\n" not in notes[0]
        assert f"{saved}/2 is unreadable" in notes[0] and "resuming from step 1" in notes[0]
        assert (saved.parent / "mdm.damaged" / "2").is_dir() and ck.steps() == [1]
        ck.save(2, _state(2))  # training goes on and writes step 2 again
        ck.wait()
        assert int(ck.restore(_state(0)).step) == 2
    finally:
        ck.close()


def test_analysis_restore_falls_back_without_moving(saved):
    (saved / "2" / "default" / "_METADATA").write_text('{"tree_metadata": {"par')
    notes = []
    ck = Checkpointer(saved, notify=notes.append)
    try:
        assert int(ck.restore(_state(0)).step) == 1
        assert len(notes) == 1 and "using step 1 instead" in notes[0]
        assert "metadata file is truncated" in notes[0]
        assert ck.steps() == [2, 1] and not (saved.parent / "mdm.damaged").exists()
        with pytest.raises(CheckpointUnreadable):
            ck.restore(_state(0), step=2)  # an explicit step does not fall back
    finally:
        ck.close()


def test_no_readable_step_is_one_line_with_advice(saved):
    _truncate_data(saved / "1")
    _truncate_data(saved / "2")
    ck = Checkpointer(saved, notify=pytest.fail)
    try:
        with pytest.raises(CheckpointUnreadable) as e:
            ck.restore_latest(_state(0))
    finally:
        ck.close()
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 400, msg
    assert f"{saved}/2 is unreadable" in msg and f"delete {saved}" in msg and "--out" in msg
    assert saved_steps(saved) == [2, 1]  # nothing moved when nothing can be restored


def test_unfinished_write_is_removed_on_resume(saved):
    tmp = saved / "3.orbax-checkpoint-tmp"
    shutil.copytree(saved / "2", tmp)
    ck = Checkpointer(saved)
    try:
        assert int(ck.restore_latest(_state(0)).step) == 2
        assert not tmp.exists()
    finally:
        ck.close()


def test_missing_commit_timestamp_is_not_warned_about(saved, caplog):
    """A kill between a step's rename and its `_CHECKPOINT_METADATA` leaves complete data; orbax
    would warn on every later run."""
    (saved / "2" / "_CHECKPOINT_METADATA").unlink()
    (saved / "1" / "_CHECKPOINT_METADATA").write_text('{"init_timestamp_nsecs": 17')
    with caplog.at_level("WARNING"):
        ck = Checkpointer(saved)
        try:
            assert int(ck.restore_latest(_state(0)).step) == 2
        finally:
            ck.close()
    assert not [r for r in caplog.records if "Metadata file" in r.getMessage()]


def test_reason_is_short():
    spec = '{"driver": "zarr", "kvstore": ' * 200
    e = ValueError(f"Encountered error while reading array index: (slice(0, 1, 1),). See full "
                   f"TensorStore details: {spec}")
    assert unreadable_reason(e) == "a data file is truncated or damaged"
    assert unreadable_reason(RuntimeError("x" * 1000)).endswith("...")
    assert len(unreadable_reason(RuntimeError("x" * 1000))) <= 160


def test_resume_note(tmp_path):
    assert "no checkpoint" in resume_note(tmp_path, ["mdm"], 500)
    (tmp_path / "checkpoints" / "mdm" / "500").mkdir(parents=True)
    (tmp_path / "checkpoints" / "mdm" / "1000.orbax-checkpoint-tmp").mkdir()
    note = resume_note(tmp_path, ["mdm", "arm"])
    assert f"{tmp_path}/checkpoints/mdm/500" in note and "arm: none yet" in note
    assert "rerun the same command" in note


TINY = ["--L", "3", "--preset", "quick", "--model", "mdm", "--d-model", "8", "--steps", "4",
        "--batch-size", "4", "--track-every", "2", "--ckpt-every", "2", "--no-progress"]


def _train(out: Path, cwd: Path):
    return subprocess.run([sys.executable, str(ROOT / "toy_jax" / "train.py"), *TINY,
                           "--out", str(out)], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_truncated_checkpoint_run_says_one_line(tmp_path):
    """Truncated data files in the last checkpoint: one stderr line, training resumes from
    the previous step and ends with the same results; then nothing readable: exit 1."""
    out = tmp_path / "run"
    r = _train(out, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    before = json.loads((out / "results.json").read_text())
    ck = out / "checkpoints" / "mdm"
    assert saved_steps(ck) == [4, 2]

    _truncate_data(ck / "4")
    r = _train(out, tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 0 and len(lines) <= 3 and "Traceback" not in r.stderr, r.stderr
    assert any("is unreadable" in ln and "resuming from step 2" in ln for ln in lines), lines
    after = json.loads((out / "results.json").read_text())
    assert after["models"] == before["models"]

    for step in (2, 4):
        (ck / str(step) / "default" / "_METADATA").write_text("{")
    r = _train(out, tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("train.py: error: checkpoint") and "delete" in lines[0]
