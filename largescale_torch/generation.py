"""Batched decoding of answers: greedy for the ARMs, LLaDA's sampler for the MDM."""
from __future__ import annotations

import torch

from largescale_torch.batching import left_pad
from largescale_torch.constants import BLOCK_LENGTH, GEN_LENGTH, MAX_NEW_TOKENS, SAMPLER_STEPS, TEMPERATURE
from largescale_torch.modeling import TokenIds
from largescale_torch.sampler import llada_generate


def cut_at_stop(ids: list[int], stop: tuple[int, ...]) -> list[int]:
    for i, t in enumerate(ids):
        if t in stop:
            return ids[:i]
    return ids


@torch.no_grad()
def arm_generate(model, prompts: list[list[int]], ids: TokenIds, max_new_tokens: int = MAX_NEW_TOKENS) -> list[list[int]]:
    """Greedy decoding (temperature 0) of at most `max_new_tokens`, stopping at EOS/EOT."""
    device = next(model.parameters()).device
    x, attn = left_pad(prompts, ids.pad)
    out = model.generate(input_ids=x.to(device), attention_mask=attn.to(device), do_sample=False,
                         max_new_tokens=max_new_tokens, eos_token_id=list(ids.stop), pad_token_id=ids.pad,
                         temperature=None, top_p=None, top_k=None)
    return [cut_at_stop(row.tolist(), ids.stop) for row in out[:, x.shape[1]:]]


def mdm_generate(model, prompts: list[list[int]], ids: TokenIds, gen_length: int = GEN_LENGTH,
                 block_length: int = BLOCK_LENGTH, steps: int = SAMPLER_STEPS,
                 temperature: float = TEMPERATURE) -> list[list[int]]:
    device = next(model.parameters()).device
    x, attn = left_pad(prompts, ids.pad)
    out = llada_generate(model, x.to(device), attn.to(device), ids.mask, gen_length=gen_length,
                         block_length=block_length, steps=steps, temperature=temperature)
    return [cut_at_stop(row.tolist(), ids.stop) for row in out]
