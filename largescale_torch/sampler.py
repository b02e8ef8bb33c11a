"""LLaDA's low-confidence remasking sampler (Nie et al. 2025, Algorithm "low_confidence"), batched.

The response region starts fully masked and is split into blocks of `block_length`, decoded
left to right. Within a block, each of the `steps / n_blocks` steps predicts every masked
position at once and unmasks the k most confident ones (k from `num_transfer_tokens`);
an unmasked token is never re-masked. With temperature 0 the prediction is the argmax.

The mask token itself is never predicted (its logit is set to -inf before the softmax, the
"zero masking probability" of masked-diffusion parameterisations): a trained LLaDA gives it
probability ~0, so this changes nothing there, but an untrained or tiny model whose argmax
happens to be [M] would otherwise write [M] into a position and leave it undecoded.
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


def _masked_logits(lm, x_BxL, attn_BxL, pos_BxL, cols_BxM):
    """Logits at the given columns only: the LM head runs on the still-masked positions."""
    if hasattr(lm, "model") and hasattr(lm, "lm_head"):
        h_BxLxD = lm.model(input_ids=x_BxL, attention_mask=attn_BxL, position_ids=pos_BxL).last_hidden_state
        h_BxMxD = h_BxLxD.gather(1, cols_BxM[..., None].expand(-1, -1, h_BxLxD.shape[-1]))
        return lm.lm_head(h_BxMxD)
    logits_BxLxV = lm(input_ids=x_BxL, attention_mask=attn_BxL, position_ids=pos_BxL).logits
    return logits_BxLxV.gather(1, cols_BxM[..., None].expand(-1, -1, logits_BxLxV.shape[-1]))


@torch.inference_mode()
def llada_generate(model, prompt_BxP: torch.Tensor, prompt_attention_BxP: torch.Tensor, mask_id: int,
                   gen_length: int = 32, block_length: int = 32, steps: int = 32,
                   temperature: float = 0.0, generator: torch.Generator | None = None,
                   trace: list | None = None) -> torch.Tensor:
    """Return the `gen_length` generated ids per row (B x gen_length).

    Rows are left-padded prompts; padding is masked out of attention, so each row's result
    equals its one-at-a-time result. If `trace` is a list, the response after every step
    is appended to it (for tests).

    Per step the work is one forward pass, the LM head and a softmax at the still-masked
    positions only, and an argmax only at the k positions that are committed: with
    temperature 0 the confidence of the argmax token is the largest probability, so
    `softmax.amax` ranks the positions exactly as `softmax[argmax]` does. The masked
    columns are tracked as a sorted index tensor (every row has the same number of them),
    so no step synchronises with the host.
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
    resp = x[:, P:]  # a view: writes go into x
    steps_per_block = steps // n_blocks
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    done = torch.iinfo(torch.long).max  # sorts after every column index
    for b in range(n_blocks):
        # At the start of a block all of its columns are masked; they stay sorted ascending.
        idx_BxM = torch.arange(b * block_length, (b + 1) * block_length, device=device).expand(B, -1)
        for k in num_transfer_tokens(block_length, steps_per_block):
            M = idx_BxM.shape[1]
            if k > 0 and M:
                logits_BxMxV = _masked_logits(lm, x, attn, pos, P + idx_BxM).float()
                logits_BxMxV[..., mask_id] = -torch.inf
                probs_BxMxV = F.softmax(logits_BxMxV, dim=-1)
                if temperature == 0:
                    top_BxK = probs_BxMxV.amax(-1).topk(k, dim=-1).indices
                    chosen_BxKxV = logits_BxMxV.gather(1, top_BxK[..., None].expand(-1, -1, logits_BxMxV.shape[-1]))
                    x0_BxK = chosen_BxKxV.argmax(-1)
                else:
                    x0_BxM = _gumbel_argmax(logits_BxMxV, temperature, generator)
                    conf_BxM = probs_BxMxV.gather(-1, x0_BxM[..., None])[..., 0]
                    top_BxK = conf_BxM.topk(k, dim=-1).indices
                    x0_BxK = x0_BxM.gather(1, top_BxK)
                resp.scatter_(1, idx_BxM.gather(1, top_BxK), x0_BxK)  # masked slots only: never re-masks
                idx_BxM = idx_BxM.scatter(1, top_BxK, done).sort(dim=1).values[:, : M - k]
            if trace is not None:
                trace.append(resp.clone())
    return resp
