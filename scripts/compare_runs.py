"""Do two toy run directories hold the same numbers? Config, every per-seed reading, the seed
means and s.e.m.s, every metrics row (wall-clock fields aside), compared exactly.

    python scripts/compare_runs.py runs/a/L10 runs/b/L10               # prints the counts
    python scripts/compare_runs.py runs/a/L10 runs/b/L10 --out cmp.json

For a before/after of a code change (the same command at two commits) or a rerun on another
machine. Exit codes (`plumbing.cli`): 0 bit-identical, 1 some number differs (or a run is
unreadable), 2 bad arguments.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import json  # noqa: E402

from plumbing import io, provenance  # noqa: E402
from plumbing.cli import OneLineParser, UsageError, run_main  # noqa: E402
from toy_jax.records import compare  # noqa: E402


def _main(argv) -> int:
    p = OneLineParser(prog="compare_runs.py", description=__doc__.splitlines()[0])
    p.add_argument("run_a", type=Path)
    p.add_argument("run_b", type=Path)
    p.add_argument("--out", type=Path, help="also write the comparison as JSON")
    a = p.parse_args(argv)
    for d in (a.run_a, a.run_b):
        if not (d / "config.json").is_file():
            raise UsageError(f"{d} is not a run directory (no config.json)")
    rec = compare(a.run_a, a.run_b)
    rec["provenance"] = provenance.record(
        command="python scripts/compare_runs.py " + " ".join(map(str, argv)))
    for part in ("per_seed", "models", "models_sem", "metrics_rows"):
        r = rec[part]
        print(f"{part:12s} {r['identical']} of {r['total']} identical"
              + (f" (largest difference {r['largest_difference']:.3g})"
                 if r.get("largest_difference") else ""))
    print(f"config {'equal' if rec['config_equal'] else 'DIFFERS'}; "
          f"{'bit-identical' if rec['bit_identical'] else 'NOT identical'}")
    if a.out:
        io.write_text(a.out, json.dumps(rec, indent=1) + "\n")
    return 0 if rec["bit_identical"] else 1


def main(argv=None) -> int:
    return run_main("compare_runs.py", _main, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
