"""Length profiles, `auto` limits and the share a length policy may change (hand-counted)."""

from __future__ import annotations

import numpy as np
import pytest

from kseq.data.lengths import AUTO, LengthProfile, SideLengths, check_length_share
from kseq.errors import KseqError

# 100 lengths: one of 1, two of 2, 96 of 5 and one of 40.
LENGTHS = [1, 2, 2] + [5] * 96 + [40]


def test_profile_counts_longest_percentile_and_over():
    profile = LengthProfile.of(LENGTHS)
    assert profile.total == 100
    assert profile.longest == 40
    assert profile.percentile(0.99) == 5  # 99 of 100 are <= 5
    assert profile.percentile(1.0) == 40
    assert profile.percentile(0.01) == 1
    assert profile.percentile(0.02) == 2
    assert profile.over(5) == 1
    assert profile.over(1) == 99
    assert profile.over(40) == 0
    assert LengthProfile.of(()).longest == 0 and LengthProfile.of(()).total == 0


def test_percentile_agrees_with_numpy_on_random_lengths():
    lengths = np.random.default_rng(0).integers(1, 200, 5000)
    profile = LengthProfile.of(lengths.tolist())
    for share in (0.5, 0.9, 0.99):
        assert profile.percentile(share) == int(np.quantile(lengths, share, method="inverted_cdf"))


def test_merged_profiles_equal_the_profile_of_all():
    merged = LengthProfile.of(LENGTHS[:50]).merged(LengthProfile.of(LENGTHS[50:]))
    assert np.array_equal(merged.counts, LengthProfile.of(LENGTHS).counts)


def test_auto_is_the_longest_within_the_model_capacity():
    profile = LengthProfile.of(LENGTHS)
    assert SideLengths("f", "sources", AUTO, profile).limit == 40
    assert SideLengths("f", "sources", AUTO, profile, capacity=30).limit == 30
    assert SideLengths("f", "sources", 12, profile).limit == 12
    assert SideLengths("f", "sources", AUTO, LengthProfile.of(())).limit == 1


def test_share_over_the_limit_stops_with_the_fix():
    side = SideLengths("data.max_target_length", "targets", 5, LengthProfile.of(LENGTHS))
    with pytest.raises(KseqError) as error:
        check_length_share([side], changed=2, total=100, policy="drop", max_share=0.01)
    assert str(error.value) == (
        "data.max_target_length=5: length policy 'drop' would drop 2 of 100 training pairs "
        "(2.0%, more than data.max_dropped_share=0.01); targets: longest 40, 99th percentile 5 "
        "tokens; --set data.max_target_length=40 keeps them"
    )


def test_share_within_the_limit_says_one_line(capsys):
    side = SideLengths("data.max_target_length", "targets", 5, LengthProfile.of(LENGTHS))
    check_length_share([side], changed=1, total=100, policy="truncate", max_share=0.01)
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("kseq: data.max_target_length=5: length policy 'truncate' truncates 1")
    check_length_share([side], changed=0, total=100, policy="drop", max_share=0.01)
    assert capsys.readouterr().err == ""
