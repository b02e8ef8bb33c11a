"""Batched decoding of answers: greedy for the ARMs, LLaDA's sampler (or its fast variants) for the MDM."""
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


def _add_stats(stats: dict | None, batch_calls: int, row_calls: list[int]) -> None:
    if stats is not None:
        stats["forward_passes"] = stats.get("forward_passes", 0) + batch_calls
        stats["row_forward_passes"] = stats.get("row_forward_passes", []) + list(row_calls)


@torch.no_grad()
def arm_generate(model, prompts: list[list[int]], ids: TokenIds, max_new_tokens: int = MAX_NEW_TOKENS,
                 stats: dict | None = None) -> list[list[int]]:
    """Greedy decoding (temperature 0) of at most `max_new_tokens`, stopping at EOS/EOT.

    `stats` (optional dict) receives the forward passes: with the key/value cache of
    `generate`, one per generated token (the first also reads the prompt), so a row needs
    its answer's length plus the stop token (at most `max_new_tokens`), and the batch the
    longest row's.
    """
    device = next(model.parameters()).device
    x, attn = left_pad(prompts, ids.pad)
    out = model.generate(input_ids=x.to(device), attention_mask=attn.to(device), do_sample=False,
                         max_new_tokens=max_new_tokens, eos_token_id=list(ids.stop), pad_token_id=ids.pad,
                         temperature=None, top_p=None, top_k=None)
    rows = [row.tolist() for row in out[:, x.shape[1]:]]
    answers = [cut_at_stop(r, ids.stop) for r in rows]
    row_calls = [min(len(a) + 1, max_new_tokens) for a in answers]
    _add_stats(stats, out.shape[1] - x.shape[1], row_calls)
    return answers


def mdm_generate(model, prompts: list[list[int]], ids: TokenIds, gen_length: int = GEN_LENGTH,
                 block_length: int = BLOCK_LENGTH, steps: int = SAMPLER_STEPS,
                 temperature: float = TEMPERATURE, *, remasking: str = "low_confidence",
                 threshold: float | None = None, prefix_cache: bool = False, logits_shift: bool = False,
                 generator: torch.Generator | None = None, stats: dict | None = None) -> list[list[int]]:
    """Answers cut at the first stop token; the keyword options are `sampler.llada_generate`'s.

    `stats` (optional dict) accumulates `forward_passes` (model calls per batch) and
    `row_forward_passes` (per query, the calls it needs alone), over as many calls as it is passed to.
    """
    device = next(model.parameters()).device
    x, attn = left_pad(prompts, ids.pad)
    mine: dict = {}
    out = llada_generate(model, x.to(device), attn.to(device), ids.mask, gen_length=gen_length,
                         block_length=block_length, steps=steps, temperature=temperature, generator=generator,
                         remasking=remasking, threshold=threshold, prefix_cache=prefix_cache,
                         logits_shift=logits_shift, stats=mine)
    _add_stats(stats, mine.get("forward_passes", 0), mine.get("row_forward_passes", []))
    return [cut_at_stop(row.tolist(), ids.stop) for row in out]
