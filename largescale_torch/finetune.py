"""LoRA-finetune one model on one direction of a reversal dataset and evaluate both directions.

    python largescale_torch/finetune.py --model M --dataset D --direction R --seed S --out DIR

Without arguments: prints this usage and the commands for every row of Table 1.
Works unchanged under `accelerate launch` (data parallel).
Exit codes: 0 done, 2 bad arguments or config, 1 runtime failure, 130 interrupted (Ctrl-C;
rerunning the same command resumes from the last checkpoint).
"""
from __future__ import annotations

import argparse
import os
import sys

from largescale_torch import constants as C


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python largescale_torch/finetune.py",
        description="LoRA finetuning on forward statements, exact-match evaluation forward and reverse "
                    "(Section 3 / Appendix D).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", required=True,
                   help="hub id, local directory, alias (llada|llama|qwen) or offline preset "
                        "(tiny-llama|tiny-qwen|tiny-llada)")
    p.add_argument("--dataset", required=True, help="parent_child | person_description | trex")
    p.add_argument("--direction", required=True, help="p2c|c2p (parent_child), p2d|d2p (person_description), "
                                                        "forward (trex)")
    p.add_argument("--seed", type=int, required=True, help="training seed (paper: 1, 42, 1234)")
    p.add_argument("--out", required=True, help="run directory (rerunning with the same one resumes)")
    p.add_argument("--epochs", type=int, default=C.EPOCHS, help="training epochs (Appendix D)")
    p.add_argument("--lr", type=float, default=None, help="default: Appendix D value for the model and dataset")
    p.add_argument("--batch-size", type=int, default=C.BATCH_SIZE, help="global batch size")
    p.add_argument("--data-dir", default=None, help=f"Berglund et al. data (default: ${C.DATA_ENV_VAR}, "
                                                     "else download at a pinned commit)")
    p.add_argument("--eval-every", type=int, default=C.CHECKPOINT_EVERY, help="epochs between evaluations")
    p.add_argument("--save-every", type=int, default=C.CHECKPOINT_EVERY, help="epochs between adapter checkpoints")
    p.add_argument("--eval-batch-size", type=int, default=32, help="queries decoded at once")
    p.add_argument("--max-train-examples", type=int, default=None, help="smoke tests: use only the first N")
    p.add_argument("--max-eval-examples", type=int, default=None,
                   help="smoke tests: evaluate the first N per direction")
    p.add_argument("--data-seed", type=int, default=0, help="dataset selection seed (Parent-Child subset, T-REx names)")
    p.add_argument("--dtype", default="auto", help="auto (bf16 where supported) | bf16 | fp32")
    p.add_argument("--report-to", default="none", help="none | wandb | tensorboard")
    p.add_argument("--no-chat-template", dest="chat_template", action="store_false",
                   help="raw prompts with the tokenizer's own special tokens (default: each Instruct model's "
                        "chat template around the query)")
    p.add_argument("--mdm-pad-to", default="batch",
                   help="LLaDA SFT answer padding: batch (EOS up to the longest answer in the mini-batch, "
                        "LLaDA's guideline; default) | gen_length (EOS up to 32 tokens)")
    p.add_argument("--d2p-completions", default="name",
                   help="D2P training answers: name (bare names, as the paper shows; default) | verbatim "
                        "(upstream text, which may continue after the name)")
    return p


def usage_text() -> str:
    from largescale_torch.commands import table1_commands_text

    return build_parser().format_usage() + "\nTable 1, every row (3 models x 3 seeds each):\n" + table1_commands_text()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(usage_text())
        return 0
    args = build_parser().parse_args(argv)  # exits 2 on unknown or malformed flags
    from largescale_torch.constants import EXIT_BAD_ARGS, EXIT_FAILURE, EXIT_INTERRUPTED, ConfigError
    from largescale_torch.training import TrainConfig, canonical_out, latest_checkpoint, run

    cfg = TrainConfig(
        model=args.model, dataset=args.dataset, direction=args.direction, seed=args.seed, out=args.out,
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, data_dir=args.data_dir,
        eval_every=args.eval_every, save_every=args.save_every, eval_batch_size=args.eval_batch_size,
        max_train_examples=args.max_train_examples, max_eval_examples=args.max_eval_examples,
        data_seed=args.data_seed, dtype=args.dtype, report_to=args.report_to,
        chat_template=args.chat_template, mdm_pad_to=args.mdm_pad_to, d2p_completions=args.d2p_completions,
    )
    try:
        res = run(cfg)
    except ConfigError as err:
        print(f"error: {err}".splitlines()[0], file=sys.stderr)
        return EXIT_BAD_ARGS
    except (ValueError, OSError, RuntimeError, FloatingPointError) as err:
        print(f"error: {err}".splitlines()[0], file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        ckpt = latest_checkpoint(canonical_out(args.out))
        where = f"last checkpoint {ckpt}" if ckpt else "no checkpoint yet"
        print(f"interrupted ({where}); rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    if os.environ.get("RANK", "0") != "0":  # data parallel: one summary line
        return 0
    print(f"forward exact {res['forward']['final']:.3f} (best {res['forward']['best']:.3f}), "
          f"reverse exact {res['reverse']['final']:.3f} (best {res['reverse']['best']:.3f}) -> {args.out}/results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
