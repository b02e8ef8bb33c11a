"""Table 4 of the paper against the exact Cantelli bounds."""
import numpy as np
import pytest

from theory.cantelli import cantelli_bound
from theory.table4 import TABLE4_CS, TABLE4_DELTAS, TABLE4_MS, mismatches, printed_table


@pytest.fixture(scope="module")
def exact():
    return {m: np.array([[cantelli_bound(d, c, m) for c in TABLE4_CS] for d in TABLE4_DELTAS])
            for m in TABLE4_MS}


def test_every_entry_within_rounding_of_printed(exact):
    for m in TABLE4_MS:
        assert np.max(np.abs(exact[m] - printed_table(m))) < 1e-3


def test_found_convention_reproduces_all_60(exact):
    assert mismatches(exact, "round(4)-then-truncate(3)") == []


def test_plain_rounding_conventions_do_not(exact):
    assert len(mismatches(exact, "round-half-even(3)")) == 27
    bad = {(d["m"], d["delta"], d["c"]) for d in mismatches(exact, "truncate(3)")}
    assert bad == {(64, 10, 0.25), (128, 40, 0.20)}


def test_worked_example_of_appendix_c3():
    assert cantelli_bound(20, 0.3, 128) == pytest.approx(0.938, abs=5e-4)
