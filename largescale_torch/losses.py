"""Training objectives: next-token CE for the ARM, LLaDA's SFT objective for the MDM (Section 2.1).

The MDM loss reads the prediction for token i at index i; for Dream, whose logits are shifted
by one like an ARM's, `align_logits` re-indexes them first (its SFT loss is the same shifted CE).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from largescale_torch.constants import MASK_EPS


def arm_loss(logits_BxLxV: torch.Tensor, labels_BxL: torch.Tensor) -> torch.Tensor:
    """L_ARM = -sum_i log p(x_i | x_<i), averaged over completion tokens (labels != -100)."""
    logits = logits_BxLxV[:, :-1].float()
    targets = labels_BxL[:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)


def align_logits(logits_BxLxV: torch.Tensor, shift: bool) -> torch.Tensor:
    """Logits re-indexed so that index i holds the prediction for token i.

    shift=False (LLaDA): unchanged. shift=True (Dream, whose logits at i predict token i + 1):
    out[:, i] = logits[:, i - 1] for i >= 1 and out[:, 0] = logits[:, 0], as Dream's sampler does
    (`torch.cat([logits[:, :1], logits[:, :-1]], 1)`); position 0 is a prompt token, never scored.
    """
    if not shift:
        return logits_BxLxV
    return torch.cat([logits_BxLxV[:, :1], logits_BxLxV[:, :-1]], dim=1)


def maskable_positions(allowed_BxL: torch.Tensor, attention_BxL: torch.Tensor, shift: bool) -> torch.Tensor:
    """The positions of `allowed_BxL` that may be masked and scored: those with a prediction.

    shift=False (LLaDA): all of them. shift=True (Dream): not a row's first real token, whose
    prediction would sit one column earlier, on left padding (or at the token itself in
    column 0, `align_logits`): Dream cannot predict its first token. Only the "pretrain"
    objective, which masks the prompt too, reaches that position.
    """
    allowed_BxL = allowed_BxL.bool()
    if not shift:
        return allowed_BxL
    first_real_BxL = attention_BxL.bool() & (attention_BxL.long().cumsum(-1) == 1)
    return allowed_BxL & ~first_real_BxL


def mdm_corrupt(input_ids_BxL: torch.Tensor, response_BxL: torch.Tensor, mask_id: int,
                eps: float = MASK_EPS, generator: torch.Generator | None = None):
    """Forward process of LLaDA's SFT: t ~ U[0,1], p_mask = (1 - eps) t + eps.

    Each response token is replaced by [M] independently with probability p_mask; prompt
    (and padding) tokens are never masked. Returns (noisy ids, masked positions, p_mask_B).
    """
    B, L = input_ids_BxL.shape
    device = input_ids_BxL.device
    t_B = torch.rand(B, generator=generator, device="cpu").to(device)
    p_mask_B = (1.0 - eps) * t_B + eps
    u_BxL = torch.rand(B, L, generator=generator, device="cpu").to(device)
    masked_BxL = (u_BxL < p_mask_B[:, None]) & response_BxL
    noisy = torch.where(masked_BxL, torch.full_like(input_ids_BxL, mask_id), input_ids_BxL)
    return noisy, masked_BxL, p_mask_B


def mdm_loss(logits_BxLxV: torch.Tensor, input_ids_BxL: torch.Tensor, masked_BxL: torch.Tensor,
             p_mask_B: torch.Tensor, response_BxL: torch.Tensor) -> torch.Tensor:
    """L_MDM = E[ (1/|r|) sum_{i masked} -log p(x_i | x^t) / p_mask ], mean over the batch.

    The 1/t weighting of Section 2.1's L_MDM with t -> p_mask, normalised by the response
    length |r| as in LLaDA's SFT code.
    """
    ce_BxL = F.cross_entropy(logits_BxLxV.float().transpose(1, 2), input_ids_BxL, reduction="none")
    weight_BxL = masked_BxL.float() / p_mask_B[:, None]
    per_row_B = (ce_BxL * weight_BxL).sum(-1) / response_BxL.sum(-1).clamp(min=1)
    return per_row_B.mean()


def mdm_pretrain_corrupt(input_ids_BxL: torch.Tensor, attention_BxL: torch.Tensor, mask_id: int,
                         eps: float = MASK_EPS, generator: torch.Generator | None = None):
    """Forward process of LLaDA's pretraining: t ~ U[0,1], p_mask = (1 - eps) t + eps, and every
    real token of the sequence (prompt and answer alike; padding excluded) replaced by [M]
    independently with probability p_mask (LLaDA's `forward_process`, Nie et al. 2025 Alg. 1).
    """
    return mdm_corrupt(input_ids_BxL, attention_BxL.bool(), mask_id, eps, generator)


def mdm_pretrain_loss(logits_BxLxV: torch.Tensor, input_ids_BxL: torch.Tensor, masked_BxL: torch.Tensor,
                      p_mask_B: torch.Tensor, attention_BxL: torch.Tensor) -> torch.Tensor:
    """L_pre = E[ (1/L) sum_{i masked} -log p(x_i | x^t) / p_mask ], mean over the batch.

    LLaDA's pretraining loss (Section 2.1's L_MDM over the whole sequence): its code divides the
    summed weighted CE by B * L; with padding, L is each row's number of real tokens.
    """
    return mdm_loss(logits_BxLxV, input_ids_BxL, masked_BxL, p_mask_B, attention_BxL.bool())
