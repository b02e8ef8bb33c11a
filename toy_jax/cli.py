"""Shared command-line plumbing of the toy entry points: one-line errors, never a traceback.

Exit codes, the same for every toy CLI (`toy_jax/train.py` and the toy `scripts/`):

    0    done
    1    runtime failure: I/O, an unreadable checkpoint, a non-finite loss
    2    bad arguments or config (argparse errors, invalid values, another run's --out)
    130  interrupted (Ctrl-C); rerunning the same command resumes where it can

An entry point is `def main(argv=None): return run_main(PROG, _main, argv)`: `_main` raises
`UsageError` for bad input, lets runtime errors propagate, and may raise
`KeyboardInterrupt(message)` to say where an interrupted run stands.
"""
from __future__ import annotations

import argparse
import sys

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# Runtime failures reported as one line (CheckpointError and jax's XlaRuntimeError are
# RuntimeErrors); anything else (TypeError, KeyError, ...) is a bug and keeps its traceback.
FAILURES = (ValueError, OSError, FloatingPointError, RuntimeError)


class UsageError(ValueError):
    """Bad arguments or config: reported as one line, exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag or value as one line on stderr and exits with 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def first_line(exc: BaseException) -> str:
    """The first line of `exc`'s message (its type name when the message is empty)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _close_progress_bars() -> bool:
    """Close the tqdm bars an exception left open (they end their line now, not after our
    message); True if there were any."""
    tqdm = getattr(sys.modules.get("tqdm"), "tqdm", None)
    bars = list(getattr(tqdm, "_instances", None) or ())
    for bar in bars:
        bar.close()
    return bool(bars)


def fail(prog: str, exc: BaseException, code: int = EXIT_FAILURE) -> int:
    """Print `prog: error: <first line of exc>` to stderr and return `code` (for `main`)."""
    _close_progress_bars()
    print(f"{prog}: error: {first_line(exc)}", file=sys.stderr)
    return code


def interrupted(prog: str, message: str = "") -> int:
    """Print `prog: interrupted[; message]` as one line and return 130."""
    # start on a fresh line after the terminal's ^C echo (a closed bar ends its own line)
    lead = "\n" if not _close_progress_bars() and sys.stderr.isatty() else ""
    print(f"{lead}{prog}: interrupted" + (f"; {message}" if message else ""), file=sys.stderr)
    return EXIT_INTERRUPTED


def run_main(prog: str, body, argv=None) -> int:
    """`body(argv)` with the exit-code convention above: UsageError -> 2, a runtime failure
    -> 1, Ctrl-C -> 130 (`KeyboardInterrupt`'s message, if any, completes the line)."""
    try:
        return body(argv)
    except KeyboardInterrupt as e:
        return interrupted(prog, str(e))
    except UsageError as e:
        return fail(prog, e, EXIT_USAGE)
    except FAILURES as e:
        return fail(prog, e, EXIT_FAILURE)


def _fmt_value(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, (list, tuple)):
        return " ".join(str(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def show_defaults(parser: argparse.ArgumentParser, presets: dict | None = None,
                  fields=None, sections: tuple[str, ...] = ("model", "train", "eval")
                  ) -> argparse.ArgumentParser:
    """Make `--help` show every default.

    A flag in `fields` (dests; default: all) whose default is None and whose dest is a field of
    a config section (e.g. `cfg.train.batch_size` for `--batch-size`) gets "(paper: 256,
    quick: 128)" from `presets` ({preset name: RunConfig}), and the epilog gets a table of those
    values per preset; any other flag with a default gets "(default: X)". Help that already
    names its default is left as it is.
    """
    rows = []
    for a in parser._actions:
        if a.help == argparse.SUPPRESS or not a.option_strings:
            continue
        vals = {}
        if a.default is None and presets and (fields is None or a.dest in fields):
            for name, cfg in presets.items():
                for s in sections:
                    sec = getattr(cfg, s, None)
                    if sec is not None and hasattr(sec, a.dest):
                        vals[name] = _fmt_value(getattr(sec, a.dest))
                        break
        if len(vals) != len(presets or {}) or not vals:
            vals = {}
        else:
            rows.append((a.option_strings[0], list(vals.values())))
        if "default" in (a.help or "").lower():
            continue  # the help names its default itself
        if vals:
            note = (f"default: {next(iter(vals.values()))}" if len(set(vals.values())) == 1
                    else ", ".join(f"{n}: {v}" for n, v in vals.items()))
        elif a.default not in (None, False, argparse.SUPPRESS):
            note = f"default: {_fmt_value(a.default)}"
        else:
            continue
        a.help = f"{a.help} ({note})" if a.help else f"({note})"
    if rows:
        names = list(presets)
        w0 = max(len(r[0]) for r in rows) + 2
        ws = [max([len(n)] + [len(r[1][i]) for r in rows]) + 2 for i, n in enumerate(names)]
        row = lambda first, cells: ("  " + first.ljust(w0)
                                    + "".join(c.ljust(w) for c, w in zip(cells, ws))).rstrip()
        lines = ["preset values (--preset picks a column; each flag overrides one value):",
                 row("flag", names)] + [row(f, vs) for f, vs in rows]
        table = "\n".join(lines)
        parser.epilog = f"{parser.epilog}\n\n{table}" if parser.epilog else table
    return parser
