"""Command-line plumbing of every entry point (toy_jax, largescale_torch, theory, scripts/):
one-line errors, never a traceback, and one exit-code convention:

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
