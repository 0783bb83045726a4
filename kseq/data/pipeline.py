"""tf.data pipelines for teacher-forced seq2seq training.

Each element is `({"source": (B, S) int32, "target_in": (B, T) int32}, target_out (B, T) int32)`
with `target_in = [<s>] + target` and `target_out = target + [</s>]`, padded with 0 (`<pad>`) to
the longest sequence of the batch. With bucketing, examples are grouped by length
`max(len(source), len(target) + 1)` into buckets whose boundaries are length quantiles of the data,
so a batch holds sequences of similar length and carries little padding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from kseq.errors import KseqError
from kseq.tokenizers.special_tokens import BOS_ID, EOS_ID, PAD_ID


def _ragged(seqs: Sequence[Sequence[int]], what: str) -> tf.RaggedTensor:
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    flat = np.fromiter((i for s in seqs for i in s), dtype=np.int64, count=int(lengths.sum()))
    if flat.size and (flat.min() < 1 or flat.max() > np.iinfo(np.int32).max):
        bad = int(flat.min()) if flat.min() < 1 else int(flat.max())
        raise KseqError(
            f"{what} ids must be in 1..2**31-1 (0 is padding); Received: an id equal to {bad}"
        )
    return tf.RaggedTensor.from_row_lengths(flat.astype(np.int32), lengths)


def example_lengths(
    sources: Sequence[Sequence[int]], targets: Sequence[Sequence[int]]
) -> np.ndarray:
    """Bucketing key per example: max(len(source), len(target) + 1)."""
    return np.array([max(len(s), len(t) + 1) for s, t in zip(sources, targets, strict=True)])


def auto_bucket_boundaries(
    lengths: Sequence[int], batch_size: int, max_buckets: int = 16, min_batches_per_bucket: int = 4
) -> list[int]:
    """Bucket boundaries at length quantiles: up to `max_buckets` buckets of about equal size, each
    holding at least `min_batches_per_bucket` batches' worth of examples (fewer buckets for small
    data). Returns the sorted, strictly increasing upper-exclusive boundaries (possibly empty)."""
    lengths = np.sort(np.asarray(lengths))
    n = len(lengths)
    k = int(max(1, min(max_buckets, n // max(1, batch_size * min_batches_per_bucket))))
    cuts = {int(lengths[(n * i) // k]) for i in range(1, k)}
    return sorted(c for c in cuts if c > lengths[0])


def make_dataset(
    sources: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    batch_size: int,
    *,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
    shuffle: bool = True,
    seed: int = 0,
    bucketing: bool = True,
    bucket_boundaries: Sequence[int] | None = None,
    shuffle_buffer: int | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """A teacher-forcing dataset from token id lists (no `<s>`/`</s>` in them).

    Args:
        sources, targets: one id list per example; ids >= 1 (0 is padding); no empty source.
        batch_size: examples per batch.
        bos_id, eos_id: ids put before `target_in` / after `target_out`.
        shuffle: shuffle examples each epoch (deterministic from `seed`).
        seed: shuffle seed.
        bucketing: group examples of similar length (see module docstring).
        bucket_boundaries: explicit upper-exclusive boundaries instead of the automatic ones.
        shuffle_buffer: shuffle buffer size; default the whole data set.
        drop_remainder: drop incomplete batches (every batch then has exactly `batch_size` rows).

    Returns:
        tf.data.Dataset of `({"source": (B, S), "target_in": (B, T)}, target_out (B, T))`, int32.
    """
    if len(sources) != len(targets):
        raise KseqError(
            f"sources and targets differ in length; Received: {len(sources)} sources, "
            f"{len(targets)} targets"
        )
    if not sources:
        raise KseqError("cannot build a dataset from 0 examples")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise KseqError(
            f"batch_size must be a positive integer; Received: batch_size={batch_size!r}"
        )
    empty = next((i for i, s in enumerate(sources) if len(s) == 0), None)
    if empty is not None:
        raise KseqError(f"source #{empty} is empty (0 tokens); drop such examples first")

    n = len(sources)
    slices = (_ragged(sources, "source"), _ragged(targets, "target"))
    ds = tf.data.Dataset.from_tensor_slices(slices)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer or n, seed=seed, reshuffle_each_iteration=True)

    bos = tf.constant([bos_id], tf.int32)
    eos = tf.constant([eos_id], tf.int32)

    def to_example(source, target):
        features = {"source": source, "target_in": tf.concat([bos, target], 0)}
        return features, tf.concat([target, eos], 0)

    ds = ds.map(to_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    padded_shapes = ({"source": [None], "target_in": [None]}, [None])

    if bucketing:
        if bucket_boundaries is None:
            lengths = example_lengths(sources, targets)
            bucket_boundaries = auto_bucket_boundaries(lengths, batch_size)
        bucket_boundaries = [int(b) for b in bucket_boundaries]
        if any(b <= a for a, b in zip(bucket_boundaries, bucket_boundaries[1:], strict=False)):
            raise KseqError(
                f"bucket_boundaries must be strictly increasing; Received: {bucket_boundaries}"
            )
    if bucketing and bucket_boundaries:
        # Which bucket an example joins depends only on its length, so the batch count of an
        # epoch is known: Keras can show "N/N" from the first epoch on.
        per_bucket = np.bincount(
            np.searchsorted(bucket_boundaries, example_lengths(sources, targets), side="right"),
            minlength=len(bucket_boundaries) + 1,
        )
        rounding = np.floor_divide if drop_remainder else lambda c, b: -(-c // b)
        batches = int(sum(rounding(int(c), batch_size) for c in per_bucket))

        def length(features, target_out):
            return tf.maximum(tf.shape(features["source"])[0], tf.shape(target_out)[0])

        ds = ds.bucket_by_sequence_length(
            length,
            bucket_boundaries=bucket_boundaries,
            bucket_batch_sizes=[batch_size] * (len(bucket_boundaries) + 1),
            padded_shapes=padded_shapes,
            drop_remainder=drop_remainder,
        )
        ds = ds.apply(tf.data.experimental.assert_cardinality(batches))
    else:
        ds = ds.padded_batch(batch_size, padded_shapes=padded_shapes, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)


def padding_fraction(dataset: tf.data.Dataset) -> float:
    """Fraction of padding (id 0) among all positions of source, target_in and target_out, over one
    pass of `dataset`."""
    pad = total = 0
    for features, target_out in dataset:
        for t in (features["source"], features["target_in"], target_out):
            pad += int(tf.reduce_sum(tf.cast(tf.equal(t, PAD_ID), tf.int64)))
            total += int(tf.size(t, out_type=tf.int64))
    return pad / total if total else 0.0


def padding_report(
    sources: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    batch_size: int,
    seed: int = 0,
    bucket_boundaries: Sequence[int] | None = None,
) -> dict[str, float]:
    """Padding fraction of one shuffled epoch with and without bucketing:
    `{"bucketed": f, "unbucketed": f}`."""
    return {
        name: padding_fraction(
            make_dataset(
                sources,
                targets,
                batch_size,
                seed=seed,
                bucketing=bucketing,
                bucket_boundaries=bucket_boundaries,
            )
        )
        for name, bucketing in (("bucketed", True), ("unbucketed", False))
    }
