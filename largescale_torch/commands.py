"""The exact commands that reproduce every row of Table 1 and its base-model control (printed by
`finetune.py` without arguments)."""
from __future__ import annotations

from largescale_torch.constants import MODEL_IDS, SEEDS, TABLE1_ROWS

TABLE1_ROOT = "runs/table1"
MODEL_ORDER = ("llada", "llama", "qwen")


def run_dir(family: str, dataset: str, direction: str, seed: int, root: str = TABLE1_ROOT) -> str:
    return f"{root}/{family}/{dataset}-{direction}/seed{seed}"


def table1_commands(root: str = TABLE1_ROOT) -> list[tuple[str, list[str]]]:
    """[(row label, [command per model and seed])]; learning rates default to Appendix D's."""
    rows = []
    for dataset, direction, label in TABLE1_ROWS:
        cmds = [
            f"python largescale_torch/finetune.py --model {MODEL_IDS[fam]} --dataset {dataset} "
            f"--direction {direction} --seed {seed} --out {run_dir(fam, dataset, direction, seed, root)}"
            for fam in MODEL_ORDER
            for seed in SEEDS
        ]
        rows.append((label, cmds))
    return rows


def base_dir(family: str, dataset: str, direction: str, root: str = TABLE1_ROOT) -> str:
    return f"{root}/{family}/{dataset}-{direction}/base"


def base_commands(root: str = TABLE1_ROOT) -> list[str]:
    """One evaluate.py command per model and Table 1 row: the untrained model on the same queries."""
    return [
        f"python largescale_torch/evaluate.py --model {MODEL_IDS[fam]} --dataset {dataset} "
        f"--direction {direction} --out {base_dir(fam, dataset, direction, root)}"
        for dataset, direction, _ in TABLE1_ROWS
        for fam in MODEL_ORDER
    ]


def table1_commands_text(root: str = TABLE1_ROOT) -> str:
    lines = []
    for label, cmds in table1_commands(root):
        lines.append(f"# {label}")
        lines.extend(cmds)
    lines.append("# base models, no finetuning (the control Table 1 lacks; a 'base model' row per Table 1 row)")
    lines.extend(base_commands(root))
    lines.append(f"# collect: python scripts/table1.py {root}")
    return "\n".join(lines)
