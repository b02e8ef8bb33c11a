"""Where cached artefacts (tiny presets, downloaded data, converted checkpoints) live."""
from __future__ import annotations

import os
from pathlib import Path

from largescale_torch.constants import CACHE_ENV_VAR


def cache_dir() -> Path:
    """$REVERSAL_MDM_CACHE, else $XDG_CACHE_HOME/reversal-mdm, else ~/.cache/reversal-mdm."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "reversal-mdm"
