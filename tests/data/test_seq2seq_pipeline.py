"""Teacher-forcing tf.data pipeline: exact values, bucketing, shuffling, padding report."""

import numpy as np
import pytest
import tensorflow as tf

from kseq.data.dates import date_splits
from kseq.data.pipeline import (
    auto_bucket_boundaries,
    make_dataset,
    padding_fraction,
    padding_report,
)
from kseq.errors import KseqError
from kseq.tokenizers.kinds import make_tokenizer


@pytest.fixture(scope="module")
def date_ids():
    train, _ = date_splits(1200, 0, seed=2)
    src = make_tokenizer("char").fit([s for s, _ in train])
    tgt = make_tokenizer("char").fit([t for _, t in train])
    return src.encode([s for s, _ in train]), tgt.encode([t for _, t in train])


def _strip(row):
    row = list(row)
    while row and row[-1] == 0:
        row.pop()
    return row


def _examples(ds):
    """The (source, target_in, target_out) triples of one epoch, padding removed."""
    out = []
    for features, target_out in ds:
        for s, ti, to in zip(
            features["source"].numpy(),
            features["target_in"].numpy(),
            target_out.numpy(),
            strict=True,
        ):
            out.append((tuple(_strip(s)), tuple(_strip(ti)), tuple(_strip(to))))
    return out


def test_exact_values_bos_eos_and_zero_padding():
    ds = make_dataset([[5, 6, 7], [8]], [[9], [10, 11, 12]], 2, shuffle=False, bucketing=False)
    batches = list(ds)
    assert len(batches) == 1
    features, target_out = batches[0]
    assert set(features) == {"source", "target_in"}
    for t in (features["source"], features["target_in"], target_out):
        assert t.dtype == tf.int32
    np.testing.assert_array_equal(features["source"], [[5, 6, 7], [8, 0, 0]])
    np.testing.assert_array_equal(features["target_in"], [[2, 9, 0, 0], [2, 10, 11, 12]])
    np.testing.assert_array_equal(target_out, [[9, 3, 0, 0], [10, 11, 12, 3]])
    assert padding_fraction(ds) == pytest.approx(6 / 22)


def test_custom_bos_eos_and_element_spec():
    ds = make_dataset([[5]], [[9, 9]], 4, bos_id=7, eos_id=8, shuffle=False)
    features, target_out = next(iter(ds))
    assert features["target_in"].numpy().tolist() == [[7, 9, 9]]
    assert target_out.numpy().tolist() == [[9, 9, 8]]
    spec = ds.element_spec
    assert spec[0]["source"].shape.as_list() == [None, None]
    assert spec[1].shape.as_list() == [None, None]


def test_every_example_appears_once_per_epoch_with_bucketing(date_ids):
    sources, targets = date_ids
    ds = make_dataset(sources, targets, 32, seed=1)
    got = sorted(_examples(ds))
    want = sorted((tuple(s), (2, *t), (*t, 3)) for s, t in zip(sources, targets, strict=True))
    assert got == want
    batch_sizes = [int(f["source"].shape[0]) for f, _ in ds]
    assert max(batch_sizes) == 32 and sum(batch_sizes) == len(sources)


def test_shuffle_is_seeded_and_reshuffles_each_epoch(date_ids):
    sources, targets = date_ids
    a = make_dataset(sources, targets, 16, seed=3, bucketing=False)
    b = make_dataset(sources, targets, 16, seed=3, bucketing=False)
    first = _examples(a)
    assert first == _examples(b)
    assert first != _examples(a)  # second epoch, new order
    assert first != _examples(make_dataset(sources, targets, 16, seed=4, bucketing=False))
    unshuffled = _examples(make_dataset(sources, targets, 16, shuffle=False, bucketing=False))
    assert [s for s, _, _ in unshuffled] == [tuple(s) for s in sources]


def test_bucketing_reduces_padding(date_ids):
    sources, targets = date_ids
    report = padding_report(sources, targets, batch_size=32, seed=0)
    assert set(report) == {"bucketed", "unbucketed"}
    assert report["unbucketed"] > 0.3
    assert report["bucketed"] < 0.12
    assert report["bucketed"] < report["unbucketed"] / 3
    explicit = padding_fraction(make_dataset(sources, targets, 32, bucket_boundaries=[20, 40]))
    assert report["bucketed"] < explicit < report["unbucketed"]


def test_drop_remainder_gives_full_batches(date_ids):
    sources, targets = date_ids
    ds = make_dataset(sources, targets, 50, drop_remainder=True)
    assert {int(f["source"].shape[0]) for f, _ in ds} == {50}


def test_auto_bucket_boundaries():
    lengths = list(range(1, 101)) * 10  # 1000 examples, lengths 1..100
    assert auto_bucket_boundaries(lengths, batch_size=25) == [11, 21, 31, 41, 51, 61, 71, 81, 91]
    assert auto_bucket_boundaries(lengths, batch_size=1000) == []
    assert auto_bucket_boundaries([5] * 500, batch_size=4) == []


def test_bad_input_is_reported():
    with pytest.raises(KseqError, match="2 sources, 1 targets"):
        make_dataset([[1], [2]], [[3]], 2)
    with pytest.raises(KseqError, match="0 is padding"):
        make_dataset([[4, 0]], [[5]], 2)
    with pytest.raises(KseqError, match="source #1 is empty"):
        make_dataset([[4], []], [[5], [6]], 2)
    with pytest.raises(KseqError, match="batch_size must be a positive integer"):
        make_dataset([[4]], [[5]], 0)
    with pytest.raises(KseqError, match="strictly increasing"):
        make_dataset([[4]], [[5]], 1, bucket_boundaries=[5, 5])
    with pytest.raises(KseqError, match="0 examples"):
        make_dataset([], [], 1)
