"""Placements of the toy dataset (Section 4.3, Appendix F.1).

A placement is a row (letter, lower_pos, upper_pos): a sequence of length L holding the
lowercase of `letter` at `lower_pos`, its uppercase at `upper_pos`, and pad everywhere else.
Forward placements (the training set) have lower_pos < upper_pos ("a ... A"); reverse
placements have upper_pos < lower_pos ("A ... a") and are never trained on. Each set has
26 * C(L, 2) rows, ordered by letter, then first position, then second position.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from toy_jax import vocab

LETTER, LOWER_POS, UPPER_POS = 0, 1, 2  # column indices of a placements array


def _check_L(L: int) -> None:
    if not isinstance(L, (int, np.integer)) or L < 2:
        raise ValueError(f"sequence length L must be an integer >= 2, got {L!r}")


def n_placements(L: int) -> int:
    """26 * C(L, 2): the size of the forward set and of the reverse set."""
    _check_L(L)
    return vocab.N_LETTERS * L * (L - 1) // 2


def position_pairs(L: int) -> np.ndarray:
    """All (i, j) with 0 <= i < j < L, shape (C(L,2), 2), lexicographic order."""
    _check_L(L)
    i, j = np.triu_indices(L, k=1)
    return np.stack([i, j], axis=1).astype(np.int32)


def forward_placements(L: int) -> np.ndarray:
    """Training set: (letter, lower_pos, upper_pos) with lower_pos < upper_pos, int32 (N, 3)."""
    pairs = position_pairs(L)
    letters = np.repeat(np.arange(vocab.N_LETTERS, dtype=np.int32), len(pairs))
    pos = np.tile(pairs, (vocab.N_LETTERS, 1))
    return np.column_stack([letters, pos[:, 0], pos[:, 1]]).astype(np.int32)


def reverse_placements(L: int) -> np.ndarray:
    """Reverse set: the forward placements with the two positions swapped (upper first)."""
    fwd = forward_placements(L)
    return fwd[:, [LETTER, UPPER_POS, LOWER_POS]].copy()


def make_sequences(placements_Nx3, L: int):
    """Token ids (N, L) of placements; works on numpy and jax arrays (jit-friendly)."""
    xp = jnp if isinstance(placements_Nx3, jnp.ndarray) else np
    letter = placements_Nx3[:, LETTER]
    pos = xp.arange(L)[None, :]
    lo = placements_Nx3[:, LOWER_POS][:, None]
    up = placements_Nx3[:, UPPER_POS][:, None]
    x = xp.where(pos == lo, (vocab.LOWER0 + letter)[:, None], vocab.PAD)
    x = xp.where(pos == up, (vocab.UPPER0 + letter)[:, None], x)
    return x.astype(xp.int32)


def query_spec(placements_Nx3, direction: str):
    """Cue/target of the evaluation query on each placement.

    forward: cue = the lowercase, target = its uppercase (which comes later);
    reverse: cue = the uppercase, target = its lowercase (which comes later).
    Returns (cue_pos, target_pos, cue_id, target_id), each (N,).
    """
    letter = placements_Nx3[:, LETTER]
    lo, up = placements_Nx3[:, LOWER_POS], placements_Nx3[:, UPPER_POS]
    if direction == "forward":
        return lo, up, vocab.LOWER0 + letter, vocab.UPPER0 + letter
    if direction == "reverse":
        return up, lo, vocab.UPPER0 + letter, vocab.LOWER0 + letter
    raise ValueError(f"direction must be 'forward' or 'reverse', got {direction!r}")


def placements(L: int, direction: str) -> np.ndarray:
    """The forward (training) or reverse placement set."""
    if direction == "forward":
        return forward_placements(L)
    if direction == "reverse":
        return reverse_placements(L)
    raise ValueError(f"direction must be 'forward' or 'reverse', got {direction!r}")
