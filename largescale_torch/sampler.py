"""LLaDA's low-confidence remasking sampler (Nie et al. 2025, Algorithm "low_confidence"), batched.

The response region starts fully masked and is split into blocks of `block_length`, decoded
left to right. Within a block, each of the `steps / n_blocks` steps predicts every masked
position at once and unmasks the k most confident ones (k from `num_transfer_tokens`);
an unmasked token is never re-masked. With temperature 0 the prediction is the argmax.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from largescale_torch.batching import positions_from_mask


def num_transfer_tokens(n_masked: int, steps: int) -> list[int]:
    """Tokens unmasked per step: n // steps each, the remainder spread over the first steps."""
    base, rem = divmod(n_masked, steps)
    return [base + (1 if i < rem else 0) for i in range(steps)]


def _gumbel_argmax(logits: torch.Tensor, temperature: float, generator) -> torch.Tensor:
    if temperature == 0:
        return logits.argmax(-1)
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float64, device="cpu").to(logits.device)
    noisy = logits.double().exp() / (-torch.log(u)) ** temperature
    return noisy.argmax(-1)


@torch.no_grad()
def llada_generate(model, prompt_BxP: torch.Tensor, prompt_attention_BxP: torch.Tensor, mask_id: int,
                   gen_length: int = 32, block_length: int = 32, steps: int = 32,
                   temperature: float = 0.0, generator: torch.Generator | None = None,
                   trace: list | None = None) -> torch.Tensor:
    """Return the `gen_length` generated ids per row (B x gen_length).

    Rows are left-padded prompts; padding is masked out of attention, so each row's result
    equals its one-at-a-time result. If `trace` is a list, the response after every step
    is appended to it (for tests).
    """
    if gen_length % block_length:
        raise ValueError(f"gen_length {gen_length} is not a multiple of block_length {block_length}")
    n_blocks = gen_length // block_length
    if steps < 1 or steps % n_blocks:
        raise ValueError(f"steps {steps} is not a positive multiple of the {n_blocks} blocks")
    B, P = prompt_BxP.shape
    device = prompt_BxP.device
    x = torch.cat([prompt_BxP, torch.full((B, gen_length), mask_id, dtype=torch.long, device=device)], 1)
    attn = torch.cat([prompt_attention_BxP, torch.ones((B, gen_length), dtype=prompt_attention_BxP.dtype,
                                                       device=device)], 1)
    pos = positions_from_mask(attn)
    steps_per_block = steps // n_blocks
    for b in range(n_blocks):
        lo, hi = P + b * block_length, P + (b + 1) * block_length
        for k in num_transfer_tokens(block_length, steps_per_block):
            logits = model(input_ids=x, attention_mask=attn, position_ids=pos,
                           logits_to_keep=gen_length).logits  # B x gen_length x V
            resp = x[:, P:]
            x0 = _gumbel_argmax(logits.float(), temperature, generator)
            conf = F.softmax(logits.float(), dim=-1).gather(-1, x0[..., None])[..., 0]
            in_block = torch.zeros(gen_length, dtype=torch.bool, device=device)
            in_block[lo - P: hi - P] = True
            candidate = (resp == mask_id) & in_block
            conf = torch.where(candidate, conf, torch.full_like(conf, -torch.inf))
            if k > 0:
                idx = conf.topk(k, dim=-1).indices
                chosen = torch.zeros_like(candidate).scatter_(1, idx, True) & candidate
                x[:, P:] = torch.where(chosen, x0, resp)
            if trace is not None:
                trace.append(x[:, P:].clone())
    return x[:, P:]
