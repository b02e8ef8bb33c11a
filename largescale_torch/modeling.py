"""Resolving `--model` to a checkpoint, loading it (ARM or MDM) and wrapping it with LoRA."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from largescale_torch.constants import (
    LORA_ALPHA,
    LORA_DROPOUT,
    LORA_RANK,
    LORA_TARGET_MODULES,
    MDM_FAMILIES,
    MODEL_IDS,
    SHIFTED_LOGITS_FAMILIES,
    STOP_TOKEN_STRINGS,
    TINY_PRESETS,
    ConfigError,
)
from largescale_torch.dream import is_dream_config, load_dream, load_dream_tokenizer
from largescale_torch.llada import is_llada_config, load_llada
from largescale_torch.presets import ensure_preset

FAMILY_OF_MODEL_TYPE = {"llada": "llada", "llama": "llama", "qwen2": "qwen", "Dream": "dream", "dream": "dream"}


@dataclass(frozen=True)
class ModelSpec:
    """What `--model` resolved to: a local directory (or hub id) and its family."""

    name: str
    path: str
    family: str  # llada | dream | llama | qwen | other

    @property
    def is_mdm(self) -> bool:
        return self.family in MDM_FAMILIES

    @property
    def logits_shift(self) -> bool:
        """True when the logits at position i predict token i + 1 (Dream), so i's prediction is read at i - 1."""
        return self.family in SHIFTED_LOGITS_FAMILIES


@dataclass(frozen=True)
class TokenIds:
    pad: int
    eos: int
    bos: int | None
    mask: int | None
    stop: tuple[int, ...]


def _read_config(path: str) -> dict:
    local = Path(path).expanduser()
    if local.is_dir():
        cfg = local / "config.json"
        if not cfg.is_file():
            raise ConfigError(f"model directory {local} has no config.json")
        try:
            return json.loads(cfg.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"malformed {cfg}: {err.msg}") from None
    if local.exists() or path.startswith((".", "/", "~")) or path.count("/") != 1:
        raise ConfigError(f"model {path!r} is neither a local directory nor a hub id (owner/name)")
    from huggingface_hub import hf_hub_download  # user path: needs the hub

    return json.loads(Path(hf_hub_download(path, "config.json")).read_text())


def resolve_model(name: str, data_dir: str | None = None) -> ModelSpec:
    """Tiny preset name, short alias (llada/dream/llama/qwen), local directory or hub id."""
    if name in TINY_PRESETS:
        return ModelSpec(name, str(ensure_preset(name, data_dir)), TINY_PRESETS[name])
    path = MODEL_IDS.get(name, name)
    try:
        cfg = _read_config(path)
    except ConfigError as err:
        raise ConfigError(f"cannot load model {name!r}: {err}") from None
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot load model {name!r}: {err}") from None
    except Exception as err:  # hub errors come in many classes
        raise ValueError(f"cannot load model {name!r}: {type(err).__name__}: {str(err).splitlines()[0]}") from None
    return ModelSpec(name, path, FAMILY_OF_MODEL_TYPE.get(cfg.get("model_type", ""), "other"))


def _local_snapshot(path: str) -> Path:
    if Path(path).expanduser().is_dir():
        return Path(path).expanduser()
    from huggingface_hub import snapshot_download  # user path: needs the hub

    return Path(snapshot_download(path, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"]))


def model_source(spec: ModelSpec) -> dict:
    """Where the weights come from: the hub id and its snapshot commit, or the local directory.

    A hub id is resolved through the local hub cache (`.../snapshots/<commit>`), so the recorded
    revision is the one that is loaded.
    """
    local = Path(spec.path).expanduser()
    if local.is_dir():
        resolved = local.resolve()
        revision = resolved.name if resolved.parent.name == "snapshots" else None
        return {"name": spec.name, "local_path": str(resolved), "hub_revision": revision}
    snap = _local_snapshot(spec.path).resolve()
    return {"name": spec.name, "hub_id": spec.path, "hub_revision": snap.name, "local_path": str(snap)}


def pick_dtype(requested: str = "auto") -> torch.dtype:
    """bf16 where the device supports it (Appendix D), else fp32."""
    if requested == "fp32":
        return torch.float32
    if requested == "bf16":
        return torch.bfloat16
    if requested != "auto":
        raise ValueError(f"unknown dtype {requested!r}; choose auto, bf16 or fp32")
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def token_ids(tokenizer, model_config) -> TokenIds:
    """Special ids in one place: tokenizer first, then the model config; pad falls back on EOS."""
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else model_config.eos_token_id
    if isinstance(eos, (list, tuple)):
        eos = eos[0]
    if eos is None:
        raise ValueError("tokenizer and config name no EOS token")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    stop = {eos}
    cfg_eos = model_config.eos_token_id
    stop.update(cfg_eos if isinstance(cfg_eos, (list, tuple)) else [cfg_eos] if cfg_eos is not None else [])
    vocab = tokenizer.get_vocab()
    stop.update(vocab[s] for s in STOP_TOKEN_STRINGS if s in vocab)
    mask = getattr(model_config, "mask_token_id", None)
    return TokenIds(pad=int(pad), eos=int(eos), bos=tokenizer.bos_token_id, mask=mask, stop=tuple(sorted(stop)))


def rope_theta_of(config) -> float:
    """RoPE base; transformers 5 keeps it in `config.rope_parameters`."""
    params = getattr(config, "rope_parameters", None) or {}
    theta = params.get("rope_theta", getattr(config, "rope_theta", None))
    if theta is None:
        raise ValueError("model config names no RoPE theta")
    return float(theta)


def check_bidirectional(model, vocab_size: int) -> bool:
    """True when the output at position 0 depends on the last token (full attention)."""
    device = next(model.parameters()).device
    x = torch.arange(1, 7, device=device)[None] % vocab_size
    y = x.clone()
    y[0, -1] = (y[0, -1] + 1) % vocab_size
    with torch.no_grad():
        a = model(input_ids=x).logits[0, 0].float()
        b = model(input_ids=y).logits[0, 0].float()
    return not torch.equal(a, b)


def load_base(spec: ModelSpec, dtype: torch.dtype):
    """(model, tokenizer, TokenIds). MDMs: LLaDA mapped onto bidirectional Llama, Dream onto bidirectional Qwen2."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

    try:
        if spec.family == "dream":
            local = _local_snapshot(spec.path)
            if not is_dream_config(json.loads((local / "config.json").read_text())):
                raise ValueError("config.json is not a Dream config")
            model = load_dream(local, dtype=dtype)
            tokenizer = load_dream_tokenizer(local)
        elif spec.is_mdm:
            local = _local_snapshot(spec.path)
            if not is_llada_config(json.loads((local / "config.json").read_text())):
                raise ValueError("config.json is not a LLaDA config")
            model = load_llada(local, dtype=dtype)
            tokenizer = PreTrainedTokenizerFast.from_pretrained(str(local))
        else:
            model = AutoModelForCausalLM.from_pretrained(spec.path, dtype=dtype)
            tokenizer = AutoTokenizer.from_pretrained(spec.path)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"cannot load model {spec.name!r}: {msg}") from None
    ids = token_ids(tokenizer, model.config)
    model.name_or_path = spec.path  # adapter_config.json then names its base (hub id or directory)
    model.config._name_or_path = spec.path
    if spec.is_mdm:
        if ids.mask is None:
            raise ValueError(f"model {spec.name!r} has no mask token id")
        if not check_bidirectional(model, model.config.vocab_size):
            raise RuntimeError("MDM attention is causal: this transformers version ignores config.is_causal")
    return model.eval(), tokenizer, ids


def add_lora(model, r: int = LORA_RANK, alpha: int = LORA_ALPHA, dropout: float = LORA_DROPOUT,
             targets: tuple[str, ...] = LORA_TARGET_MODULES):
    """LoRA on the attention projections (Appendix D: r = 32, alpha = 64)."""
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets),
                     bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, cfg)


def load_adapter(model, adapter_dir: str | Path, trainable: bool = False):
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable)
