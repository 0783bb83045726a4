"""The one validation split (`kseq.data.split.hold_out`) the families share."""

import numpy as np
import pytest

from kseq.data.split import hold_out
from kseq.errors import KseqError


def test_held_out_share_is_rounded_and_disjoint():
    kept, held = hold_out(10, 0.25, seed=3, too_few="x")
    assert len(held) == 2 and len(kept) == 8  # round(2.5) is 2
    assert sorted(np.concatenate([kept, held]).tolist()) == list(range(10))
    order = np.random.default_rng(3).permutation(10)
    assert held.tolist() == order[:2].tolist() and kept.tolist() == order[2:].tolist()
    again = hold_out(10, 0.25, seed=3, too_few="x")
    assert [a.tolist() for a in again] == [kept.tolist(), held.tolist()]


def test_at_least_one_held_out_and_something_left():
    assert len(hold_out(5, 0.01, seed=0, too_few="x")[1]) == 1
    with pytest.raises(KseqError, match="^too few$"):
        hold_out(1, 0.5, seed=0, too_few="too few")
    with pytest.raises(KseqError):
        hold_out(3, 0.9, seed=0, too_few="too few")
