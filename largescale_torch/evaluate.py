"""Evaluate a base model or a saved LoRA adapter on any dataset, without training.

    python largescale_torch/evaluate.py --model M --dataset D [--direction R] --out DIR
    python largescale_torch/evaluate.py --model M --adapter ADAPTER_DIR --dataset D --out DIR
    python largescale_torch/evaluate.py --run RUN_DIR [--adapter final|best_forward|best_reverse] --out DIR
    python largescale_torch/evaluate.py --model M --poems poem_data.json --out DIR

The protocol, metrics and files of a finetuning run's evaluation (largescale_torch/evaluate_run.py).
Exit codes: 0 done, 2 bad arguments (unknown dataset, a bad dataset file, a missing adapter;
nothing is written), 1 runtime failure, 130 interrupted (nothing is written).
"""
from __future__ import annotations

import argparse
import sys

from largescale_torch import cli
from largescale_torch.constants import EXIT_BAD_ARGS
from largescale_torch.evaluate_run import EvalRunConfig, evaluate, summary


def build_parser() -> argparse.ArgumentParser:
    p = cli.new_parser("python largescale_torch/evaluate.py",
                       "Exact-match evaluation forward and reverse of a base model or a LoRA adapter, no training "
                       "(Section 3 / Appendix D protocol).")
    cli.add_model_args(p, inherit=True)
    p.add_argument("--adapter", default=None,
                   help="a saved LoRA adapter directory (e.g. RUN/best_reverse); with --run: final | best_forward "
                        "| best_reverse | checkpoints/epoch_XXXX inside it (default final)")
    p.add_argument("--run", default=None,
                   help="a finetune.py run directory: model, dataset, direction, data and sampler settings "
                        "from its config.json (flags given here override them, except --model)")
    p.add_argument("--dataset", default=None,
                   help="parent_child | person_description | trex | FILE.jsonl (forward/reverse pairs) | "
                        "a datasets save_to_disk directory | poems:FILE (LLaDA's poem_data.json)")
    p.add_argument("--poems", default=None, metavar="FILE",
                   help="LLaDA's reversal-poem file: the same as --dataset poems:FILE")
    p.add_argument("--direction", default=None,
                   help="training direction whose forward/reverse queries are asked: p2c|c2p|p2d|d2p; "
                        "forward for trex and file datasets (the default where it is the only one)")
    p.add_argument("--out", required=True, help="evaluation directory (written complete, or not at all)")
    cli.add_data_args(p, inherit=True)
    cli.add_eval_args(p, inherit=True)
    p.add_argument("--no-chat-template", dest="chat_template", action="store_const", const=False, default=None,
                   help="raw prompts (default: the run's setting, else each Instruct model's chat template)")
    cli.add_sampler_args(p, inherit=True)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)  # exits 2 on bad flags
    from largescale_torch.data.poems import POEM_PREFIX  # lazy: the data package loads numpy

    if args.poems is not None and args.dataset is not None:
        print("error: give --dataset or --poems, not both", file=sys.stderr)
        return EXIT_BAD_ARGS
    dataset = POEM_PREFIX + args.poems if args.poems is not None else args.dataset
    cfg = EvalRunConfig(
        out=args.out, model=args.model, dataset=dataset, direction=args.direction, adapter=args.adapter,
        run=args.run, data_dir=args.data_dir, data_seed=args.data_seed, d2p_completions=args.d2p_completions,
        max_eval_examples=args.max_eval_examples, eval_batch_size=args.eval_batch_size,
        chat_template=args.chat_template, dtype=args.dtype, **cli.sampler_fields(args),
    )
    res, code = cli.call_with_exit_code(lambda: evaluate(cfg), lambda: f"interrupted; nothing written to {args.out}")
    if code:
        return code
    print(summary(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
