"""MDM loss never masks the prompt; the sampler fills exactly gen_length and never re-masks."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from largescale_torch.batching import (
    Encoded,
    arm_train_batch,
    encode,
    left_pad,
    mdm_train_batch,
    positions_from_mask,
    turn_end_id,
)
from largescale_torch.losses import arm_loss, mdm_corrupt, mdm_loss
from largescale_torch.modeling import load_base, resolve_model
from largescale_torch.sampler import llada_generate, num_transfer_tokens
from test_largescale_common import data_dir  # noqa: F401

MASK, EOS, PAD = 99, 98, 97
ROWS = [Encoded((1, 2, 3, 4, 5), (10, 11)), Encoded((1, 6), (12, 13, 14)), Encoded((1, 7, 8), (15,))]


def test_mdm_corruption_never_masks_prompt_or_padding():
    b = mdm_train_batch(ROWS, PAD, EOS, gen_length=6, pad_to="gen_length")
    assert b["input_ids"].shape == (3, 5 + 6)
    assert b["response_mask"].sum().item() == 3 * 6
    gen = torch.Generator().manual_seed(0)
    seen_masked = torch.zeros_like(b["response_mask"])
    for _ in range(200):
        noisy, masked, p = mdm_corrupt(b["input_ids"], b["response_mask"], MASK, 1e-3, gen)
        assert not (masked & ~b["response_mask"]).any()
        assert torch.equal(noisy[~b["response_mask"]], b["input_ids"][~b["response_mask"]])
        assert torch.equal(noisy == MASK, masked)
        assert ((p >= 1e-3) & (p <= 1.0)).all()
        seen_masked |= masked
    assert torch.equal(seen_masked, b["response_mask"])  # every response position gets masked sometimes
    # response = completion then EOS fill; padding excluded from attention; positions restart
    assert b["input_ids"][2, -6:].tolist() == [15, EOS, EOS, EOS, EOS, EOS]
    assert b["attention_mask"][1].tolist() == [0, 0, 0] + [1] * 8
    assert b["position_ids"][1].tolist() == [0, 0, 0] + list(range(8))


def test_mdm_loss_formula():
    torch.manual_seed(0)
    ids = torch.randint(0, 20, (2, 5))
    resp = torch.tensor([[0, 0, 1, 1, 1], [0, 1, 1, 1, 1]], dtype=torch.bool)
    masked = torch.tensor([[0, 0, 1, 0, 1], [0, 1, 0, 0, 0]], dtype=torch.bool)
    p = torch.tensor([0.5, 0.25])
    logits = torch.randn(2, 5, 20)
    ce = F.cross_entropy(logits.transpose(1, 2), ids, reduction="none")
    expect = ((ce[0, 2] + ce[0, 4]) / 0.5 / 3 + ce[1, 1] / 0.25 / 4) / 2
    assert torch.allclose(mdm_loss(logits, ids, masked, p, resp), expect)


def test_arm_loss_only_on_completion():
    b = arm_train_batch(ROWS, PAD, EOS)
    assert b["labels"][0].tolist() == [-100] * 5 + [10, 11, EOS]
    assert b["labels"][2].tolist() == [-100] * 3 + [15, EOS] + [-100] * 3
    logits = torch.randn(3, b["input_ids"].shape[1], 100, requires_grad=True)
    arm_loss(logits, b["labels"]).backward()
    # no gradient from positions that predict prompt tokens or padding
    assert logits.grad[0, :4].abs().sum() == 0 and logits.grad[0, 4:7].abs().sum() > 0
    assert logits.grad[2, 5:].abs().sum() == 0


@pytest.mark.parametrize("n,steps", [(32, 32), (32, 8), (7, 3), (2, 5)])
def test_num_transfer_tokens(n, steps):
    k = num_transfer_tokens(n, steps)
    assert len(k) == steps and sum(k) == n and max(k) - min(k) <= 1


@pytest.fixture(scope="module")
def llada(data_dir):  # noqa: F811
    return load_base(resolve_model("tiny-llada", data_dir), torch.float32)


@pytest.mark.parametrize("gen_length,block_length,steps", [(32, 32, 32), (16, 8, 4), (12, 4, 6)])
def test_sampler_fills_gen_length_and_never_remasks(llada, gen_length, block_length, steps):
    model, _, ids = llada
    prompts = [[0, 50, 60, 70], [0, 80], [0, 90, 91]]
    x, attn = left_pad(prompts, ids.pad)
    trace = []
    out = llada_generate(model, x, attn, ids.mask, gen_length, block_length, steps, trace=trace)
    assert out.shape == (3, gen_length) and not (out == ids.mask).any()
    assert len(trace) == steps
    prev = torch.full_like(out, ids.mask)
    n_blocks = gen_length // block_length
    per_block = steps // n_blocks
    for s, cur in enumerate(trace):
        unmasked_before = prev != ids.mask
        assert torch.equal(cur[unmasked_before], prev[unmasked_before])  # never re-masked or changed
        block = s // per_block
        later = torch.zeros(gen_length, dtype=torch.bool)
        later[(block + 1) * block_length:] = True
        assert (cur[:, later] == ids.mask).all()  # blocks are decoded left to right
        prev = cur
    assert torch.equal(trace[-1], out)


def _reference_sampler(model, prompt: list[int], mask_id: int, gen_length: int, steps: int) -> list[int]:
    """One query, one block, full logits: the plain low-confidence remasking loop."""
    x = torch.tensor([prompt + [mask_id] * gen_length])
    P = len(prompt)
    for k in num_transfer_tokens(gen_length, steps):
        with torch.no_grad():
            logits = model(input_ids=x).logits[0, P:].float()
        logits[:, mask_id] = -float("inf")  # [M] is never a prediction
        x0 = logits.argmax(-1)
        conf = logits.softmax(-1).gather(-1, x0[:, None])[:, 0]
        conf[x[0, P:] != mask_id] = -float("inf")
        for j in conf.topk(k).indices.tolist():
            x[0, P + j] = x0[j]
    return x[0, P:].tolist()


def test_batched_sampler_matches_single_query_reference(llada):
    model, _, ids = llada
    prompts = [[0, 50, 60, 70, 71], [0, 80], [0, 90, 91]]
    x, attn = left_pad(prompts, ids.pad)
    batched = llada_generate(model, x, attn, ids.mask, 8, 8, 8)
    for i, p in enumerate(prompts):
        assert batched[i].tolist() == _reference_sampler(model, p, ids.mask, 8, 8)
    # left padding is invisible: a row's logits equal its unpadded logits
    full = torch.cat([x, torch.full((3, 8), ids.mask)], 1)
    fa = torch.cat([attn, torch.ones(3, 8, dtype=attn.dtype)], 1)
    with torch.no_grad():
        lb = model(input_ids=full, attention_mask=fa, position_ids=positions_from_mask(fa)).logits[1, -8:]
        ls = model(input_ids=torch.tensor([prompts[1] + [ids.mask] * 8])).logits[0, -8:]
    assert torch.allclose(lb, ls, atol=1e-5)


def test_sampler_rejects_bad_schedule(llada):
    model, _, ids = llada
    x, attn = left_pad([[0, 5]], ids.pad)
    with pytest.raises(ValueError):
        llada_generate(model, x, attn, ids.mask, gen_length=32, block_length=10, steps=32)
    with pytest.raises(ValueError):
        llada_generate(model, x, attn, ids.mask, gen_length=32, block_length=16, steps=3)


def test_mdm_objective_and_sampler_memorise_two_examples(data_dir):  # noqa: F811
    """LLaDA's SFT loss + LoRA (Appendix D) + the low-confidence sampler learn two facts.

    The random tiny-llada has a frozen head whose logits span only ~0.6 nats, and its
    identical [M] embeddings can be told apart only through RoPE, so it learns slowly and
    only at a small learning rate (1e-2 collapses to all-EOS answers; see the README).
    """
    from largescale_torch.data import build_task
    from largescale_torch.evaluation import exact_match
    from largescale_torch.generation import mdm_generate
    from largescale_torch.modeling import add_lora

    base, tok, ids = load_base(resolve_model("tiny-llada", data_dir), torch.float32)
    examples = build_task("parent_child", "p2c", data_dir=data_dir).train[:2]
    rows = [encode(tok, e.prompt, e.target, chat=True) for e in examples]  # the training defaults:
    batch = mdm_train_batch(rows, ids.pad, ids.eos, gen_length=32, end_id=turn_end_id(tok))  # per-batch EOS
    torch.manual_seed(1)
    model = add_lora(base)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.1)
    gen = torch.Generator().manual_seed(1)

    def answers() -> list[str]:
        model.eval()
        out = mdm_generate(model, [list(r.prompt) for r in rows], ids)
        model.train()
        return [tok.decode(o, skip_special_tokens=True) for o in out]

    assert not any(exact_match(a, e.accepted) for a, e in zip(answers(), examples))
    learned, seen = False, []
    for step in range(1, 1501):
        noisy, masked, p = mdm_corrupt(batch["input_ids"], batch["response_mask"], ids.mask, 1e-3, gen)
        logits = model(input_ids=noisy, attention_mask=batch["attention_mask"],
                       position_ids=batch["position_ids"]).logits
        mdm_loss(logits, batch["input_ids"], masked, p, batch["response_mask"]).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step % 50 == 0:
            seen = answers()
            if all(exact_match(a, e.accepted) for a, e in zip(seen, examples)):
                learned = True
                break
    assert learned, f"not memorised after {step} steps: {seen}"
