"""Run one grid of toy variants x L x seeds (toy_jax.experiments) and write its verdict.

    python scripts/toy_grid.py --grid table2_verdict_cpu --preset quick --out runs/verdict_quick
    python scripts/toy_grid.py --grid table2_verdict --preset paper --out $OUT/verdict --dry-run
    python scripts/toy_grid.py --grid table2 --preset quick --seeds 3 --out runs/table2_quick
    python scripts/toy_grid.py --preset quick --L 10 --seeds 4 --out runs/sweep_quick \\
        --variant "std=--model mdm" --variant "radd=--model mdm --init radd"

Named grids: --grid (default table2_verdict_cpu, unless --variant is given). --variant
NAME=FLAGS adds an ad-hoc variant with toy_jax/train.py's flags (default model: both; --L,
--seed, --preset, --out belong to the grid); with --grid it joins that grid's variants. The
override flags below apply to every variant of the grid; a variant's own values win.
One run directory per cell, OUT/<variant>/L<L>; rerunning reuses finished cells, and a cell
directory holding another config is refused before anything runs. OUT/verdict.json (every
finished cell's per-seed readings, final and over training) and OUT/verdict.png are rewritten
at the end. The whole study (Table 2, ablations, collapse table, figures, one report):
scripts/study.py.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from plumbing.cli import OneLineParser, UsageError, run_main  # noqa: E402
from toy_jax import experiments as E  # noqa: E402
from toy_jax.configs import PRESET_CHOICES  # noqa: E402
from toy_jax.train import add_override_flags, override_dicts  # noqa: E402


def _main(argv) -> int:
    p = OneLineParser(prog="toy_grid.py", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", choices=sorted(E.GRIDS), default=None,
                   help="a named grid (default table2_verdict_cpu without --variant)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=FLAGS",
                   help='an ad-hoc variant, e.g. "radd=--model mdm --init radd"; repeatable')
    p.add_argument("--preset", choices=PRESET_CHOICES, default="quick")
    p.add_argument("--out", type=Path, default=Path("runs/toy_grid"), help="grid directory")
    p.add_argument("--L", type=int, nargs="+", default=None, help="subset of the grid's L")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default: the grid's)")
    p.add_argument("--variants", nargs="+", default=None, help="subset of the grid's variants")
    p.add_argument("--verdict", type=Path, default=None,
                   help="verdict JSON to write (default OUT/verdict.json)")
    p.add_argument("--dry-run", action="store_true", help="list the cells and estimates only")
    p.add_argument("--no-progress", action="store_true")
    add_override_flags(p)
    a = p.parse_args(argv)
    if a.seeds is not None and a.seeds < 1:
        raise UsageError("--seeds must be >= 1")
    cmd = "python scripts/toy_grid.py " + " ".join(shlex.quote(x) for x in argv)
    try:
        extra = {v.name: v for v in map(E.parse_variant, a.variant)}
        if len(extra) != len(a.variant):
            raise ValueError("a --variant name is given twice")
        base = E.GRIDS[a.grid or "table2_verdict_cpu"] if a.grid or not extra \
            else E.Grid("variants", ())
        grid = E.Grid(base.name, base.variants + tuple(extra), base.Ls, base.n_seeds)
        E.study(grid, a.preset, a.out, Ls=a.L, n_seeds=a.seeds, variants=a.variants,
                verdict=a.verdict, dry_run=a.dry_run, progress=not a.no_progress, command=cmd,
                registry=extra, overrides=override_dicts(a))
    except ValueError as e:  # a bad variant or config, another run's cell directory
        raise UsageError(str(e).splitlines()[0]) from e
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"finished cells and checkpoints are kept in {a.out}; rerun "
                                "the same command to resume") from None
    return 0


def main(argv=None) -> int:
    """Exit codes (`plumbing.cli`): 0 done, 1 failure, 2 bad arguments, 130 interrupted."""
    return run_main("toy_grid.py", _main, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
