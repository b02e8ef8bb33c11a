"""Dream-v0 checkpoints in transformers' Qwen2, without `trust_remote_code`.

Dream (Ye et al. 2025, `Dream-org/Dream-v0-Instruct-7B`) is Qwen2.5-7B turned into a masked
diffusion model: the same network (RMSNorm, SwiGLU, RoPE, biases on q/k/v only, untied head)
with full bidirectional attention (`DreamAttention.is_causal = False` in its modeling_dream.py).
Its `DreamModel` keeps Qwen2's module tree (`model.embed_tokens`, `model.layers.N.self_attn.q_proj`,
..., `model.norm`, `lm_head`), so the tensor names map onto `Qwen2ForCausalLM` one to one; the
config keeps Qwen2's field names under `model_type: "Dream"` plus `mask_token_id`. This module
maps the config onto a `Qwen2Config` with `is_causal = False` and loads the tensors.

Dream was initialised from an autoregressive model and kept its output alignment: the logits at
position i predict the token at position i + 1, so its sampler reads the prediction for a masked
position i at i - 1 (`losses.align_logits`, `ModelSpec.logits_shift`).
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from largescale_torch.checkpoints import load_renamed_model, save_renamed_checkpoint, special_token_ids
from largescale_torch.constants import (
    DREAM_BOS_TOKEN_ID,
    DREAM_EOS_TOKEN_ID,
    DREAM_MASK_TOKEN_ID,
    DREAM_PAD_TOKEN_ID,
)

# Dream's `model_type` is "Dream"; accept the lower-case spelling some conversions write.
DREAM_MODEL_TYPES = ("Dream", "dream")
# Every tensor of a Dream checkpoint, as `DreamModel.state_dict()` names it (= Qwen2ForCausalLM's).
_TENSOR_RE = re.compile(
    r"^(model\.embed_tokens\.weight|model\.norm\.weight|lm_head\.weight"
    r"|model\.layers\.\d+\.(input_layernorm|post_attention_layernorm)\.weight"
    r"|model\.layers\.\d+\.self_attn\.[qkv]_proj\.(weight|bias)"
    r"|model\.layers\.\d+\.self_attn\.o_proj\.weight"
    r"|model\.layers\.\d+\.mlp\.(gate|up|down)_proj\.weight)$"
)


def is_dream_config(cfg: dict) -> bool:
    return cfg.get("model_type") in DREAM_MODEL_TYPES


def dream_token_ids(cfg: dict) -> dict[str, int]:
    """bos/eos/pad/mask ids from Dream's config.json, falling back on Dream-v0-Instruct-7B's values."""
    return special_token_ids(
        cfg, bos=DREAM_BOS_TOKEN_ID, eos=DREAM_EOS_TOKEN_ID, mask=DREAM_MASK_TOKEN_ID, pad=DREAM_PAD_TOKEN_ID
    )


def qwen2_config_from_dream(cfg: dict):
    """Translate Dream's config.json into a bidirectional `Qwen2Config`.

    The field names are Qwen2's already; what changes is `is_causal = False` (Dream attends to
    every position) and the mask token id. Dream's `attention_bias` / `mlp_bias` fields are not
    read by its modeling code (q/k/v always carry a bias, nothing else does), exactly as Qwen2.
    """
    from transformers import Qwen2Config

    if not is_dream_config(cfg):
        raise ValueError(f"config.json has model_type {cfg.get('model_type')!r}, not Dream")
    if cfg.get("use_sliding_window"):
        raise ValueError("unsupported Dream config: use_sliding_window is true")
    if cfg.get("rope_scaling"):
        raise ValueError(f"unsupported Dream config: rope_scaling {cfg['rope_scaling']!r}")
    if cfg.get("hidden_act", "silu") != "silu":
        raise ValueError(f"unsupported Dream config: hidden_act {cfg['hidden_act']!r}")
    for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "vocab_size"):
        if key not in cfg:
            raise ValueError(f"Dream config.json lacks {key!r}")
    hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
    return Qwen2Config(
        vocab_size=int(cfg["vocab_size"]),
        hidden_size=hidden,
        intermediate_size=int(cfg["intermediate_size"]),
        num_hidden_layers=int(cfg["num_hidden_layers"]),
        num_attention_heads=heads,
        num_key_value_heads=int(cfg.get("num_key_value_heads") or heads),
        head_dim=hidden // heads,  # DreamAttention: hidden_size // num_heads
        hidden_act="silu",
        max_position_embeddings=int(cfg.get("max_position_embeddings", 32768)),
        rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
        rope_theta=float(cfg.get("rope_theta", 10000.0)),
        attention_dropout=float(cfg.get("attention_dropout", 0.0)),
        use_sliding_window=False,
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        is_causal=False,
        use_cache=False,
        **dream_token_ids(cfg),
    )


def map_dream_name(name: str) -> str:
    """Dream state-dict name -> `Qwen2ForCausalLM` state-dict name (the same string, checked)."""
    if not _TENSOR_RE.match(name):
        raise ValueError(f"unexpected tensor {name!r} in Dream checkpoint")
    return name


def unmap_qwen2_name(name: str) -> str:
    """Inverse of `map_dream_name` (used to write Dream-format checkpoints)."""
    if not _TENSOR_RE.match(name):
        raise ValueError(f"no Dream name for {name!r}")
    return name


def load_dream(path: str | Path, dtype: torch.dtype = torch.float32):
    """A Dream checkpoint directory -> bidirectional `Qwen2ForCausalLM` (eval mode)."""
    from transformers import Qwen2ForCausalLM

    return load_renamed_model(path, qwen2_config_from_dream, Qwen2ForCausalLM, map_dream_name, "Dream", dtype)


def load_dream_tokenizer(path: str | Path):
    """Dream's tokenizer without its remote `DreamTokenizer` class.

    `DreamTokenizer` is Qwen2's byte-level BPE with Dream's special tokens listed in
    tokenizer_config.json; a directory with a `tokenizer.json` (the tiny preset) loads as is,
    one with only vocab.json + merges.txt (the hub checkpoint) through `Qwen2Tokenizer`.
    """
    from transformers import PreTrainedTokenizerFast

    path = Path(path)
    if (path / "tokenizer.json").is_file():
        return PreTrainedTokenizerFast.from_pretrained(str(path))
    from transformers import Qwen2Tokenizer

    return Qwen2Tokenizer.from_pretrained(str(path))


def save_dream_checkpoint(state_qwen2: dict[str, torch.Tensor], cfg: dict, path: str | Path, shards: int = 1) -> None:
    """Write Qwen2-named tensors under Dream names (config.json + safetensors, optionally sharded)."""
    if not is_dream_config(cfg):
        raise ValueError(f"refusing to write a Dream checkpoint with model_type {cfg.get('model_type')!r}")
    save_renamed_checkpoint(state_qwen2, unmap_qwen2_name, cfg, path, shards)
