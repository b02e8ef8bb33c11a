"""Protocol of the large-scale runs: hermetic tests, the prompts each model sees, LLaDA's SFT
padding and loss by hand, and training batches that never contain a reverse query."""
from __future__ import annotations

import math
import os
import socket

import pytest
import torch

from largescale_torch import training
from largescale_torch.batching import Encoded, encode, mdm_train_batch, turn_end_id
from largescale_torch.data import build_task
from largescale_torch.evaluation import EvalConfig, predict
from largescale_torch.losses import mdm_loss
from largescale_torch.modeling import load_base, resolve_model
from test_largescale_common import data_dir  # noqa: F401

# What each real Instruct template renders for one user turn plus the assistant header.
CHAT_LAYOUT = {
    "tiny-llama": ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                   "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
                   "<|start_header_id|>user<|end_header_id|>\n\n{q}<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    "tiny-qwen": ("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                  "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"),
    "tiny-llada": ("<|startoftext|><|start_header_id|>user<|end_header_id|>\n\n{q}<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\n"),
}
# Without a template: LLaMA's tokenizer adds its BOS, Qwen's has none, LLaDA's does not add one.
RAW_LAYOUT = {"tiny-llama": "<|begin_of_text|>{q}", "tiny-qwen": "{q}", "tiny-llada": "{q}"}
# (bos, eos, pad, end of an assistant turn) as in the real tokenizers.
SPECIALS = {
    "tiny-llama": ("<|begin_of_text|>", "<|eot_id|>", None, "<|eot_id|>"),
    "tiny-qwen": (None, "<|im_end|>", "<|endoftext|>", "<|im_end|>"),
    "tiny-llada": ("<|startoftext|>", "<|endoftext|>", "<|endoftext|>", "<|eot_id|>"),
}


def test_hermetic_guard(tmp_path, monkeypatch):
    """tests/conftest.py: no data variable, no network; a missing --data-dir fails fast, in one line."""
    assert "REVERSAL_CURSE_DATA" not in os.environ
    with socket.socket() as s, pytest.raises(OSError, match="network access is disabled"):
        s.connect(("93.184.216.34", 80))
    monkeypatch.setenv("REVERSAL_MDM_CACHE", str(tmp_path))  # nothing downloaded before
    with pytest.raises(FileNotFoundError, match="cannot download") as err:
        build_task("parent_child", "p2c")
    assert len(str(err.value).splitlines()) == 1


@pytest.fixture(scope="module")
def p2c_query(data_dir):  # noqa: F811
    return build_task("parent_child", "p2c", data_dir=data_dir).train[0]


@pytest.mark.parametrize("preset", list(CHAT_LAYOUT))
def test_tiny_tokenizers_mirror_the_real_special_token_layout(preset, data_dir):  # noqa: F811
    _, tok, ids = load_base(resolve_model(preset, data_dir), torch.float32)
    bos, eos, pad, end = SPECIALS[preset]
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == (bos, eos, pad)
    assert ids.eos == tok.convert_tokens_to_ids(eos) and ids.pad == (tok.pad_token_id if pad else ids.eos)
    assert tok.convert_ids_to_tokens(turn_end_id(tok)) == end and turn_end_id(tok) in ids.stop
    adds_bos = tok("x").input_ids[0] == tok.bos_token_id if bos else False
    assert adds_bos == (preset == "tiny-llama")
    if preset == "tiny-llada":
        assert tok.convert_ids_to_tokens(ids.mask) == "<|mdm_mask|>"


@pytest.mark.parametrize("chat", [True, False])
@pytest.mark.parametrize("preset", list(CHAT_LAYOUT))
def test_prompt_the_sampler_sees_is_the_template_output(preset, chat, p2c_query, data_dir, monkeypatch):  # noqa: F811
    """Capture the token ids that reach LLaDA's sampler / the ARM's generate() for one P2C query."""
    import largescale_torch.generation as generation

    model, tok, ids = load_base(resolve_model(preset, data_dir), torch.float32)
    seen = []

    def fake_llada_generate(model, x, attn, mask_id, gen_length=32, **kw):
        seen.extend(row[a.bool()].tolist() for row, a in zip(x, attn))
        return torch.full((x.shape[0], gen_length), ids.eos)

    def fake_generate(input_ids, attention_mask, max_new_tokens, **kw):
        seen.extend(row[a.bool()].tolist() for row, a in zip(input_ids, attention_mask))
        return torch.cat([input_ids, torch.full((input_ids.shape[0], 1), ids.eos)], 1)

    monkeypatch.setattr(generation, "llada_generate", fake_llada_generate)
    monkeypatch.setattr(model, "generate", fake_generate)
    predict(model, tok, ids, [p2c_query], preset == "tiny-llada", EvalConfig(chat_template=chat), progress=False)
    assert len(seen) == 1
    layout = (CHAT_LAYOUT if chat else RAW_LAYOUT)[preset]
    assert tok.decode(seen[0]) == layout.format(q=p2c_query.prompt)
    if chat:
        rendered = tok.apply_chat_template([{"role": "user", "content": p2c_query.prompt}],
                                           add_generation_prompt=True, tokenize=True, return_dict=False)
        assert seen[0] == list(rendered)
        assert seen[0].count(tok.bos_token_id) == (0 if tok.bos_token_id is None else 1)  # never a second BOS


def test_llada_collator_pads_eos_per_batch():
    """LLaDA's SFT guideline: EOS-pad each answer to the longest answer of its mini-batch."""
    PAD, EOS, END = 97, 98, 96
    rows = [Encoded((1, 2, 3, 4, 5), (10, 11)), Encoded((1, 6), (12, 13, 14)), Encoded((1, 7, 8), (15,))]
    b = mdm_train_batch(rows, PAD, EOS, gen_length=32)  # default: per batch, END = EOS
    assert b["input_ids"].shape == (3, 5 + 4)  # longest answer 3 tokens + 1 EOS
    assert b["input_ids"][:, -4:].tolist() == [[10, 11, EOS, EOS], [12, 13, 14, EOS], [15, EOS, EOS, EOS]]
    assert b["response_mask"].sum(1).tolist() == [4, 4, 4]
    b = mdm_train_batch(rows, PAD, EOS, gen_length=32, end_id=END)  # chat template: END, then EOS
    assert b["input_ids"][:, -5:].tolist() == [[10, 11, END, EOS, EOS], [12, 13, 14, END, EOS],
                                                [15, END, EOS, EOS, EOS]]
    assert mdm_train_batch(rows[2:], PAD, EOS, 32)["input_ids"][0, -2:].tolist() == [15, EOS]  # a batch of its own
    old = mdm_train_batch(rows, PAD, EOS, gen_length=32, pad_to="gen_length")  # the previous layout
    assert old["response_mask"].sum(1).tolist() == [32, 32, 32] and (old["input_ids"][:, -28:] == EOS).all()
    with pytest.raises(ValueError, match="does not fit"):
        mdm_train_batch([Encoded((1,), tuple(range(40)))], PAD, EOS, gen_length=32)


def test_sft_loss_equals_hand_computation_on_two_rows():
    """Two answers of different lengths; the loss written out with math.log, token by token."""
    PAD, EOS, MASK, V = 0, 1, 2, 6
    rows = [Encoded((3, 4), (5,)), Encoded((3,), (4, 5, 3))]  # answers of 1 and 3 tokens
    b = mdm_train_batch(rows, PAD, EOS, gen_length=8)
    ids = b["input_ids"]
    assert ids.tolist() == [[3, 4, 5, EOS, EOS, EOS], [PAD, 3, 4, 5, 3, EOS]]  # answer region of 4
    masked = torch.tensor([[0, 0, 1, 0, 1, 1], [0, 0, 0, 1, 0, 1]], dtype=torch.bool)
    p = torch.tensor([0.6, 0.3])
    logits = torch.randn(2, 6, V, generator=torch.Generator().manual_seed(0))
    got = mdm_loss(logits, ids, masked, p, b["response_mask"]).item()

    def nll(i, j):
        row = logits[i, j].tolist()
        return -(row[ids[i, j].item()] - math.log(sum(math.exp(v) for v in row)))

    answer_len = 4  # longest answer (3) + one EOS; LLaDA divides by the answer length incl. EOS padding
    row0 = (nll(0, 2) + nll(0, 4) + nll(0, 5)) / 0.6 / answer_len  # the answer "5" and two EOS
    row1 = (nll(1, 3) + nll(1, 5)) / 0.3 / answer_len  # "5" and the EOS
    assert got == pytest.approx((row0 + row1) / 2, rel=1e-6)
    # the previous layout (--mdm-pad-to gen_length) divides by 32 and adds 28 EOS positions per row
    old = mdm_train_batch(rows, PAD, EOS, gen_length=32, pad_to="gen_length")
    assert old["response_mask"].sum(1).tolist() == [32, 32]


def _collect_training_batches(monkeypatch, preset: str, data_dir: str,  # noqa: F811
                              tmp_path) -> tuple[list, list, dict]:
    """Run the real training loop for one epoch, recording each collated batch and what reaches the loss."""
    collated, at_loss = [], []
    is_mdm = preset == "tiny-llada"
    collate_name, loss_name = ("mdm_train_batch", "mdm_loss") if is_mdm else ("arm_train_batch", "arm_loss")
    real_collate, real_loss = getattr(training, collate_name), getattr(training, loss_name)

    def collate(*args, **kw):
        batch = real_collate(*args, **kw)
        collated.append({k: v.clone() for k, v in batch.items()})
        return batch

    def loss(*args, **kw):
        at_loss.append(args[1].detach().cpu().clone())  # clean ids (MDM) / labels (ARM)
        return real_loss(*args, **kw)

    monkeypatch.setattr(training, collate_name, collate)
    monkeypatch.setattr(training, loss_name, loss)
    cfg = training.TrainConfig(model=preset, dataset="parent_child", direction="p2c", seed=1,
                               out=str(tmp_path / preset), epochs=1, batch_size=4, max_train_examples=8,
                               max_eval_examples=1, data_dir=data_dir)
    training.run(cfg)
    return collated, at_loss, {"is_mdm": is_mdm}


@pytest.mark.parametrize("preset", ["tiny-llama", "tiny-llada"])
def test_training_batches_are_forward_only(preset, data_dir, tmp_path, monkeypatch):  # noqa: F811
    """The rows the loss sees are the first 8 P2C training statements, never a reverse (C2P) query."""
    collated, at_loss, info = _collect_training_batches(monkeypatch, preset, data_dir, tmp_path)
    _, tok, ids = load_base(resolve_model(preset, data_dir), torch.float32)
    task = build_task("parent_child", "p2c", data_dir=data_dir)
    end = turn_end_id(tok)

    def key(e):
        enc = encode(tok, e.prompt, e.target, chat=True)
        return tuple(enc.prompt) + tuple(enc.completion), len(enc.completion)

    answer_len = dict(key(e) for e in task.train[:8])
    train = set(answer_len)
    reverse = {key(e)[0] for e in task.reverse}
    assert len(collated) == len(at_loss) == 2  # 8 examples, batch 4
    seen = set()
    for batch, loss_input in zip(collated, at_loss):
        target = batch["input_ids"] if info["is_mdm"] else batch["labels"]
        assert torch.equal(loss_input, target)  # the collated batch is what reaches the loss
        longest = 0
        for row, attn in zip(batch["input_ids"], batch["attention_mask"]):
            real = tuple(row[attn.bool()].tolist())
            hits = [k for k in train if real[: len(k)] == k]
            assert len(hits) == 1, tok.decode(list(real))
            assert not any(real[: len(k)] == k for k in reverse)
            tail = real[len(hits[0]):]
            assert tail[0] == end and set(tail[1:]) <= {ids.eos}
            seen.add(hits[0])
            longest = max(longest, answer_len[hits[0]])
        if info["is_mdm"]:  # per-batch EOS padding: answer region = longest answer + END + one EOS
            assert batch["response_mask"].sum(1).tolist() == [longest + 2] * 4
    assert seen == train  # every training statement, once per epoch
