import math

import numpy as np
import pytest

from toy_jax import data, vocab


@pytest.mark.parametrize("L", [2, 3, 7])
def test_counts_and_disjointness(L):
    fwd, rev = data.forward_placements(L), data.reverse_placements(L)
    n = 26 * math.comb(L, 2)
    assert len(fwd) == len(rev) == n == data.n_placements(L)
    xf, xr = data.make_sequences(fwd, L), data.make_sequences(rev, L)
    sf, sr = {tuple(r) for r in xf}, {tuple(r) for r in xr}
    assert len(sf) == len(sr) == n  # all distinct
    assert not sf & sr  # never train on a reverse placement
    for x, upper_first in ((xf, False), (xr, True)):
        assert ((x != vocab.PAD).sum(1) == 2).all()  # exactly one pair, pad elsewhere
        lo = np.argmax((x >= vocab.LOWER0) & (x < vocab.UPPER0), axis=1)
        up = np.argmax((x >= vocab.UPPER0) & (x < vocab.MASK), axis=1)
        assert ((x[np.arange(n), up] - x[np.arange(n), lo]) == vocab.N_LETTERS).all()
        assert ((up < lo) == upper_first).all()


def test_query_spec_and_vocab():
    L = 5
    fwd = data.forward_placements(L)
    cue, tgt, cue_id, tgt_id = data.query_spec(fwd, "forward")
    assert (cue < tgt).all() and (tgt_id - cue_id == 26).all()
    cue, tgt, cue_id, tgt_id = data.query_spec(data.reverse_placements(L), "reverse")
    assert (cue < tgt).all() and (cue_id - tgt_id == 26).all()
    assert vocab.decode(data.make_sequences(fwd[:1], L)[0]) == "aA000"
    assert vocab.encode("a0[M]Z") == [1, 0, vocab.MASK, 52]
    assert vocab.N_TARGETS == vocab.MASK == vocab.VOCAB_SIZE - 1


@pytest.mark.parametrize("L", [1, 0, 2.5])
def test_bad_L(L):
    with pytest.raises(ValueError):
        data.forward_placements(L)
