"""LLaDA-8B checkpoints in transformers' Llama, without `trust_remote_code`.

LLaDA (Nie et al. 2025) is a LLaMA-style network (RMSNorm, SwiGLU, RoPE, no biases, untied
head) with bidirectional attention. Its checkpoint uses OLMo-style module and config names;
this module maps both onto `LlamaForCausalLM` with `config.is_causal = False`.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from largescale_torch.checkpoints import load_renamed_model, save_renamed_checkpoint, special_token_ids
from largescale_torch.constants import LLADA_BOS_TOKEN_ID, LLADA_EOS_TOKEN_ID, LLADA_MASK_TOKEN_ID

PREFIX = "model.transformer."
TOP_LEVEL_NAMES = {
    "wte.weight": "model.embed_tokens.weight",
    "ln_f.weight": "model.norm.weight",
    "ff_out.weight": "lm_head.weight",
}
# In LLaDA's Llama block the MLP is ff_out(act(ff_proj(x)) * up_proj(x)): ff_proj is the gate.
BLOCK_NAMES = {
    "attn_norm": "input_layernorm",
    "ff_norm": "post_attention_layernorm",
    "q_proj": "self_attn.q_proj",
    "k_proj": "self_attn.k_proj",
    "v_proj": "self_attn.v_proj",
    "attn_out": "self_attn.o_proj",
    "ff_proj": "mlp.gate_proj",
    "up_proj": "mlp.up_proj",
    "ff_out": "mlp.down_proj",
}
_BLOCK_RE = re.compile(r"^model\.transformer\.blocks\.(\d+)\.([a-z_]+)\.weight$")

# Config fields that must hold these values for the Llama mapping to be exact.
REQUIRED_CONFIG = {
    "block_type": "llama",
    "activation_type": "silu",
    "layer_norm_type": "rms",
    "alibi": False,
    "rope": True,
    "weight_tying": False,
    "include_bias": False,
    "attention_layer_norm": False,
    "scale_logits": False,
    "input_emb_norm": False,
}


def is_llada_config(cfg: dict) -> bool:
    return cfg.get("model_type") == "llada"


def llada_token_ids(cfg: dict) -> dict[str, int]:
    """bos/eos/pad/mask ids from LLaDA's config.json, falling back on LLaDA-8B's values."""
    return special_token_ids(cfg, bos=LLADA_BOS_TOKEN_ID, eos=LLADA_EOS_TOKEN_ID, mask=LLADA_MASK_TOKEN_ID)


def llama_config_from_llada(cfg: dict):
    """Translate LLaDA's OLMo-style config.json into a bidirectional `LlamaConfig`."""
    from transformers import LlamaConfig

    bad = {k: cfg[k] for k, v in REQUIRED_CONFIG.items() if k in cfg and cfg[k] != v}
    if cfg.get("include_qkv_bias"):
        bad["include_qkv_bias"] = cfg["include_qkv_bias"]
    if bad:
        raise ValueError(f"unsupported LLaDA config values {bad}")
    for key in ("d_model", "n_heads", "n_layers"):
        if key not in cfg:
            raise ValueError(f"LLaDA config.json lacks {key!r}")
    d_model, n_heads = int(cfg["d_model"]), int(cfg["n_heads"])
    hidden = cfg.get("mlp_hidden_size") or int(cfg.get("mlp_ratio", 4)) * d_model
    return LlamaConfig(
        vocab_size=int(cfg.get("embedding_size") or cfg["vocab_size"]),
        hidden_size=d_model,
        intermediate_size=int(hidden),
        num_hidden_layers=int(cfg["n_layers"]),
        num_attention_heads=n_heads,
        num_key_value_heads=int(cfg.get("n_kv_heads") or n_heads),
        head_dim=d_model // n_heads,
        hidden_act="silu",
        max_position_embeddings=int(cfg.get("max_sequence_length", 4096)),
        rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-5)),
        rope_theta=float(cfg.get("rope_theta", 10000.0)),
        attention_bias=False,
        mlp_bias=False,
        tie_word_embeddings=False,
        is_causal=False,
        use_cache=False,
        **llada_token_ids(cfg),
    )


def map_llada_name(name: str) -> str:
    """LLaDA state-dict name -> `LlamaForCausalLM` state-dict name."""
    if name.startswith(PREFIX) and name[len(PREFIX):] in TOP_LEVEL_NAMES:
        return TOP_LEVEL_NAMES[name[len(PREFIX):]]
    m = _BLOCK_RE.match(name)
    if m and m.group(2) in BLOCK_NAMES:
        return f"model.layers.{m.group(1)}.{BLOCK_NAMES[m.group(2)]}.weight"
    raise ValueError(f"unexpected tensor {name!r} in LLaDA checkpoint")


def unmap_llama_name(name: str) -> str:
    """Inverse of `map_llada_name` (used to write LLaDA-format checkpoints)."""
    for short, llama in TOP_LEVEL_NAMES.items():
        if name == llama:
            return PREFIX + short
    m = re.match(r"^model\.layers\.(\d+)\.(.+)\.weight$", name)
    if m:
        for short, llama in BLOCK_NAMES.items():
            if m.group(2) == llama:
                return f"{PREFIX}blocks.{m.group(1)}.{short}.weight"
    raise ValueError(f"no LLaDA name for {name!r}")


def load_llada(path: str | Path, dtype: torch.dtype = torch.float32):
    """A LLaDA checkpoint directory -> bidirectional `LlamaForCausalLM` (eval mode)."""
    from transformers import LlamaForCausalLM

    return load_renamed_model(path, llama_config_from_llada, LlamaForCausalLM, map_llada_name, "LLaDA", dtype)


def save_llada_checkpoint(state_llama: dict[str, torch.Tensor], cfg: dict, path: str | Path, shards: int = 1) -> None:
    """Write Llama-named tensors under LLaDA names (config.json + safetensors, optionally sharded)."""
    save_renamed_checkpoint(state_llama, unmap_llama_name, cfg, path, shards)
