"""The whole toy study from one command: Table 2, the ablations, the collapse-by-init table,
Figures 5, 6, 9 and one report directory.

    python scripts/study.py --preset quick --dry-run     # the cells, their state, the time
    python scripts/study.py --preset quick               # the 2-core CPU, unattended (hours)
    python scripts/study.py --preset paper --out runs/study_paper   # one GPU

Table 2: MDM and ARM at L = 10, 20, 30, 40; ablations (learned / no positions, the MDM
objective on the causal decoder, learned-position ARM, RADD's init) at L = 10, 20; the collapse
table (init standard vs radd) from those cells; 8 seeds each (--seeds N: 0..N-1 everywhere).
One run directory per cell, OUT/<variant>/L<L>, shared by the parts; rerunning the same
command reuses finished cells, and a cell directory holding another config is refused before
anything runs. The report (OUT/report/report.md and report.json, figures in
OUT/report/figures/) is rewritten after every cell. The override flags below apply to every
cell (for smoke tests, e.g. --steps 20 --d-model 8); the grids and the report:
`toy_jax.study`; one grid or ad-hoc variants: scripts/toy_grid.py.
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from plumbing.cli import OneLineParser, UsageError, run_main  # noqa: E402
from toy_jax.configs import PRESET_CHOICES  # noqa: E402
from toy_jax.study import run_study  # noqa: E402
from toy_jax.train import add_override_flags, override_dicts  # noqa: E402


def _main(argv) -> int:
    p = OneLineParser(prog="study.py", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=PRESET_CHOICES, default="quick",
                   help="quick (the 2-core CPU) or paper (Table 8; one GPU)")
    p.add_argument("--out", type=Path, default=None,
                   help="study directory (default runs/study_<preset>)")
    p.add_argument("--dry-run", action="store_true",
                   help="list the cells, their state and a time estimate; write nothing")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 8)")
    p.add_argument("--no-figures", action="store_true",
                   help="tables only (no Figures 5, 6, 9)")
    p.add_argument("--n-boot", type=int, default=200,
                   help="bootstrap resamples of the correlation figure")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_override_flags(p)
    a = p.parse_args(argv)
    if a.seeds is not None and a.seeds < 1:
        raise UsageError("--seeds must be >= 1")
    out = a.out or Path("runs") / f"study_{a.preset}"
    cmd = "python scripts/study.py " + " ".join(shlex.quote(x) for x in argv)
    logging.getLogger("absl").setLevel(logging.WARNING)
    try:
        run_study(a.preset, out, dry_run=a.dry_run, n_seeds=a.seeds,
                  overrides=override_dicts(a), figures=not a.no_figures, n_boot=a.n_boot,
                  progress=not a.no_progress, command=cmd.strip())
    except ValueError as e:  # a bad config, another run's cell directory
        raise UsageError(str(e).splitlines()[0]) from e
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"finished cells and checkpoints are kept in {out}; rerun "
                                "the same command to resume") from None
    return 0


def main(argv=None) -> int:
    """Exit codes (`plumbing.cli`): 0 done, 1 failure, 2 bad arguments, 130 interrupted."""
    return run_main("study.py", _main, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
