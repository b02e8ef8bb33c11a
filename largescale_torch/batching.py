"""Tokenising examples and laying out batches for the ARM and the MDM.

ARM training rows are right-padded: [prompt][completion][END][pad...]; the labels are the
completion and END only. MDM rows are left-padded so the response region is aligned:
[pad...][prompt][response], where the response is the completion, END, then EOS up to the
longest completion of the mini-batch (LLaDA's SFT guideline: "<EOS>" padding is part of the
answer, to the longest answer in the batch) or, with `pad_to="gen_length"`, up to 32 tokens.
END is the end-of-turn token under a chat template (`<|eot_id|>`, `<|im_end|>`), else EOS.
Padding is excluded from attention by the attention mask, and position ids restart at the
first real token, so a row's logits do not depend on its batch mates.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from largescale_torch.constants import ConfigError


@dataclass(frozen=True)
class Encoded:
    prompt: tuple[int, ...]
    completion: tuple[int, ...]


def chat_prompt_text(tokenizer, prompt: str) -> str:
    """The model's chat template around one user turn, with the assistant header appended."""
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError("the tokenizer has no chat template; pass --no-chat-template")
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                         tokenize=False)


def turn_end_id(tokenizer) -> int:
    """The token the chat template puts right after an assistant answer (e.g. <|eot_id|>)."""
    sentinel = "XyZzY"
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": sentinel}], tokenize=False)
    after = text[text.index(sentinel) + len(sentinel):]
    ids = tokenizer(after, add_special_tokens=False).input_ids
    if not ids or ids[0] not in tokenizer.added_tokens_decoder:
        raise ValueError(f"cannot find the end-of-turn token of the chat template (after answer: {after[:20]!r})")
    return int(ids[0])


def encode(tokenizer, prompt: str, target: str, chat: bool = False) -> Encoded:
    """Token ids of one query and its answer (the end token is added by the collators).

    `chat=False`: the prompt with the tokenizer's own special tokens, completion " " + target.
    `chat=True`: the prompt inside the chat template (one user turn plus the assistant
    header, exactly as the template renders it; no second BOS), completion = target.
    """
    if chat:
        p = tokenizer(chat_prompt_text(tokenizer, prompt), add_special_tokens=False).input_ids
        c = tokenizer(target, add_special_tokens=False).input_ids
    else:
        p = tokenizer(prompt).input_ids
        c = tokenizer(" " + target, add_special_tokens=False).input_ids
    if not p or not c:
        raise ValueError(f"empty tokenisation of {prompt!r} / {target!r}")
    return Encoded(tuple(p), tuple(c))


def positions_from_mask(attention_BxL: torch.Tensor) -> torch.Tensor:
    return (attention_BxL.long().cumsum(-1) - 1).clamp(min=0)


def arm_train_batch(rows: list[Encoded], pad_id: int, eos_id: int, end_id: int | None = None
                    ) -> dict[str, torch.Tensor]:
    """Right-padded rows; `end_id` (default EOS) closes each answer and is supervised."""
    end = eos_id if end_id is None else end_id
    seqs = [list(r.prompt) + list(r.completion) + [end] for r in rows]
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


MDM_PAD_TO = ("batch", "gen_length")


def mdm_response(completion: tuple[int, ...], eos_id: int, gen_length: int, end_id: int | None = None,
                 length: int | None = None) -> list[int]:
    """completion + [end] (if END differs from EOS) + EOS up to `length` (default gen_length)."""
    body = list(completion) + ([end_id] if end_id is not None and end_id != eos_id else [])
    if len(body) > gen_length:
        raise ValueError(f"completion of {len(body)} tokens does not fit gen_length={gen_length}")
    length = gen_length if length is None else length
    return body + [eos_id] * (length - len(body))


def mdm_response_length(rows: list[Encoded], eos_id: int, gen_length: int, end_id: int | None = None,
                        pad_to: str = "batch") -> int:
    """Response length of a mini-batch: longest completion + its END/EOS token, or gen_length."""
    if pad_to not in MDM_PAD_TO:
        raise ValueError(f"unknown MDM padding {pad_to!r}; choose one of {', '.join(MDM_PAD_TO)}")
    if pad_to == "gen_length":
        return gen_length
    extra = 2 if end_id is not None and end_id != eos_id else 1
    return min(gen_length, max(len(r.completion) for r in rows) + extra)


def mdm_train_batch(rows: list[Encoded], pad_id: int, eos_id: int, gen_length: int, end_id: int | None = None,
                    pad_to: str = "batch") -> dict[str, torch.Tensor]:
    """`response_mask` marks the response positions (the only maskable ones).

    pad_to="batch": every answer is closed by END, then EOS-padded to the longest answer of
    this mini-batch plus one EOS (LLaDA's SFT guideline); "gen_length": EOS up to gen_length.
    """
    R = mdm_response_length(rows, eos_id, gen_length, end_id, pad_to)
    seqs = [list(r.prompt) + mdm_response(r.completion, eos_id, gen_length, end_id, R) for r in rows]
    ids, attn = left_pad(seqs, pad_id)
    response = torch.zeros_like(ids, dtype=torch.bool)
    response[:, -R:] = True
    return {"input_ids": ids, "attention_mask": attn, "position_ids": positions_from_mask(attn),
            "response_mask": response}
