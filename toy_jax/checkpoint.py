"""Orbax checkpoints of a seed-stacked `TrainState` (CheckpointManager, automatic resume).

Damage is handled here so that the CLIs can say one line about it:
* a step whose files cannot be read (a truncated data file or `_METADATA`) raises
  `CheckpointUnreadable` with a short reason, never orbax's multi-line TensorStore message;
* `restore_latest` (resume) falls back to the previous step (orbax keeps the last 2) and moves
  the unreadable one aside to `<dir>.damaged/<step>`, saying so in one line; `restore` with no
  step (analysis of a run) falls back the same way without moving anything;
* a write cut short by a kill leaves a `<step>.orbax-checkpoint-tmp*` folder, which resuming
  deletes, and possibly a step without `_CHECKPOINT_METADATA` (its data complete), whose orbax
  warning is dropped;
* the aftermath of a failed read (late TensorStore reads on orbax's closed event loop) is dropped
  by a `sys.unraisablehook` filter that is installed only while a restore runs and until that
  aftermath has settled (`quiet_read_aftermath`); importing this module changes no hook.
"""
from __future__ import annotations

import contextlib
import gc
import inspect
import json
import logging
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

TMP_MARKER = ".orbax-checkpoint-tmp"
# orbax's absl messages about the commit-timestamp file `_CHECKPOINT_METADATA` (written after
# the data: a kill can leave it missing or cut; the step's arrays are complete either way)
_BENIGN_ABSL = ("Metadata file does not exist", "Failed to json parse Metadata file")


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be read as this run's state."""


class CheckpointUnreadable(CheckpointError):
    """The files of a checkpoint step cannot be read (truncated, damaged or missing)."""


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


class Checkpointer:
    """Saves the training state of one model variant under `directory` (keeps the last 2).

    `notify` receives the one-line notes on a fallback to an earlier step (default: stderr).
    """

    def __init__(self, directory: Path, max_to_keep: int = 2, notify=_stderr):
        _quiet_orbax_logs()
        self.directory = Path(directory).absolute()
        self.notify = notify
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                                                 create=True))

    def latest_step(self):
        return self.manager.latest_step()

    def steps(self) -> list[int]:
        """Saved steps, newest first."""
        return sorted(self.manager.all_steps(), reverse=True)

    def save(self, step: int, state) -> None:
        with _ctrl_c_deferred():
            self.manager.save(int(step), args=ocp.args.StandardSave(state._asdict()))

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def _restore_step(self, template, step: int):
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template._asdict())
        try:
            with quiet_read_aftermath(), _ctrl_c_deferred():
                d = self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
            restored = type(template)(**d)
        except Exception as e:  # orbax and TensorStore raise many types; report one line
            raise CheckpointUnreadable(f"checkpoint {self.directory}/{step} is unreadable "
                                       f"({unreadable_reason(e)})") from e
        for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(template)):
            if np.shape(a) != np.shape(b):
                raise CheckpointError(f"checkpoint {self.directory}/{step} has shapes that do "
                                      "not match this config")
        return restored

    def restore(self, template, step: int | None = None):
        """The state saved at `step`, shaped like `template` (a TrainState). With no step: the
        latest readable one (a note names a skipped unreadable step; nothing is moved)."""
        if step is not None:
            return self._restore_step(template, step)
        state, _ = self._restore_newest(template, move_aside=False)
        return state

    def restore_latest(self, template):
        """Resume: the latest readable state, or `template` itself when there is no checkpoint.

        Unfinished writes (`<step>.orbax-checkpoint-tmp*`) are deleted first; unreadable steps
        newer than the one restored are moved to `<dir>.damaged/`, so training continues and
        saves those steps again.
        """
        self._remove_unfinished_writes()
        if self.latest_step() is None:
            return template
        state, _ = self._restore_newest(template, move_aside=True)
        return state

    def _restore_newest(self, template, move_aside: bool):
        steps = self.steps()
        if not steps:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        bad: list[tuple[int, CheckpointUnreadable]] = []
        for step in steps:
            try:
                state = self._restore_step(template, step)
            except CheckpointUnreadable as e:
                bad.append((step, e))
                continue
            if bad:
                self._report_fallback(bad, step, move_aside)
            return state, step
        step, err = bad[0]
        older = ("no earlier step is readable either" if len(bad) > 1
                 else "there is no earlier step")
        raise CheckpointUnreadable(
            f"{err}; {older}: delete {self.directory} to train this model from step 0, "
            "or use another --out")

    def _report_fallback(self, bad, good: int, move_aside: bool) -> None:
        first, err = bad[0]
        if move_aside:
            moved = [self._move_aside(s) for s, _ in bad]
            self.manager.reload()
            self.notify(f"{err}; moved it to {moved[0]}"
                        + (f" (and {len(moved) - 1} more)" if len(moved) > 1 else "")
                        + f" and resuming from step {good}")
        else:
            self.notify(f"{err}; using step {good} instead")

    def _move_aside(self, step: int) -> Path:
        dest_dir = self.directory.parent / f"{self.directory.name}.damaged"
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest, i = dest_dir / str(step), 1
        while dest.exists():
            dest, i = dest_dir / f"{step}_{i}", i + 1
        shutil.move(str(self.directory / str(step)), str(dest))
        return dest

    def _remove_unfinished_writes(self) -> None:
        """Delete the temporary folders of saves cut short by a kill (never committed)."""
        if self.directory.is_dir():
            for p in self.directory.iterdir():
                if TMP_MARKER in p.name and p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)

    def close(self) -> None:
        self.manager.close()


@contextlib.contextmanager
def _ctrl_c_deferred():
    """Hold Ctrl-C until orbax has started a save (or finished a read), then raise it.

    A KeyboardInterrupt inside `CheckpointManager.save` leaves background writer threads that
    the manager does not know of: `close` does not wait for them and they fail with a traceback
    at interpreter shutdown. Held, the interrupt arrives after `save` returns, and `close` then
    finishes that checkpoint. Only in the main thread and under Python's default handler.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def saved_steps(directory: Path) -> list[int]:
    """Committed checkpoint steps in `directory` (newest first), read from the folder names
    alone (no orbax): for messages such as 'last checkpoint: ...'."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted((int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit()),
                  reverse=True)


def unreadable_reason(exc: BaseException) -> str:
    """A short reason for a failed restore; orbax/TensorStore messages run to thousands of
    characters (array specs), and their first line names no file a user can act on."""
    chain, e = [], exc
    while e is not None and len(chain) < 8:
        chain.append(e)
        e = e.__cause__ or e.__context__
    text = " ".join(str(c) for c in chain)
    if any(isinstance(c, json.JSONDecodeError) for c in chain):
        return "a metadata file is truncated or not valid JSON"
    for key in ("DATA_LOSS", "OUT_OF_RANGE", "Encountered error while reading array",
                "Error decoding", "Error opening"):
        if key in text:
            return "a data file is truncated or damaged"
    if "NOT_FOUND" in text or isinstance(exc, FileNotFoundError):
        return "a file is missing"
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for cut in (" See full TensorStore details", " [tensorstore_spec"):
        line = line.split(cut)[0]
    return line if len(line) <= 160 else line[:157] + "..."


class _DropBenignAbsl(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_BENIGN_ABSL)


class _DropOrbaxOrphanTasks(logging.Filter):
    """asyncio's 'Task exception was never retrieved' for an orbax read left in flight by a
    failed restore (the failure itself is reported in one line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (msg.startswith("Task exception was never retrieved")
                    and ("orbax" in msg or "tensorstore" in msg))


_logs_quieted = False


def _quiet_orbax_logs() -> None:
    """Drop orbax's absl notes on a missing commit timestamp and asyncio's report of an orbax
    read task left in flight by a failed restore (once per process; other records pass)."""
    global _logs_quieted
    if _logs_quieted:
        return
    _logs_quieted = True
    logging.getLogger("absl").addFilter(_DropBenignAbsl())
    logging.getLogger("asyncio").addFilter(_DropOrbaxOrphanTasks())


def is_read_aftermath(u) -> bool:
    """Whether an unraisable exception (`sys.UnraisableHookArgs`) is the aftermath of a failed
    orbax read: 'Event loop is closed' from a late TensorStore read, or an orbax / TensorStore
    coroutine that failed as it was finalized."""
    exc, obj = u.exc_value, u.object
    if isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed":
        return True
    code = getattr(obj, "cr_code", None)
    return inspect.iscoroutine(obj) and code is not None and (
        "orbax" in code.co_filename or "tensorstore" in code.co_filename)


class _AftermathFilter:
    """The `sys.unraisablehook` of `quiet_read_aftermath`: drops `is_read_aftermath`, passes
    everything else to the hook it replaced, and notes when it last dropped one."""

    def __init__(self, previous):
        self.previous = previous
        self.last_drop: float | None = None

    def __call__(self, u) -> None:
        if is_read_aftermath(u):
            self.last_drop = time.monotonic()
            return
        self.previous(u)

    def settle(self, quiet_s: float, limit_s: float) -> None:
        """Let the stray reads of a failed restore finish while still filtered: collect the
        coroutines they leave, then wait until nothing was dropped for `quiet_s` seconds (at
        most `limit_s`)."""
        start = time.monotonic()
        gc.collect()
        while True:
            now = time.monotonic()
            if now - max(start, self.last_drop or start) >= quiet_s or now - start >= limit_s:
                return
            time.sleep(0.01)


_filter_lock = threading.Lock()
_filter: _AftermathFilter | None = None
_filter_users = 0

# A failed read's stray TensorStore reads report within a few tens of milliseconds (measured on
# 50 failed restores of a truncated step: all within 30 ms of the restore's start, some after it
# had raised); the filter stays until they have been quiet this long.
SETTLE_QUIET_S = 0.25
SETTLE_LIMIT_S = 3.0


@contextlib.contextmanager
def quiet_read_aftermath(quiet_s: float = SETTLE_QUIET_S, limit_s: float = SETTLE_LIMIT_S):
    """Drop the aftermath of a failed orbax restore while the block runs.

    After a read error orbax closes its event loop while TensorStore reads are still in flight;
    each late one prints 'Exception ignored ... Event loop is closed' (or a never-awaited orbax
    coroutine) from a TensorStore thread, partly after the restore has already raised. So when
    the block raises, the filter stays until those have settled (`_AftermathFilter.settle`).
    Other unraisable exceptions reach the hook that was in place. On leaving the outermost
    block, `sys.unraisablehook` is the one it found (unless something replaced it meanwhile).
    Nests, also across threads: one filter while any block is open.
    """
    global _filter, _filter_users
    with _filter_lock:
        if _filter_users == 0:
            _filter = _AftermathFilter(sys.unraisablehook)
            sys.unraisablehook = _filter
        _filter_users += 1
        hook = _filter
    try:
        yield
    except Exception:
        hook.settle(quiet_s, limit_s)
        raise
    finally:
        with _filter_lock:
            _filter_users -= 1
            if _filter_users == 0:
                if sys.unraisablehook is _filter:
                    sys.unraisablehook = _filter.previous
                _filter = None


def resume_note(run_dir: Path, models, first_at: int | None = None) -> str:
    """What an interrupted run leaves, in one clause: its last checkpoint per model and that
    the same command resumes (for `KeyboardInterrupt` messages of the CLIs)."""
    run_dir = Path(run_dir)
    found = {m: saved_steps(run_dir / "checkpoints" / m) for m in models}
    if not any(found.values()):
        when = f" (the first is written at step {first_at})" if first_at else ""
        return f"no checkpoint in {run_dir} yet{when}; rerun the same command to start again"
    parts = [str(run_dir / "checkpoints" / m / str(s[0])) if s else f"{m}: none yet"
             for m, s in found.items()]
    return (f"last checkpoint{'s' if len(parts) > 1 else ''}: {', '.join(parts)}; "
            "rerun the same command to resume")
