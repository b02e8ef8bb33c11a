"""Numerically verify the paper's theory (Section 4.2, Appendix C): `python theory/verify.py`.

Prints PASS/FAIL per check with its numbers; `--out DIR` also writes report.json, report.md and
PNG figures. Exit status: 0 every identity/theorem check holds (limits of the paper's
approximations are reported as findings, not failures); 1 a check fails or a runtime error;
2 bad arguments (including an --out that cannot be created or written, found before computing);
130 interrupted (Ctrl-C). Errors are one line on stderr.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

if __package__ in (None, ""):  # run by path: make the repo root importable even without install
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from plumbing.cli import EXIT_FAILURE, OneLineParser, interrupted  # noqa: E402

PROG = "verify.py"


def _dims(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not dims:
        raise argparse.ArgumentTypeError("no head dimension given")
    for D in dims:
        if D <= 0 or D % 2:
            raise argparse.ArgumentTypeError(f"head dimension D must be a positive even integer, got {D}")
    return dims


def _base(text: str) -> float:
    try:
        b = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (b > 1.0 and b != float("inf")):
        raise argparse.ArgumentTypeError(f"RoPE base must be a finite number > 1, got {text}")
    return b


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="reduced sizes (for tests; about 1.5 s of CPU time)")
    p.add_argument("--out", metavar="DIR", help="write report.json, report.md and figures here")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--base", type=_base, default=10000.0,
                   help="RoPE base for checks 1-3 and 5 (default 10000; Table 4 and check 6 always use 10000)")
    p.add_argument("--dims", type=_dims, default=None,
                   help="comma-separated head dimensions D for checks 2-3 (default 16,...,512)")
    return p


def _prepare_out(out: str) -> bool:
    """Create --out if needed and prove it is writable; returns whether it was created here."""
    created = not os.path.exists(out)
    os.makedirs(out, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test-")
    try:
        os.close(fd)
    finally:
        os.remove(probe)
    return created


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.out is not None and os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out!r} exists and is not a directory")
    from theory.checks import paper_config, quick_config  # lazy: numpy and scipy after the flags are checked

    overrides = {"seed": args.seed, "base": args.base}
    if args.dims is not None:
        overrides["dims"] = args.dims
    try:
        cfg = (quick_config if args.quick else paper_config)(**overrides)
    except ValueError as e:
        parser.error(str(e))
    created = False
    if args.out is not None:  # before computing: a bad --out must not cost the whole run
        try:
            created = _prepare_out(args.out)
        except OSError as e:
            parser.error(f"--out {args.out!r} is not a writable directory: {e.strerror or e}")
    try:
        return _run(cfg, args.out)
    finally:
        if created and not os.listdir(args.out):
            os.rmdir(args.out)  # nothing written: leave no empty directory behind


def _run(cfg, out: str | None) -> int:
    from theory.report import render_text, run_all, write_outputs

    report = run_all(cfg)
    print(render_text(report))
    if out is not None:
        try:
            names = write_outputs(report, out)
        except OSError as e:
            print(f"{PROG}: error: cannot write to {out!r}: {e.strerror or e}", file=sys.stderr)
            return EXIT_FAILURE
        print(f"wrote {', '.join(names)} to {out}")
    return 0 if report["passed"] else EXIT_FAILURE


def cli(argv=None) -> int:
    """main() with the exit-code convention: one line on stderr for an interrupt or a runtime error."""
    try:
        return main(argv)
    except KeyboardInterrupt:
        return interrupted(PROG, "rerun the same command to run the checks again")
    except Exception as e:  # noqa: BLE001 - one line instead of a traceback
        print(f"{PROG}: error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(cli())
