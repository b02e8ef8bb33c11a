"""Dream as the second MDM family: loader parity, bidirectionality, mask id, checkpoint round trip,
the one-position logit shift (loss, first-token statistic, sampler) and the README command."""
from __future__ import annotations

import inspect
import json
import re
import shlex
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from largescale_torch.data import Example
from largescale_torch.dream import (
    load_dream,
    map_dream_name,
    qwen2_config_from_dream,
    save_dream_checkpoint,
)
from largescale_torch.losses import align_logits, mdm_loss
from largescale_torch.modeling import check_bidirectional, load_base, resolve_model
from test_largescale_common import REPO, data_dir, subprocess_env  # noqa: F401

torch.set_num_threads(1)
V = 1024  # vocabulary of the constructed cases (the tiny presets' size)


@pytest.fixture(scope="module")
def tiny_dream(data_dir):  # noqa: F811
    return resolve_model("tiny-dream", data_dir)


@pytest.fixture(scope="module")
def loaded(tiny_dream):
    return load_base(tiny_dream, torch.float32)


# --- the checkpoint --------------------------------------------------------------------------------

def reference_dream_forward(state: dict, cfg: dict, x_L: torch.Tensor) -> torch.Tensor:
    """Independent Dream forward from Dream-named tensors (float64): RMSNorm, RoPE (half rotation),
    q/k/v with biases, grouped key/value heads, full (non-causal) softmax attention, SwiGLU, untied head."""
    d, H, KV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    theta, eps, Dh = cfg["rope_theta"], cfg["rms_norm_eps"], d // H
    W = lambda n: state[n].double()  # noqa: E731
    rms = lambda h, w: h / torch.sqrt((h * h).mean(-1, keepdim=True) + eps) * w  # noqa: E731
    L = x_L.shape[0]
    inv = 1.0 / theta ** (torch.arange(0, Dh, 2, dtype=torch.float64) / Dh)
    ang = torch.arange(L, dtype=torch.float64)[:, None] * inv[None]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)

    def rope(t):
        t1, t2 = t[..., : Dh // 2], t[..., Dh // 2:]
        return t * cos + torch.cat([-t2, t1], -1) * sin

    def proj(a, name, heads):
        return (a @ W(f"{name}.weight").T + W(f"{name}.bias")).view(L, heads, Dh).transpose(0, 1)

    h = W("model.embed_tokens.weight")[x_L]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        a = rms(h, W(f"{p}.input_layernorm.weight"))
        q = rope(proj(a, f"{p}.self_attn.q_proj", H))
        k = rope(proj(a, f"{p}.self_attn.k_proj", KV)).repeat_interleave(H // KV, 0)
        v = proj(a, f"{p}.self_attn.v_proj", KV).repeat_interleave(H // KV, 0)
        att = torch.softmax(q @ k.transpose(1, 2) / Dh ** 0.5, -1)
        h = h + (att @ v).transpose(0, 1).reshape(L, d) @ W(f"{p}.self_attn.o_proj.weight").T
        f = rms(h, W(f"{p}.post_attention_layernorm.weight"))
        g = f @ W(f"{p}.mlp.gate_proj.weight").T
        h = h + ((g * torch.sigmoid(g)) * (f @ W(f"{p}.mlp.up_proj.weight").T)) @ W(f"{p}.mlp.down_proj.weight").T
    return rms(h, W("model.norm.weight")) @ W("lm_head.weight").T


def test_dream_loader_matches_reference_forward(tiny_dream):
    cfg = json.loads(open(f"{tiny_dream.path}/config.json").read())
    assert cfg["model_type"] == "Dream" and cfg["architectures"] == ["DreamModel"] and "d_model" not in cfg
    state = load_file(f"{tiny_dream.path}/model.safetensors")
    assert state["model.layers.0.self_attn.q_proj.bias"].abs().sum() > 0  # biases are real, not zeros
    model = load_dream(tiny_dream.path)
    x = torch.randint(0, cfg["vocab_size"], (11,), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours = model(input_ids=x[None]).logits[0].double()
    ref = reference_dream_forward(state, cfg, x)
    assert torch.allclose(ours, ref, atol=1e-4, rtol=1e-4), (ours - ref).abs().max()
    no_bias = {k: (torch.zeros_like(v) if k.endswith(".bias") else v) for k, v in state.items()}
    assert not torch.allclose(ours, reference_dream_forward(no_bias, cfg, x), atol=1e-4)


def test_tiny_dream_is_a_bidirectional_mdm_with_the_config_mask(tiny_dream, loaded):
    model, tok, ids = loaded
    cfg = json.loads(open(f"{tiny_dream.path}/config.json").read())
    assert tiny_dream.family == "dream" and tiny_dream.is_mdm and tiny_dream.logits_shift
    assert type(model).__name__ == "Qwen2ForCausalLM" and model.config.is_causal is False
    assert check_bidirectional(model, model.config.vocab_size)
    assert ids.mask == cfg["mask_token_id"] == tok.convert_tokens_to_ids("<|mask|>") == tok.mask_token_id
    assert (ids.eos, ids.pad, ids.bos) == (tok.convert_tokens_to_ids("<|endoftext|>"),) * 2 + (
        tok.convert_tokens_to_ids("<|beginoftext|>"),)
    assert tok.convert_tokens_to_ids("<|im_end|>") in ids.stop
    text = tok.apply_chat_template([{"role": "user", "content": "Q"}], add_generation_prompt=True, tokenize=False)
    assert text == "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n" \
                   "<|im_start|>assistant\n"
    assert tok("x").input_ids[:1] != [ids.bos]  # Dream's tokenizer adds no BOS


def test_logits_shift_only_for_dream(data_dir):  # noqa: F811
    assert not resolve_model("tiny-llada", data_dir).logits_shift
    assert not resolve_model("tiny-qwen", data_dir).logits_shift


def test_resolve_model_detects_dream_from_config_json(tiny_dream, tmp_path):
    cfg = json.loads(open(f"{tiny_dream.path}/config.json").read())
    for model_type in ("Dream", "dream"):
        (tmp_path / "config.json").write_text(json.dumps({**cfg, "model_type": model_type}))
        spec = resolve_model(str(tmp_path))
        assert spec.family == "dream" and spec.is_mdm and spec.logits_shift


def test_checkpoint_names_map_onto_qwen2_and_back(tiny_dream, tmp_path):
    from transformers import Qwen2ForCausalLM

    cfg = json.loads(open(f"{tiny_dream.path}/config.json").read())
    names = set(load_file(f"{tiny_dream.path}/model.safetensors"))
    assert {map_dream_name(n) for n in names} == set(Qwen2ForCausalLM(qwen2_config_from_dream(cfg)).state_dict())
    model = load_dream(tiny_dream.path)
    save_dream_checkpoint(model.state_dict(), cfg, tmp_path / "rt", shards=2)
    assert json.loads((tmp_path / "rt" / "config.json").read_text()) == cfg
    assert len(list((tmp_path / "rt").glob("model-*-of-00002.safetensors"))) == 2
    back = load_dream(tmp_path / "rt")
    a, b = model.state_dict(), back.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for bad in ("model.transformer.blocks.0.q_proj.weight", "model.layers.0.self_attn.o_proj.bias"):
        with pytest.raises(ValueError, match="unexpected tensor"):
            map_dream_name(bad)


@pytest.mark.parametrize("change,needle", [
    ({"model_type": "llada"}, "not Dream"),
    ({"use_sliding_window": True}, "use_sliding_window"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "rope_scaling"),
])
def test_unsupported_dream_configs_are_refused(tiny_dream, change, needle):
    cfg = json.loads(open(f"{tiny_dream.path}/config.json").read())
    with pytest.raises(ValueError, match=needle):
        qwen2_config_from_dream({**cfg, **change})


# --- the constructed shift case ----------------------------------------------------------------------
# A fake model whose logits at absolute position j put (almost) all mass on token f(j), f injective.
# Dream's convention: the prediction for position i is read at i - 1, i.e. it is f(i - 1). Reading
# f(i) (no shift) or f(i - 2) / f(i + 1) (off by one either way) must fail each check below.

def f(j):
    return (7 * j + 11) % V


class PositionModel(torch.nn.Module):
    """logits[b, j] = 30 * onehot(table[j]), the token f(j) where `table` names none."""

    def __init__(self, table: dict[int, int] | None = None):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.table = table or {}

    def forward(self, input_ids, attention_mask=None, position_ids=None, **kw):
        B, L = input_ids.shape
        tokens = torch.tensor([self.table.get(j, f(j)) for j in range(L)])
        logits = torch.zeros(B, L, V)
        logits[:, torch.arange(L), tokens] = 30.0
        return SimpleNamespace(logits=logits)


def _argmax_tokens(logits_BxLxV):
    return logits_BxLxV.argmax(-1)[0].tolist()


def test_align_logits_reads_the_previous_position():
    L = 9
    logits = PositionModel()(torch.zeros(1, L, dtype=torch.long)).logits
    assert _argmax_tokens(align_logits(logits, shift=False)) == [f(i) for i in range(L)]
    shifted = _argmax_tokens(align_logits(logits, shift=True))
    assert shifted == [f(0)] + [f(i - 1) for i in range(1, L)]
    assert all(shifted[i] not in (f(i), f(i - 2), f(i + 1)) for i in range(2, L))


def _aligned_loss(logits, x, masked, shift):
    p_mask = torch.full((x.shape[0],), 0.5)
    return float(mdm_loss(align_logits(logits, shift), x, masked, p_mask, masked))


def test_mdm_loss_is_zero_only_with_dreams_shift():
    """A perfect Dream-style predictor (the logits at j predict token j + 1) has zero loss after
    `align_logits(shift=True)` and a large one unshifted or shifted the other way."""
    L = 10
    x = torch.tensor([[f(j) for j in range(1, L + 1)]])  # token at i is f(i + 1)
    logits = PositionModel({j: f(j + 2) for j in range(L)})(x).logits  # logits at j predict x[j + 1]
    masked = torch.zeros(1, L, dtype=torch.bool)
    masked[0, 4:] = True
    assert _aligned_loss(logits, x, masked, shift=True) < 1e-6
    assert _aligned_loss(logits, x, masked, shift=False) > 10
    wrong_way = torch.cat([logits[:, 1:], logits[:, -1:]], 1)  # index i holds the logits at i + 1
    assert _aligned_loss(wrong_way, x, masked, shift=False) > 10


def test_pretrain_objective_never_scores_dreams_first_token():
    """Under the "pretrain" objective every real token is maskable, but a shifted-logit MDM has no
    prediction for a row's first real token (it would be read on left padding): a perfect Dream-style
    predictor must have zero loss on left-padded rows with every scoreable token masked."""
    from largescale_torch.batching import Encoded, mdm_train_batch
    from largescale_torch.losses import maskable_positions

    L, R = 9, 3
    x_row = [f(j) for j in range(1, L + 1)]  # a row whose token at i is f(i + 1)
    rows = [Encoded(tuple(x_row[: L - R]), tuple(x_row[L - R: L - 1])),  # the longer row, no padding
            Encoded(tuple(x_row[2: L - R]), tuple(x_row[L - R: L - 1]))]  # left-padded by 2
    bt = mdm_train_batch(rows, pad_id=0, eos_id=x_row[-1], gen_length=R)
    x = bt["input_ids"]
    logits = PositionModel({j: f(j + 2) for j in range(L)})(x).logits  # logits at j predict f(j + 2)
    assert x[0].tolist() == x_row and x[1, 2:].tolist() == x_row[2:]
    allowed = maskable_positions(bt["attention_mask"], bt["attention_mask"], shift=True)
    assert allowed[0].tolist() == [False] + [True] * (L - 1)
    assert allowed[1].tolist() == [False] * 3 + [True] * (L - 3)
    assert _aligned_loss(logits, x, allowed, shift=True) < 1e-6
    assert torch.equal(maskable_positions(bt["attention_mask"], bt["attention_mask"], shift=False),
                       bt["attention_mask"].bool())
    assert torch.equal(maskable_positions(bt["response_mask"], bt["attention_mask"], shift=True),
                       bt["response_mask"])  # SFT: the answer always follows a prompt token


def test_first_token_statistic_reads_the_last_prompt_position(loaded):
    from largescale_torch.analysis import first_token_stats
    from largescale_torch.batching import encode

    _, tok, ids = loaded
    ex = Example("Who is the parent of Ann Lee?", "Bob Lee", ("Bob Lee",), "Ann Lee")
    enc = encode(tok, ex.prompt, ex.target, chat=True)
    P, gt = len(enc.prompt), enc.completion[0]
    gen = 8
    # Only the position before the first [M] (the last prompt token) predicts the ground truth.
    model = PositionModel({P - 1: gt})
    assert gt not in (f(P), f(P - 2))
    stat = lambda shift: first_token_stats(model, tok, ids, [ex], True, gen_length=gen, chat=True,  # noqa: E731
                                           logits_shift=shift)[0]
    assert stat(True)["rank"] == 1 and stat(True)["prob"] > 0.99
    assert stat(False)["rank"] > 1 and stat(False)["prob"] < 1e-6


def test_attention_query_for_dream_is_the_position_before_the_first_mask(loaded):
    from largescale_torch.analysis import pair_contexts

    _, tok, ids = loaded
    (fs, fq, fk), (rs, rq, rk) = pair_contexts(tok, ids, "Ann Lee", "Bob Lee", "'s child is", "'s parent is",
                                               logits_shift=True)
    assert fs[0] == ids.bos and rs[0] == ids.bos
    assert fs[fq + 1] == ids.mask and fs[fq] != ids.mask  # BOS predicts the first [M]
    assert rs[rq + 1] == ids.mask and rs[rq] != ids.mask  # the last relation token does
    assert fs[fk] == rs[rk] and fk == len(fs) - 1
    (fs0, fq0, _), (rs0, rq0, _) = pair_contexts(tok, ids, "Ann Lee", "Bob Lee", "'s child is", "'s parent is")
    assert fs0[fq0] == ids.mask and rs0[rq0] == ids.mask  # LLaDA's convention: the [M] itself


def test_attention_correlation_and_causal_control_run_on_dream(loaded):
    """Figure 7 (c) and the causal-mask control on the Qwen2-mapped Dream: finite per-head
    correlations, and the control really is causal (then bidirectional again)."""
    import numpy as np

    from largescale_torch.analysis import attention_correlation, causal_attention
    from largescale_torch.modeling import rope_theta_of

    model, tok, ids = loaded
    names = ["Ann Lee", "Bob Stone", "Cara Diaz", "Dan Moss", "Eve Hart", "Finn Cole"]
    pairs = [{"parent": p, "child": c} for p, c in zip(names, names[1:] + names[:1])]
    res = attention_correlation(model, tok, ids, pairs, "p2c", model.config.head_dim, rope_theta_of(model.config),
                                min_group=2, logits_shift=True)
    overall = np.array(res["overall_layer_head"])
    assert res["logits_shift"] and res["n_pairs"] == 6
    assert overall.shape == (model.config.num_hidden_layers, model.config.num_attention_heads)
    assert np.isfinite(overall).all()
    with causal_attention(model):
        assert not check_bidirectional(model, model.config.vocab_size)
    assert check_bidirectional(model, model.config.vocab_size)


def test_sampler_reads_the_previous_position():
    """With logits_shift the response position P + i is filled with f(P + i - 1)."""
    from largescale_torch.sampler import llada_generate

    if "logits_shift" not in inspect.signature(llada_generate).parameters:
        pytest.fail("llada_generate has no logits_shift argument")
    P, G = 5, 8
    prompt = torch.arange(1, P + 1)[None]
    mask_id = V - 1
    out = lambda shift: llada_generate(PositionModel(), prompt, torch.ones_like(prompt), mask_id,  # noqa: E731
                                       gen_length=G, block_length=G, steps=G, logits_shift=shift)[0].tolist()
    assert out(True) == [f(P + i - 1) for i in range(G)]
    assert out(False) == [f(P + i) for i in range(G)]


# --- the README command ----------------------------------------------------------------------------

def _readme_dream_command() -> list[str]:
    text = (REPO / "largescale_torch" / "README.md").read_text()
    section = text.split("## Dream", 1)[1].split("\n## ", 1)[0]
    cmds = [c for c in re.findall(r"^python largescale_torch/finetune\.py .*$", section, re.M) if "tiny-dream" in c]
    assert len(cmds) == 1, cmds
    return shlex.split(cmds[0])


def test_readme_dream_command_runs_as_written(tiny_dream, tmp_path):
    argv = _readme_dream_command()
    assert argv[:2] == ["python", "largescale_torch/finetune.py"]
    r = subprocess.run([sys.executable, str(REPO / argv[1]), *argv[2:]], capture_output=True, text=True,
                       cwd=tmp_path, env=subprocess_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = tmp_path / argv[argv.index("--out") + 1]
    res = json.loads((out / "results.json").read_text())
    assert res["family"] == "dream" and res["is_mdm"] and res["resolved"]["family"] == "dream"
    assert res["resolved"]["lr"] == 2e-4  # LLaDA's T-REx rate (the paper gives Dream none)
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["loss"] > 0 and "reverse_exact" in metrics[-1]
    assert res["protocol"].get("logits_shift") is True, res["protocol"]
    adapter = json.loads((out / "final" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == res["resolved"]["model_path"]
