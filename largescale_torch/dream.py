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

import json
import re
from pathlib import Path

import torch

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
    eos = cfg.get("eos_token_id", DREAM_EOS_TOKEN_ID)
    return {
        "bos_token_id": cfg.get("bos_token_id", DREAM_BOS_TOKEN_ID),
        "eos_token_id": eos,
        "pad_token_id": cfg.get("pad_token_id", DREAM_PAD_TOKEN_ID),
        "mask_token_id": cfg.get("mask_token_id", DREAM_MASK_TOKEN_ID),
    }


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
    ids = dream_token_ids(cfg)
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
        bos_token_id=ids["bos_token_id"],
        eos_token_id=ids["eos_token_id"],
        pad_token_id=ids["pad_token_id"],
        mask_token_id=ids["mask_token_id"],
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


def _safetensor_files(path: Path) -> list[Path]:
    index = path / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [path / n for n in names]
    single = path / "model.safetensors"
    if single.is_file():
        return [single]
    raise FileNotFoundError(f"no model.safetensors(.index.json) in {path}")


def load_dream_state_dict(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    state = {}
    for file in _safetensor_files(path):
        for name, tensor in load_file(str(file)).items():
            state[map_dream_name(name)] = tensor
    return state


def load_dream(path: str | Path, dtype: torch.dtype = torch.float32):
    """A Dream checkpoint directory -> bidirectional `Qwen2ForCausalLM` (eval mode)."""
    from accelerate import init_empty_weights
    from transformers import Qwen2ForCausalLM

    path = Path(path)
    cfg = json.loads((path / "config.json").read_text())
    config = qwen2_config_from_dream(cfg)
    with init_empty_weights():  # parameters on the meta device, buffers (RoPE) real
        model = Qwen2ForCausalLM(config)
    state = load_dream_state_dict(path)
    expected = set(model.state_dict())
    if config.tie_word_embeddings:  # a tied head is stored once, as the embedding
        expected.discard("lm_head.weight")
        state.pop("lm_head.weight", None)
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ValueError(f"Dream checkpoint mismatch: missing {missing[:3]}, unexpected {extra[:3]}")
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=False, assign=True)
    if config.tie_word_embeddings:
        model.tie_weights()
    model.config.dtype = dtype
    return model.eval()


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
    from safetensors.torch import save_file

    if not is_dream_config(cfg):
        raise ValueError(f"refusing to write a Dream checkpoint with model_type {cfg.get('model_type')!r}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    named = {unmap_qwen2_name(k): v.contiguous() for k, v in state_qwen2.items()}
    keys = sorted(named)
    if shards == 1:
        save_file(named, str(path / "model.safetensors"), metadata={"format": "pt"})
    else:
        weight_map = {}
        for s in range(shards):
            part = keys[s::shards]
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            save_file({k: named[k] for k in part}, str(path / fname), metadata={"format": "pt"})
            weight_map.update({k: fname for k in part})
        total = sum(v.numel() * v.element_size() for v in named.values())
        (path / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
        )
    (path / "config.json").write_text(json.dumps(cfg, indent=2))
