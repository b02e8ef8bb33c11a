"""Orbax checkpoints of a seed-stacked `TrainState` (CheckpointManager, automatic resume)."""
from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be read as this run's state."""


class Checkpointer:
    """Saves the training state of one model variant under `directory` (keeps the last 2)."""

    def __init__(self, directory: Path, max_to_keep: int = 2):
        self.directory = Path(directory).absolute()
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                                                 create=True))

    def latest_step(self):
        return self.manager.latest_step()

    def save(self, step: int, state) -> None:
        self.manager.save(int(step), args=ocp.args.StandardSave(state._asdict()))

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def restore(self, template, step: int | None = None):
        """The state saved at `step` (default latest), shaped like `template` (a TrainState)."""
        step = self.latest_step() if step is None else step
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template._asdict())
        try:
            d = self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
            restored = type(template)(**d)
        except Exception as e:  # orbax raises many types; report one line
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(f"cannot read checkpoint {self.directory}/{step}: {msg}") from e
        for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(template)):
            if np.shape(a) != np.shape(b):
                raise CheckpointError(f"checkpoint {self.directory}/{step} has shapes that do "
                                      "not match this config")
        return restored

    def restore_latest(self, template):
        """`restore` of the latest step, or `template` itself when there is no checkpoint."""
        return template if self.latest_step() is None else self.restore(template)

    def close(self) -> None:
        self.manager.close()
