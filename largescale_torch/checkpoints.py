"""Safetensors checkpoint directories in transformers' layout, read and written under other names.

A directory holds `config.json` and either one `model.safetensors` or shards listed by
`model.safetensors.index.json`. The LLaDA and Dream converters (llada.py, dream.py) differ only in
how they rename tensors and translate the config, which they pass in.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"


def special_token_ids(cfg: dict, bos: int, eos: int, mask: int, pad: int | None = None) -> dict[str, int]:
    """bos/eos/pad/mask ids from a config.json, falling back on the given ids (pad: else the config's eos)."""
    eos = cfg.get("eos_token_id", eos)
    return {
        "bos_token_id": cfg.get("bos_token_id", bos),
        "eos_token_id": eos,
        "pad_token_id": cfg.get("pad_token_id", eos if pad is None else pad),
        "mask_token_id": cfg.get("mask_token_id", mask),
    }


def safetensor_files(path: Path) -> list[Path]:
    """The safetensors files of a checkpoint directory: its shards (sorted) or its single file."""
    index = path / INDEX_FILE
    if index.is_file():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [path / n for n in names]
    single = path / SINGLE_FILE
    if single.is_file():
        return [single]
    raise FileNotFoundError(f"no model.safetensors(.index.json) in {path}")


def load_renamed_state_dict(path: Path, rename: Callable[[str], str]) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint directory, keyed by `rename(stored name)` (which raises on a stranger)."""
    from safetensors.torch import load_file

    state = {}
    for file in safetensor_files(path):
        for name, tensor in load_file(str(file)).items():
            state[rename(name)] = tensor
    return state



def load_renamed_model(
    path: str | Path,
    config_from: Callable[[dict], object],
    model_class: type,
    rename: Callable[[str], str],
    label: str,
    dtype: torch.dtype = torch.float32,
):
    """A checkpoint directory -> `model_class(config_from(config.json))` holding its renamed tensors (eval mode).

    The tensor names must match the model's exactly, but for a tied head, which is stored once as
    the embedding. `label` names the checkpoint format in the mismatch error.
    """
    from accelerate import init_empty_weights

    path = Path(path)
    config = config_from(json.loads((path / "config.json").read_text()))
    with init_empty_weights():  # parameters on the meta device, buffers (RoPE) real
        model = model_class(config)
    state = load_renamed_state_dict(path, rename)
    expected = set(model.state_dict())
    tied = bool(config.tie_word_embeddings)
    if tied:
        expected.discard("lm_head.weight")
        state.pop("lm_head.weight", None)
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ValueError(f"{label} checkpoint mismatch: missing {missing[:3]}, unexpected {extra[:3]}")
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=not tied, assign=True)
    if tied:
        model.tie_weights()
    model.config.dtype = dtype
    return model.eval()

def save_renamed_checkpoint(
    state: dict[str, torch.Tensor], rename: Callable[[str], str], cfg: dict, path: str | Path, shards: int = 1
) -> None:
    """Write `state` under `rename(name)` as config.json + safetensors, in `shards` files (round-robin by name)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    named = {rename(k): v.contiguous() for k, v in state.items()}
    keys = sorted(named)
    if shards == 1:
        save_file(named, str(path / SINGLE_FILE), metadata={"format": "pt"})
    else:
        weight_map = {}
        for s in range(shards):
            part = keys[s::shards]
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            save_file({k: named[k] for k in part}, str(path / fname), metadata={"format": "pt"})
            weight_map.update({k: fname for k in part})
        total = sum(v.numel() * v.element_size() for v in named.values())
        (path / INDEX_FILE).write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
        )
    (path / "config.json").write_text(json.dumps(cfg, indent=2))
