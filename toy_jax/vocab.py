"""Token ids of the toy experiment (Section 4.3), defined once.

id 0 is the pad symbol `0`, ids 1..26 are `a`..`z`, ids 27..52 are `A`..`Z`, id 53 is the
mask `[M]`. `[M]` is the last id, so the output head predicts only the first `N_TARGETS`
ids (a target is never `[M]`; RADD likewise drops the mask column from its output).
"""
from __future__ import annotations

import string

PAD = 0
N_LETTERS = 26
LOWER0 = 1  # id of 'a'
UPPER0 = LOWER0 + N_LETTERS  # id of 'A'
MASK = UPPER0 + N_LETTERS  # id of '[M]' (53)
VOCAB_SIZE = MASK + 1  # 54 input ids
N_TARGETS = MASK  # 53 output classes: pad and the 52 letters

_CHARS = "0" + string.ascii_lowercase + string.ascii_uppercase


def lower_id(letter: int) -> int:
    """Token id of the lowercase of letter index 0..25."""
    return LOWER0 + letter


def upper_id(letter: int) -> int:
    """Token id of the uppercase of letter index 0..25."""
    return UPPER0 + letter


def decode(ids) -> str:
    """Readable string of a 1-D id sequence, e.g. 'a0A' or '[M]0B'."""
    return "".join("[M]" if int(i) == MASK else _CHARS[int(i)] for i in ids)


def encode(text: str) -> list[int]:
    """Inverse of `decode` (accepts '[M]')."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("[M]", i):
            out.append(MASK)
            i += 3
        else:
            out.append(_CHARS.index(text[i]))
            i += 1
    return out
