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
    add_lora_flags(p)
    add_sampler_flags(p)
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


def add_sampler_flags(p: argparse.ArgumentParser, inherit: bool = False) -> None:
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
        lora_r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
        lora_targets=_module_list(args.lora_targets), **sampler_fields(args),
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
