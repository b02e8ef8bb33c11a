"""LLaDA loader parity, bidirectional MDM vs causal ARMs, bad LLaDA configs."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from largescale_torch.llada import llama_config_from_llada, load_llada
from largescale_torch.modeling import check_bidirectional, load_base, resolve_model
from test_largescale_common import data_dir  # noqa: F401


def reference_llada_forward(state: dict, cfg: dict, x_L: torch.Tensor) -> torch.Tensor:
    """Independent LLaDA forward from LLaDA-named tensors: RMSNorm, RoPE (half rotation),
    full (non-causal) softmax attention, SwiGLU with ff_proj as gate, untied ff_out head."""
    d, H, theta, eps = cfg["d_model"], cfg["n_heads"], cfg["rope_theta"], cfg["rms_norm_eps"]
    Dh = d // H
    W = lambda n: state[f"model.transformer.{n}"].double()  # noqa: E731
    rms = lambda h, w: h / torch.sqrt((h * h).mean(-1, keepdim=True) + eps) * w  # noqa: E731
    L = x_L.shape[0]
    inv = 1.0 / theta ** (torch.arange(0, Dh, 2, dtype=torch.float64) / Dh)
    ang = torch.arange(L, dtype=torch.float64)[:, None] * inv[None]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)

    def rope(t):  # H x L x Dh
        t1, t2 = t[..., : Dh // 2], t[..., Dh // 2:]
        return t * cos + torch.cat([-t2, t1], -1) * sin

    h = W("wte.weight")[x_L]
    for i in range(cfg["n_layers"]):
        b = lambda n: W(f"blocks.{i}.{n}.weight")  # noqa: E731
        a = rms(h, b("attn_norm"))
        q = rope((a @ b("q_proj").T).view(L, H, Dh).transpose(0, 1))
        k = rope((a @ b("k_proj").T).view(L, H, Dh).transpose(0, 1))
        v = (a @ b("v_proj").T).view(L, H, Dh).transpose(0, 1)
        att = torch.softmax(q @ k.transpose(1, 2) / Dh ** 0.5, -1)
        h = h + (att @ v).transpose(0, 1).reshape(L, d) @ b("attn_out").T
        f = rms(h, b("ff_norm"))
        g = f @ b("ff_proj").T
        h = h + ((g * torch.sigmoid(g)) * (f @ b("up_proj").T)) @ b("ff_out").T
    return rms(h, W("ln_f.weight")) @ W("ff_out.weight").T


@pytest.fixture(scope="module")
def tiny_llada(data_dir):  # noqa: F811
    return resolve_model("tiny-llada", data_dir)


def test_llada_loader_matches_reference_forward(tiny_llada):
    path = tiny_llada.path
    cfg = json.loads(open(f"{path}/config.json").read())
    state = {}
    for f in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        state.update(load_file(f"{path}/{f}"))
    assert any(k.startswith("model.transformer.blocks.0.ff_proj") for k in state)
    model = load_llada(path)
    x = torch.randint(0, cfg["vocab_size"], (11,), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours = model(input_ids=x[None]).logits[0].double()
    ref = reference_llada_forward(state, cfg, x)
    assert torch.allclose(ours, ref, atol=1e-4, rtol=1e-4), (ours - ref).abs().max()
    # a genuinely different network (gate and up swapped) does not match
    swapped = dict(state)
    for i in range(cfg["n_layers"]):
        a, b = f"model.transformer.blocks.{i}.ff_proj.weight", f"model.transformer.blocks.{i}.up_proj.weight"
        swapped[a], swapped[b] = state[b], state[a]
    assert not torch.allclose(ours, reference_llada_forward(swapped, cfg, x), atol=1e-4)


def _depends_on_future(model, vocab: int) -> bool:
    """Gradient of the position-0 output w.r.t. the last input embedding is non-zero."""
    emb = model.get_input_embeddings()
    x = torch.arange(3, 11)[None] % vocab
    e = emb(x).detach().requires_grad_(True)
    out = model(inputs_embeds=e).logits[0, 0].sum()
    (g,) = torch.autograd.grad(out, e)
    return bool(g[0, -1].abs().sum() > 0)


@pytest.mark.parametrize("name,bidirectional", [("tiny-llada", True), ("tiny-llama", False), ("tiny-qwen", False)])
def test_attention_direction(name, bidirectional, data_dir):  # noqa: F811
    spec = resolve_model(name, data_dir)
    model, _, _ = load_base(spec, torch.float32)
    assert spec.is_mdm == bidirectional
    assert _depends_on_future(model, model.config.vocab_size) == bidirectional
    assert check_bidirectional(model, model.config.vocab_size) == bidirectional


def test_llada_config_fields_and_rejections():
    cfg = {"model_type": "llada", "d_model": 64, "n_heads": 4, "n_kv_heads": 2, "n_layers": 3,
           "mlp_hidden_size": 96, "rope_theta": 500000.0, "vocab_size": 100, "embedding_size": 128,
           "rms_norm_eps": 1e-5, "mask_token_id": 99, "eos_token_id": 98}
    c = llama_config_from_llada(cfg)
    assert (c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.num_hidden_layers) == (64, 4, 2, 3)
    assert c.intermediate_size == 96 and c.vocab_size == 128 and c.is_causal is False
    assert c.rope_parameters["rope_theta"] == 500000.0
    assert c.mask_token_id == 99 and c.pad_token_id == 98
    assert llama_config_from_llada({k: v for k, v in cfg.items() if k != "mask_token_id"}).mask_token_id == 126336
    for bad in ({"weight_tying": True}, {"block_type": "sequential"}, {"include_qkv_bias": True}):
        with pytest.raises(ValueError):
            llama_config_from_llada({**cfg, **bad})
