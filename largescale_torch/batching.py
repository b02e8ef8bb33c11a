"""Tokenising examples and laying out batches for the ARM and the MDM.

ARM training rows are right-padded: [prompt][completion][EOS][pad...]; the labels are the
completion and EOS only. MDM rows are left-padded so the response region is aligned:
[pad...][prompt][response of exactly `gen_length` tokens], where the response is the
completion followed by EOS up to `gen_length` (LLaDA's SFT convention of EOS padding as part
of the answer). Padding is excluded from attention by the attention mask, and position ids
restart at the first real token, so a row's logits do not depend on its batch mates.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Encoded:
    prompt: tuple[int, ...]
    completion: tuple[int, ...]


def encode(tokenizer, prompt: str, target: str) -> Encoded:
    """Prompt with the tokenizer's own special tokens (e.g. BOS); completion as " " + target."""
    p = tokenizer(prompt).input_ids
    c = tokenizer(" " + target, add_special_tokens=False).input_ids
    if not p or not c:
        raise ValueError(f"empty tokenisation of {prompt!r} / {target!r}")
    return Encoded(tuple(p), tuple(c))


def positions_from_mask(attention_BxL: torch.Tensor) -> torch.Tensor:
    return (attention_BxL.long().cumsum(-1) - 1).clamp(min=0)


def arm_train_batch(rows: list[Encoded], pad_id: int, eos_id: int) -> dict[str, torch.Tensor]:
    seqs = [list(r.prompt) + list(r.completion) + [eos_id] for r in rows]
    L = max(len(s) for s in seqs)
    ids = torch.full((len(rows), L), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), L), -100, dtype=torch.long)
    attn = torch.zeros((len(rows), L), dtype=torch.long)
    for i, (r, s) in enumerate(zip(rows, seqs)):
        ids[i, : len(s)] = torch.tensor(s)
        attn[i, : len(s)] = 1
        labels[i, len(r.prompt) : len(s)] = torch.tensor(s[len(r.prompt) :])
    return {"input_ids": ids, "attention_mask": attn, "labels": labels}


def left_pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    L = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), L), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), L), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, L - len(s) :] = torch.tensor(s)
            attn[i, L - len(s) :] = 1
    return ids, attn


def mdm_response(completion: tuple[int, ...], eos_id: int, gen_length: int) -> list[int]:
    if len(completion) > gen_length:
        raise ValueError(f"completion of {len(completion)} tokens does not fit gen_length={gen_length}")
    return list(completion) + [eos_id] * (gen_length - len(completion))


def mdm_train_batch(rows: list[Encoded], pad_id: int, eos_id: int, gen_length: int) -> dict[str, torch.Tensor]:
    """`response_mask` marks the gen_length response positions (the only maskable ones)."""
    seqs = [list(r.prompt) + mdm_response(r.completion, eos_id, gen_length) for r in rows]
    ids, attn = left_pad(seqs, pad_id)
    response = torch.zeros_like(ids, dtype=torch.bool)
    response[:, -gen_length:] = True
    return {"input_ids": ids, "attention_mask": attn, "position_ids": positions_from_mask(attn),
            "response_mask": response}
