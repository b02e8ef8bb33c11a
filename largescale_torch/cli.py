"""What finetune.py and evaluate.py share: model, data, evaluation and sampler flags; exit codes.

`inherit=True` is evaluate.py's form: every setting optional (default None), filled from a
finetuning run's config.json (`--run`), else from the finetuning defaults.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from largescale_torch import constants as C
from plumbing.cli import FAILURES, first_line

MODEL_HELP = (f"hub id, local directory, alias ({'|'.join(C.MODEL_IDS)}) "
              f"or offline preset ({'|'.join(C.TINY_PRESETS)})")


def new_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser whose --help shows every default."""
    return argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )


def add_model_args(p: argparse.ArgumentParser, inherit: bool = False) -> None:
    """--model: required, or (inherit) taken from the run."""
    p.add_argument("--model", required=not inherit, default=None,
                   help=MODEL_HELP + ("; with --run: taken from the run" if inherit else ""))


def add_data_args(p: argparse.ArgumentParser, inherit: bool = False) -> None:
    """Where the data lives and which examples are selected."""
    p.add_argument("--data-dir", default=None, help=f"Berglund et al. data (default: ${C.DATA_ENV_VAR}, "
                                                     "else download at a pinned commit)")
    p.add_argument("--data-seed", type=int, default=None if inherit else 0,
                   help="dataset selection seed (default: the run's, else 0)" if inherit
                   else "dataset selection seed (Parent-Child subset, T-REx names)")
    p.add_argument("--d2p-completions", default=None if inherit else "name",
                   help="name | verbatim (only D2P training answers; default name)" if inherit
                   else "D2P training answers: name (bare names, as the paper shows; default) | verbatim "
                        "(upstream text, which may continue after the name)")


def add_eval_args(p: argparse.ArgumentParser, inherit: bool = False) -> None:
    """How many queries are asked, how many at once, in which precision."""
    p.add_argument("--max-eval-examples", type=int, default=None,
                   help="evaluate the first N per direction (default: the --run's, on its dataset; else all)"
                   if inherit else "smoke tests: evaluate the first N per direction")
    p.add_argument("--eval-batch-size", type=int, default=32, help="queries decoded at once")
    p.add_argument("--dtype", default="auto", help="auto (bf16 where supported) | bf16 | fp32")


def add_sampler_args(p: argparse.ArgumentParser, inherit: bool = False) -> None:
    """Sampler flags (Appendix D / LLaDA's generate.py). `inherit`: default None, filled from a run's config."""
    def d(value):
        return None if inherit else value

    g = p.add_argument_group("sampler (Appendix D / LLaDA's generate.py)" + (
        "; default None: the --run's settings, else Appendix D's "
        f"(gen length {C.GEN_LENGTH}, block {C.BLOCK_LENGTH}, steps {C.SAMPLER_STEPS}, temperature {C.TEMPERATURE}, "
        f"{C.SAMPLER_REMASKING}; poems: LLaDA's {C.POEM_GEN_LENGTH}/{C.POEM_BLOCK_LENGTH}/{C.POEM_SAMPLER_STEPS})"
        if inherit else ""))
    g.add_argument("--gen-length", type=int, default=d(C.GEN_LENGTH),
                   help="answer positions decoded by an MDM; an ARM's max new tokens")
    g.add_argument("--block-length", type=int, default=d(C.BLOCK_LENGTH),
                   help="MDM semi-autoregressive block length, dividing --gen-length")
    g.add_argument("--sampler-steps", type=int, default=d(C.SAMPLER_STEPS),
                   help="MDM denoising steps over the whole answer")
    g.add_argument("--temperature", type=float, default=d(C.TEMPERATURE),
                   help="MDM sampling temperature, 0 = greedy")
    g.add_argument("--remasking", default=d(C.SAMPLER_REMASKING),
                   help="MDM remasking rule: low_confidence | random")
    g.add_argument("--threshold", type=float, default=None,
                   help="MDM confidence-threshold parallel decoding (Fast-dLLM); None: off")
    g.add_argument("--prefix-cache", action=argparse.BooleanOptionalAction, default=d(False),
                   help="MDM prefix KV cache across a block's steps (Fast-dLLM)")


def sampler_fields(args: argparse.Namespace) -> dict:
    """TrainConfig's sampler fields from parsed flags (None: not given)."""
    return {"gen_length": args.gen_length, "block_length": args.block_length, "sampler_steps": args.sampler_steps,
            "temperature": args.temperature, "remasking": args.remasking, "threshold": args.threshold,
            "prefix_cache": args.prefix_cache}


def main_interruptible(body: Callable[[Any], int], argv=None) -> int:
    """`body(argv)`, or exit code 130 after one line on Ctrl-C (commands whose other errors
    `body` reports itself)."""
    try:
        return body(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return C.EXIT_INTERRUPTED


def call_with_exit_code(fn: Callable[[], Any], interrupted: Callable[[], str]) -> tuple[Any, int]:
    """(fn(), 0), or (None, exit code) after a one-line error on stderr: a bad config, a runtime
    failure, or Ctrl-C (`interrupted()` says what was kept)."""
    try:
        return fn(), 0
    except FAILURES as err:  # ConfigError is a ValueError
        print(f"error: {first_line(err)}", file=sys.stderr)
        return None, C.EXIT_BAD_ARGS if isinstance(err, C.ConfigError) else C.EXIT_FAILURE
    except KeyboardInterrupt:
        print(interrupted(), file=sys.stderr)
        return None, C.EXIT_INTERRUPTED
