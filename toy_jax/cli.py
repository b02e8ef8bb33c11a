"""Shared command-line plumbing of the toy entry points: one-line errors, never a traceback."""
from __future__ import annotations

import argparse
import sys


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag or value as one line on stderr and exits with 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def fail(prog: str, exc: BaseException, code: int = 1) -> int:
    """Print `prog: error: <first line of exc>` to stderr and return `code` (for `main`)."""
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    print(f"{prog}: error: {msg}", file=sys.stderr)
    return code
