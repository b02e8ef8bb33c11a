"""Constants of the large-scale experiment, kept in one place (Appendix D, Table 1).

Everything that the paper fixes (hyperparameters, model ids, learning rates, published
accuracies) and every special token id that the code falls back on lives here.
"""
from __future__ import annotations

from plumbing import cli as _cli

# --- Appendix D: finetuning protocol -------------------------------------------------------
LORA_RANK = 32
LORA_ALPHA = 64
# Not given in the paper; a common LoRA default.
LORA_DROPOUT = 0.05
# "applied to attention projection matrices": q, k, v and output projections.
LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
WEIGHT_DECAY = 0.1
BATCH_SIZE = 8
EPOCHS = 150
SEEDS = (1, 42, 1234)
CHECKPOINT_EVERY = 10
# Not given in the paper: gradient clipping norm and a constant learning rate.
GRAD_CLIP = 1.0

# --- Evaluation (Appendix D, LLaDA sampler) ------------------------------------------------
MAX_NEW_TOKENS = 32
GEN_LENGTH = 32
BLOCK_LENGTH = 32
SAMPLER_STEPS = 32
TEMPERATURE = 0.0
# LLaDA's remasking rule (generate.py): commit the most confident predictions first.
SAMPLER_REMASKING = "low_confidence"
# LLaDA SFT: a completion token is masked with probability (1 - eps) t + eps.
MASK_EPS = 1e-3

# --- Models --------------------------------------------------------------------------------
MODEL_IDS = {
    "llada": "GSAI-ML/LLaDA-8B-Instruct",
    "llama": "meta-llama/Meta-Llama-3.1-8B-Instruct",
    "qwen": "Qwen/Qwen2.5-7B-Instruct",
    "dream": "Dream-org/Dream-v0-Instruct-7B",
}
TINY_PRESETS = {"tiny-llada": "llada", "tiny-llama": "llama", "tiny-qwen": "qwen", "tiny-dream": "dream"}
MDM_FAMILIES = ("llada", "dream")
# MDMs whose logits at position i predict the token at i + 1 (Dream kept its ARM initialisation's
# alignment; its sampler reads position i's prediction at i - 1).
SHIFTED_LOGITS_FAMILIES = ("dream",)

# Learning rates per model family and dataset (Appendix D). T-REx differs; the others share one.
LEARNING_RATES = {
    "llada": {"default": 5e-5, "trex": 2e-4},
    "llama": {"default": 5e-5, "trex": 9e-5},
    "qwen": {"default": 1e-4, "trex": 5e-5},
    # Dream is not in the paper, which gives it no learning rate: LLaDA's values (the other MDM).
    "dream": {"default": 5e-5, "trex": 2e-4},
}

# LLaDA-8B-Instruct special tokens; used only when the checkpoint's config does not name them.
LLADA_MASK_TOKEN_ID = 126336
LLADA_BOS_TOKEN_ID = 126080
LLADA_EOS_TOKEN_ID = 126081
LLADA_EOT_TOKEN_ID = 126348
# Dream-v0-Instruct-7B special tokens (Qwen2.5 vocabulary plus <|beginoftext|> and <|mask|>); used only
# when the checkpoint's config does not name them. EOS = pad = <|endoftext|>; turns end with <|im_end|>.
DREAM_MASK_TOKEN_ID = 151666  # <|mask|>
DREAM_BOS_TOKEN_ID = 151665  # <|beginoftext|>
DREAM_EOS_TOKEN_ID = 151643  # <|endoftext|>
DREAM_PAD_TOKEN_ID = 151643
# End-of-turn / end-of-text token strings that also stop generation when present in a vocabulary.
STOP_TOKEN_STRINGS = ("<|eot_id|>", "<|endoftext|>", "<|end_of_text|>", "<|im_end|>")

# --- Datasets ------------------------------------------------------------------------------
DATASET_DIRECTIONS = {
    "parent_child": ("p2c", "c2p"),
    "person_description": ("p2d", "d2p"),
    "trex": ("forward",),
}
UPSTREAM_REPO = "lukasberglund/reversal_curse"
UPSTREAM_COMMIT = "6af5f418755d528304e406361e86477637d21c84"
DATA_ENV_VAR = "REVERSAL_CURSE_DATA"
CACHE_ENV_VAR = "REVERSAL_MDM_CACHE"

# --- Table 1 (percent; forward, reverse) -----------------------------------------------------
TABLE1_ROWS = (
    ("parent_child", "p2c", "Parent -> Child (P2C)"),
    ("parent_child", "c2p", "Child -> Parent (C2P)"),
    ("person_description", "p2d", "Person -> Description (P2D)"),
    ("person_description", "d2p", "Description -> Person (D2P)"),
    ("trex", "forward", "T-REx"),
)
PAPER_TABLE1 = {
    ("parent_child", "p2c"): {"llada": (76.7, 48.3), "llama": (89.9, 15.9), "qwen": (89.9, 0.5)},
    ("parent_child", "c2p"): {"llada": (87.7, 43.7), "llama": (95.9, 6.9), "qwen": (89.0, 1.4)},
    ("person_description", "p2d"): {"llada": (72.7, 99.5), "llama": (72.7, 3.5), "qwen": (70.7, 2.2)},
    ("person_description", "d2p"): {"llada": (99.7, 41.3), "llama": (83.0, 1.8), "qwen": (80.0, 1.5)},
    ("trex", "forward"): {"llada": (92.3, 81.5), "llama": (87.3, 2.8), "qwen": (89.8, 2.3)},
}

# --- LLaDA's reversal-poem test (Nie et al. 2025, Table 4; percent; forward, reverse) ---------
LLADA_TABLE4 = {
    "GPT-4o": (82.7, 34.3),
    "Qwen2.5-7B-Instruct": (75.9, 38.0),
    "LLaDA-8B-Instruct": (51.8, 45.6),
}
# LLaDA's eval_reverse.py: 28 generated positions in one block, one token per step, greedy.
POEM_GEN_LENGTH = 28
POEM_BLOCK_LENGTH = 28
POEM_SAMPLER_STEPS = 28

# --- Command-line exit codes (every CLI of the project: plumbing.cli) -------------------------
EXIT_BAD_ARGS = _cli.EXIT_USAGE  # 2: bad arguments or config (argparse's own code)
EXIT_FAILURE = _cli.EXIT_FAILURE  # 1: runtime failure
EXIT_INTERRUPTED = _cli.EXIT_INTERRUPTED  # 130: Ctrl-C


class ConfigError(_cli.UsageError):
    """A bad argument or configuration (exit code 2), as opposed to a runtime failure (1)."""
