"""The filter of orbax's read-error aftermath is scoped: importing `toy_jax.checkpoint` and
saving / restoring (also a failed restore) leave `sys.unraisablehook` as it was, and while it is
installed it drops only that aftermath; every other unraisable exception reaches the previous hook."""
import gc
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from test_toy_checkpoint import _state, _truncate_data
from toy_jax.checkpoint import Checkpointer, CheckpointUnreadable, quiet_read_aftermath

ROOT = Path(__file__).resolve().parents[1]
LOOP_CLOSED = "Event loop is closed"


@pytest.fixture
def seen(monkeypatch):
    """A recording `sys.unraisablehook` (the hook the filter must pass other exceptions to)."""
    got = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: got.append(u.exc_value))
    return got


class _RaisesOnDel:
    def __init__(self, exc):
        self.exc = exc

    def __del__(self):
        raise self.exc


def _unraisable(exc) -> None:
    """Report `exc` through `sys.unraisablehook`, as a failing finalizer does."""
    obj = _RaisesOnDel(exc)
    del obj
    gc.collect()


def _failing_coroutine(filename: str) -> None:
    """A coroutine defined in `filename` that raises while it is finalized, left to be collected."""
    ns = {}
    src = "async def read(pending):\n    try:\n        await pending\n    finally:\n        raise RuntimeError('late read')\n"
    exec(compile(src, filename, "exec"), ns)

    class Pending:
        def __await__(self):
            yield

    coro = ns["read"](Pending())
    coro.send(None)  # suspended at the await
    del coro
    gc.collect()


def test_import_changes_no_hook():
    code = textwrap.dedent("""
        import sys
        before = sys.unraisablehook
        import toy_jax.checkpoint
        assert sys.unraisablehook is before, sys.unraisablehook
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_save_and_restore_leave_the_hook(tmp_path, seen):
    hook = sys.unraisablehook
    ck = Checkpointer(tmp_path / "mdm")
    assert sys.unraisablehook is hook
    ck.save(1, _state(1))
    ck.save(2, _state(2))
    ck.wait()
    assert sys.unraisablehook is hook
    assert int(ck.restore(_state(0), step=1).step) == 1
    assert int(ck.restore_latest(_state(0)).step) == 2
    assert sys.unraisablehook is hook
    ck.close()
    assert sys.unraisablehook is hook and seen == []


def test_failed_restores_leave_the_hook_and_drop_their_aftermath(tmp_path, seen):
    hook = sys.unraisablehook
    d = tmp_path / "mdm"
    ck = Checkpointer(d)
    ck.save(1, _state(1))
    ck.save(2, _state(2))
    ck.wait()
    ck.close()
    _truncate_data(d / "2")
    for _ in range(5):  # the late reads are racy: give them several chances to leak
        ck = Checkpointer(d)
        with pytest.raises(CheckpointUnreadable):
            ck.restore(_state(0), step=2)
        assert sys.unraisablehook is hook
        ck.close()
    notes = []
    ck = Checkpointer(d, notify=notes.append)
    assert int(ck.restore_latest(_state(0)).step) == 1 and "resuming from step 1" in notes[0]
    ck.close()
    time.sleep(0.3)
    gc.collect()
    assert sys.unraisablehook is hook
    assert not [e for e in seen if str(e) == LOOP_CLOSED], seen


def test_filter_drops_only_the_aftermath(seen):
    hook = sys.unraisablehook
    with quiet_read_aftermath():
        assert sys.unraisablehook is not hook
        _unraisable(RuntimeError(LOOP_CLOSED))
        _failing_coroutine("/site-packages/orbax/checkpoint/_src/fake.py")
        _failing_coroutine("/site-packages/tensorstore/fake.py")
        assert seen == []
        _unraisable(ValueError("unrelated"))
        _unraisable(RuntimeError("Event loop is closed?"))
        _failing_coroutine("/site-packages/someone_else/fake.py")
    assert [(type(e).__name__, str(e)) for e in seen] == [
        ("ValueError", "unrelated"), ("RuntimeError", "Event loop is closed?"), ("RuntimeError", "late read")]
    assert sys.unraisablehook is hook
    _unraisable(RuntimeError(LOOP_CLOSED))  # outside the block: not filtered
    assert [str(e) for e in seen[3:]] == [LOOP_CLOSED]


def test_filter_nests_and_restores_after_an_error(seen):
    hook = sys.unraisablehook
    with pytest.raises(ValueError):
        with quiet_read_aftermath(quiet_s=0.01):
            inner_hook = sys.unraisablehook
            with quiet_read_aftermath(quiet_s=0.01):
                assert sys.unraisablehook is inner_hook  # one filter, not a chain
            assert sys.unraisablehook is inner_hook  # still inside the outer block
            raise ValueError("restore failed")
    assert sys.unraisablehook is hook
    _unraisable(RuntimeError(LOOP_CLOSED))
    assert [str(e) for e in seen] == [LOOP_CLOSED]
