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

from largescale_torch import cli, constants as C
from largescale_torch.commands import table1_commands_text


def build_parser() -> argparse.ArgumentParser:
    p = cli.new_parser("python largescale_torch/finetune.py",
                       "LoRA finetuning on forward statements, exact-match evaluation forward and reverse "
                       "(Section 3 / Appendix D).")
    cli.add_model_args(p)
    p.add_argument("--dataset", required=True,
                   help="parent_child | person_description | trex | FILE.jsonl (your forward/reverse pairs) | "
                        "a datasets save_to_disk directory | poems:FILE (LLaDA's poem_data.json)")
    p.add_argument("--direction", required=True, help="p2c|c2p (parent_child), p2d|d2p (person_description), "
                                                        "forward (trex and file datasets)")
    p.add_argument("--seed", type=int, required=True, help="training seed (paper: 1, 42, 1234)")
    p.add_argument("--out", required=True, help="run directory (rerunning with the same one resumes)")
    p.add_argument("--epochs", type=int, default=C.EPOCHS, help="training epochs (Appendix D)")
    p.add_argument("--lr", type=float, default=None, help="default: Appendix D value for the model and dataset")
    p.add_argument("--batch-size", type=int, default=C.BATCH_SIZE, help="global batch size")
    cli.add_data_args(p)
    p.add_argument("--eval-every", type=int, default=C.CHECKPOINT_EVERY, help="epochs between evaluations")
    p.add_argument("--save-every", type=int, default=C.CHECKPOINT_EVERY, help="epochs between adapter checkpoints")
    p.add_argument("--max-train-examples", type=int, default=None, help="smoke tests: use only the first N")
    cli.add_eval_args(p)
    p.add_argument("--report-to", default="none", help="none | wandb | tensorboard")
    p.add_argument("--no-chat-template", dest="chat_template", action="store_false",
                   help="raw prompts with the tokenizer's own special tokens (default: each Instruct model's "
                        "chat template around the query)")
    p.add_argument("--mdm-pad-to", default="batch",
                   help="LLaDA SFT answer padding: batch (EOS up to the longest answer in the mini-batch, "
                        "LLaDA's guideline; default) | gen_length (EOS up to 32 tokens)")
    p.add_argument("--objective", default="sft", choices=("sft", "pretrain"),
                   help="sft: the paper's finetuning loss (the prompt is never a target) | pretrain: each model's "
                        "pretraining loss over prompt + answer (LLaDA: any token masked; ARM: next-token loss on "
                        "every token), i.e. continued pretraining on the forward statements")
    add_lora_flags(p)
    cli.add_sampler_args(p)
    return p


def _module_list(values: list[str]) -> tuple[str, ...]:
    """`--lora-targets q_proj k_proj` and `--lora-targets q_proj,k_proj` alike."""
    return tuple(name for v in values for name in v.split(",") if name)


def add_lora_flags(p: argparse.ArgumentParser) -> None:
    """LoRA flags (Appendix D: r = 32, alpha = 64 on the attention projections)."""
    g = p.add_argument_group("LoRA (Appendix D)")
    g.add_argument("--lora-r", type=int, default=C.LORA_RANK, help="LoRA rank")
    g.add_argument("--lora-alpha", type=int, default=C.LORA_ALPHA, help="LoRA alpha (scale alpha / r)")
    g.add_argument("--lora-dropout", type=float, default=C.LORA_DROPOUT, help="LoRA dropout (not in the paper)")
    g.add_argument("--lora-targets", nargs="+", default=list(C.LORA_TARGET_MODULES), metavar="MODULE",
                   help="module names to adapt, space- or comma-separated (the attention projections)")


def usage_text() -> str:
    return build_parser().format_usage() + "\nTable 1, every row (3 models x 3 seeds each):\n" + table1_commands_text()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(usage_text())
        return 0
    args = build_parser().parse_args(argv)  # exits 2 on unknown or malformed flags
    from largescale_torch.training import TrainConfig, canonical_out, latest_checkpoint, run  # lazy: loads torch

    cfg = TrainConfig(
        model=args.model, dataset=args.dataset, direction=args.direction, seed=args.seed, out=args.out,
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, data_dir=args.data_dir,
        eval_every=args.eval_every, save_every=args.save_every, eval_batch_size=args.eval_batch_size,
        max_train_examples=args.max_train_examples, max_eval_examples=args.max_eval_examples,
        data_seed=args.data_seed, dtype=args.dtype, report_to=args.report_to,
        chat_template=args.chat_template, mdm_pad_to=args.mdm_pad_to, d2p_completions=args.d2p_completions,
        lora_r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
        lora_targets=_module_list(args.lora_targets), objective=args.objective, **cli.sampler_fields(args),
    )
    def interrupted() -> str:
        ckpt = latest_checkpoint(canonical_out(args.out))
        where = f"last checkpoint {ckpt}" if ckpt else "no checkpoint yet"
        return f"interrupted ({where}); rerun the same command to resume"

    res, code = cli.call_with_exit_code(lambda: run(cfg), interrupted)
    if code:
        return code
    if os.environ.get("RANK", "0") != "0":  # data parallel: one summary line
        return 0
    print(f"forward exact {res['forward']['final']:.3f} (best {res['forward']['best']:.3f}), "
          f"reverse exact {res['reverse']['final']:.3f} (best {res['reverse']['best']:.3f}) -> {args.out}/results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
