"""Run a named grid of toy variants x L x seeds (toy_jax.experiments) and write its verdict.

    python scripts/toy_grid.py --grid table2_verdict_cpu --preset quick --out runs/verdict_quick
    python scripts/toy_grid.py --grid table2_verdict --preset paper --out $OUT/verdict --dry-run

Resumable: rerunning the command reuses finished cells (OUT/<variant>/L<L>).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from toy_jax.cli import OneLineParser, UsageError, run_main  # noqa: E402


def _main(argv) -> int:
    from toy_jax import experiments as E
    from toy_jax.configs import PRESET_CHOICES

    p = OneLineParser(prog="toy_grid.py", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", choices=sorted(E.GRIDS), default="table2_verdict_cpu")
    p.add_argument("--preset", choices=PRESET_CHOICES, default="quick")
    p.add_argument("--out", type=Path, default=Path("runs/toy_grid"), help="grid directory")
    p.add_argument("--L", type=int, nargs="+", default=None, help="subset of the grid's L")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default: the grid's)")
    p.add_argument("--variants", nargs="+", default=None, help="subset of the grid's variants")
    p.add_argument("--verdict", type=Path, default=None,
                   help="verdict JSON to write (default OUT/verdict.json)")
    p.add_argument("--dry-run", action="store_true", help="list the cells and estimates only")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if a.seeds is not None and a.seeds < 1:
        raise UsageError("--seeds must be >= 1")
    cmd = "python scripts/toy_grid.py " + " ".join(shlex.quote(x) for x in argv)
    try:
        E.study(a.grid, a.preset, a.out, Ls=a.L, n_seeds=a.seeds, variants=a.variants,
                verdict=a.verdict, dry_run=a.dry_run, progress=not a.no_progress, command=cmd)
    except ValueError as e:
        raise UsageError(str(e).splitlines()[0]) from e
    return 0


def main(argv=None) -> int:
    """Exit codes (`toy_jax.cli`): 0 done, 1 failure, 2 bad arguments, 130 interrupted."""
    return run_main("toy_grid.py", _main, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
