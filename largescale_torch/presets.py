"""Offline presets `tiny-llama`, `tiny-qwen`, `tiny-llada`, `tiny-dream`.

Toy-size networks of the three architectures with random weights (fixed seed), and a
byte-level BPE tokenizer trained with `tokenizers` on the text of all five tasks, saved as
`tokenizer.json` + `tokenizer_config.json` like the real checkpoints, with the special tokens,
BOS/EOS/pad/mask roles and chat-template layout of the real Instruct tokenizers (see
`SPECIAL_TOKENS` and `CHAT_TEMPLATES`). `tiny-llada` is saved
in LLaDA's own checkpoint format (OLMo-style config.json, `model.transformer.*` tensor
names, two safetensors shards) so that the LLaDA loader path runs too; `tiny-dream` in Dream's
(config.json with `model_type: "Dream"` and Dream's field names, Qwen2 tensor names with q/k/v
biases) so that the Dream loader path runs.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from largescale_torch.constants import DATASET_DIRECTIONS, TINY_PRESETS
from largescale_torch.data import build_task
from largescale_torch.dream import qwen2_config_from_dream, save_dream_checkpoint
from largescale_torch.llada import llama_config_from_llada, save_llada_checkpoint
from largescale_torch.paths import cache_dir

PRESET_VERSION = "v3"
PRESET_SEED = 0
VOCAB_SIZE = 1024
TINY_DIMS = dict(hidden=32, layers=2, heads=4, kv_heads=2, ffn=64, max_positions=512)

# family: (special tokens in id order, bos, eos, pad, BOS added by the tokenizer itself). As in the
# real Instruct tokenizers: Meta-Llama-3.1-8B-Instruct adds <|begin_of_text|> and ends turns and
# sequences with <|eot_id|>; Qwen2.5-7B-Instruct has no BOS, EOS <|im_end|>, pad <|endoftext|>;
# LLaDA-8B-Instruct does not add its BOS (add_bos_token false: only the chat template writes it),
# EOS = pad = <|endoftext|>, turns end with <|eot_id|>, mask <|mdm_mask|>.
SPECIAL_TOKENS = {
    "llama": (["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
              "<|begin_of_text|>", "<|eot_id|>", None, True),
    "qwen": (["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None, "<|im_end|>", "<|endoftext|>", False),
    "llada": (["<|startoftext|>", "<|endoftext|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
               "<|mdm_mask|>"], "<|startoftext|>", "<|endoftext|>", "<|endoftext|>", False),
    # Dream-v0-Instruct-7B: Qwen's specials plus <|beginoftext|> (BOS, never added by the tokenizer)
    # and <|mask|>; EOS = pad = <|endoftext|>, turns end with <|im_end|>.
    "dream": (["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|beginoftext|>", "<|mask|>"],
              "<|beginoftext|>", "<|endoftext|>", "<|endoftext|>", False),
}
MASK_TOKENS = {"llada": "<|mdm_mask|>", "dream": "<|mask|>"}

# Chat templates that render what the real Instruct templates render for user/assistant turns
# without tools (LLaMA-3.1: the default system block with its knowledge-cutoff and date lines;
# Qwen2.5: the default system message; LLaDA: BOS, then header/content/<|eot_id|> per turn and
# always the assistant header). tests/test_largescale_protocol.py pins the rendered strings.
CHAT_TEMPLATES = {
    "llama": (
        "{{- bos_token }}"
        "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
        "{{- 'Cutting Knowledge Date: December 2023\\nToday Date: 26 Jul 2024\\n\\n' }}"
        "{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] | trim }}"
        "{%- set messages = messages[1:] %}{%- endif %}"
        "{{- '<|eot_id|>' }}"
        "{%- for message in messages %}"
        "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
        " + '<|eot_id|>' }}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
    ),
    "qwen": (
        "{%- if messages[0]['role'] != 'system' %}"
        "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. "
        "You are a helpful assistant.<|im_end|>\\n' }}"
        "{%- endif %}"
        "{%- for message in messages %}"
        "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
    ),
    "llada": (
        "{%- for message in messages %}"
        "{%- if loop.first %}{{- bos_token }}{%- endif %}"
        "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
        " + '<|eot_id|>' }}"
        "{%- endfor %}"
        "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    ),
    # Dream-v0-Instruct-7B: Qwen2's layout with the default system turn "You are a helpful assistant."
    "dream": (
        "{%- for message in messages %}"
        "{%- if loop.first and messages[0]['role'] != 'system' %}"
        "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
        "{%- endif %}"
        "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
    ),
}


def preset_dir(name: str) -> Path:
    return cache_dir() / "presets" / PRESET_VERSION / name


def corpus(data_dir: str | None = None) -> list[str]:
    """Every prompt and answer of the five tasks (training text for the tiny tokenizers)."""
    texts = []
    for dataset, directions in DATASET_DIRECTIONS.items():
        for direction in directions:
            task = build_task(dataset, direction, data_dir=data_dir)
            for ex in (*task.train, *task.forward, *task.reverse):
                texts.append(f"{ex.prompt} {' '.join(ex.accepted)}")
    return texts


def train_tokenizer(family: str, texts: list[str], vocab_size: int = VOCAB_SIZE):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials, bos, eos, pad, add_bos = SPECIAL_TOKENS[family]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    kwargs = {"eos_token": eos}
    if bos:
        kwargs["bos_token"] = bos
    if pad:
        kwargs["pad_token"] = pad
    if family in MASK_TOKENS:
        kwargs["mask_token"] = MASK_TOKENS[family]
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=TINY_DIMS["max_positions"], **kwargs)
    fast.chat_template = CHAT_TEMPLATES[family]
    return fast


def _llama_like_config(family: str, tokenizer):
    d = TINY_DIMS
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=d["hidden"],
        intermediate_size=d["ffn"],
        num_hidden_layers=d["layers"],
        num_attention_heads=d["heads"],
        num_key_value_heads=d["kv_heads"],
        max_position_embeddings=d["max_positions"],
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    if family == "llama":
        from transformers import LlamaConfig

        return LlamaConfig(rope_theta=500000.0, rms_norm_eps=1e-5, **common)
    from transformers import Qwen2Config

    return Qwen2Config(rope_theta=1000000.0, rms_norm_eps=1e-6, **common)


def llada_config_dict(tokenizer) -> dict:
    """A LLaDA-style (OLMo-named) config.json at toy size."""
    d = TINY_DIMS
    return {
        "architectures": ["LLaDAModelLM"],
        "model_type": "llada",
        "activation_type": "silu",
        "alibi": False,
        "block_type": "llama",
        "d_model": d["hidden"],
        "n_heads": d["heads"],
        "n_kv_heads": d["heads"],
        "n_layers": d["layers"],
        "mlp_hidden_size": d["ffn"],
        "mlp_ratio": 4,
        "layer_norm_type": "rms",
        "rms_norm_eps": 1e-5,
        "rope": True,
        "rope_theta": 500000.0,
        "max_sequence_length": d["max_positions"],
        "vocab_size": len(tokenizer),
        "embedding_size": len(tokenizer),
        "weight_tying": False,
        "include_bias": False,
        "include_qkv_bias": False,
        "attention_layer_norm": False,
        "input_emb_norm": False,
        "scale_logits": False,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "mask_token_id": tokenizer.mask_token_id,
        "use_cache": False,
    }


def dream_config_dict(tokenizer) -> dict:
    """A Dream-style config.json (Qwen2 field names, `model_type: "Dream"`) at toy size."""
    d = TINY_DIMS
    return {
        "architectures": ["DreamModel"],
        "model_type": "Dream",
        "hidden_act": "silu",
        "hidden_size": d["hidden"],
        "intermediate_size": d["ffn"],
        "num_hidden_layers": d["layers"],
        "num_attention_heads": d["heads"],
        "num_key_value_heads": d["kv_heads"],
        "max_position_embeddings": d["max_positions"],
        "max_window_layers": d["layers"],
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "rope_scaling": None,
        "sliding_window": None,
        "use_sliding_window": False,
        "attention_dropout": 0.0,
        "tie_word_embeddings": False,
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "mask_token_id": tokenizer.mask_token_id,
        "use_cache": False,
    }


def build_preset(name: str, dest: Path, data_dir: str | None = None) -> None:
    family = TINY_PRESETS[name]
    tokenizer = train_tokenizer(family, corpus(data_dir))
    dest.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(PRESET_SEED)
    if family == "llada":
        from transformers import LlamaForCausalLM

        cfg = llada_config_dict(tokenizer)
        model = LlamaForCausalLM(llama_config_from_llada(cfg))
        save_llada_checkpoint(model.state_dict(), cfg, dest, shards=2)
    elif family == "dream":
        from transformers import Qwen2ForCausalLM

        cfg = dream_config_dict(tokenizer)
        model = Qwen2ForCausalLM(qwen2_config_from_dream(cfg))
        with torch.no_grad():  # Qwen2 initialises biases to zero; random ones exercise their loading
            for n, p in model.named_parameters():
                if n.endswith(".bias"):
                    p.normal_(0.0, 0.02)
        save_dream_checkpoint(model.state_dict(), cfg, dest)
    else:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_config(_llama_like_config(family, tokenizer))
        model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    (dest / "preset.json").write_text(json.dumps({"preset": name, "family": family, "seed": PRESET_SEED}))


def ensure_preset(name: str, data_dir: str | None = None) -> Path:
    """Build the preset once into the cache (atomically: build elsewhere, then rename)."""
    if name not in TINY_PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(TINY_PRESETS)}")
    dest = preset_dir(name)
    if (dest / "preset.json").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=dest.parent))
    try:
        build_preset(name, tmp, data_dir)
        try:
            os.rename(tmp, dest)
        except OSError:  # another process finished first
            if not (dest / "preset.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
