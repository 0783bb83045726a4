"""A seq2seq family's data when the training pairs stream (`kseq.data.streaming`).

What differs from the in-memory path: the vocabulary is learned from the first
`data.vocab_sample` training pairs; bad lines and the length policy are counted by the checking
pass (same messages); the held-out pairs decoded for metrics and the export gate are the first
`STREAM_DECODED_PAIRS` of the validation files; int8 calibration pairs come from the sample.
"""

from __future__ import annotations

from kseq.data import streaming
from kseq.data.lengths import LengthProfile
from kseq.data.shards import data_files
from kseq.errors import KseqError
from kseq.models.family import PreparedData
from kseq.models.seq2seq.pairs import (
    STREAM_DECODED_PAIRS,
    Seq2SeqInfo,
    calibration_pairs,
    check_training_lengths,
    encode_pairs,
    held_out_samples,
    length_sides,
    print_skipped,
    tokenized_pairs,
    warn_about_unknown_tokens,
    with_lengths,
)
from kseq.train.distribute import worker_shard

# Pairs of the sample whose <unk> share is checked (the warning needs no more).
_UNKNOWN_CHECK_PAIRS = 20_000
# Pairs read per calibration pair when only calibration needs them (export, evaluate).
CALIBRATION_POOL = 20


def _length_counts(checks: list[streaming.FileCheck], policy: str) -> dict[str, int]:
    """The counts `kseq.data.parallel.apply_length_policy` reports, summed over files."""
    over = sum(c.over_limits for c in checks)
    return {
        "total": sum(c.pairs for c in checks),
        "kept": sum(c.kept for c in checks),
        "truncated": over if policy == "truncate" else 0,
        "dropped": over if policy == "drop" else 0,
        "source_too_long": sum(c.source_too_long for c in checks),
        "target_too_long": sum(c.target_too_long for c in checks),
    }


def load_stream(family, spec, run_dir=None) -> PreparedData:
    """Streamed training data. `auto` lengths come from the vocabulary sample (the same first
    pairs on every worker, so all workers build one model); the share a length policy changes is
    counted over every training pair by the checking pass."""
    data = spec.data
    train_files, validation_files = data_files(data.train), data_files(data.validation)
    train_format = streaming.common_format(train_files, "train")
    validation_format = streaming.common_format(validation_files, "validation")
    workers, index = worker_shard(spec)
    mine = streaming.worker_files(train_files, workers, index, "train")

    # Every worker learns the vocabulary from the same first pairs of all files; a run being
    # exported or evaluated only draws its calibration pairs from them.
    wanted = data.vocab_sample
    if run_dir:
        wanted = min(wanted, CALIBRATION_POOL * spec.export.calibration_samples)
    sample = streaming.first_pairs(train_files, train_format, wanted)
    tokenizers = family.load_tokenizers(run_dir) if run_dir else family.fit_tokenizers(spec, sample)
    sample_tokens = tokenized_pairs(tokenizers, sample)
    if not run_dir:
        checked_tokens = sample_tokens[:_UNKNOWN_CHECK_PAIRS]
        warn_about_unknown_tokens(
            data.sides(),
            tokenizers,
            [s for s, _ in checked_tokens],
            [t for _, t in checked_tokens],
        )
    spec = with_lengths(
        spec,
        length_sides(
            family,
            spec,
            LengthProfile.of(len(s) for s, _ in sample_tokens),
            LengthProfile.of(len(t) for _, t in sample_tokens),
        ),
    )
    data = spec.data
    lengths = streaming.Lengths(data.max_source_length, data.max_target_length, data.length_policy)

    def checked(files, fmt):
        checks = streaming.check_files(files, fmt, tokenizers, lengths, data.on_error)
        for check in checks:
            print_skipped(check.path, check.skipped, check.messages)
        return checks, _length_counts(checks, data.length_policy)

    train_checks, train_counts = checked(mine, train_format)
    if run_dir is None:  # the facts of every training pair this worker reads
        profiles = [LengthProfile.of(()), LengthProfile.of(())]
        for check in train_checks:
            profiles = [
                profiles[0].merged(check.source_lengths),
                profiles[1].merged(check.target_lengths),
            ]
        check_training_lengths(data, length_sides(family, spec, *profiles), train_counts)
    validation_checks, validation_counts = checked(validation_files, validation_format)
    if not train_counts["kept"] or not validation_counts["kept"]:
        raise KseqError("data: no training or validation pair is left after the length policy")

    def dataset(files, fmt, pairs, shuffle):
        return streaming.stream_dataset(
            files,
            fmt,
            tokenizers,
            lengths,
            spec.train.batch_size,
            pairs,
            shuffle=shuffle,
            seed=spec.train.seed,
            shuffle_buffer=data.shuffle_buffer,
            bucketing=data.bucketing,
        )

    validation_pairs = streaming.first_pairs(
        validation_files, validation_format, STREAM_DECODED_PAIRS
    )
    validation_ids, _ = encode_pairs(data, tokenizers, validation_pairs)
    # Calibration takes pairs spread over the sample: encode only those.
    step = max(1, len(sample) // max(1, spec.export.calibration_samples))
    spread_ids, _ = encode_pairs(data, tokenizers, sample[::step])
    return PreparedData(
        spec=spec,
        train=dataset(mine, train_format, train_counts["kept"], True),
        validation=dataset(validation_files, validation_format, validation_counts["kept"], False),
        samples=held_out_samples(validation_ids),
        calibration=calibration_pairs(spec, spread_ids),
        info=Seq2SeqInfo(
            tokenizers=tokenizers,
            validation_pairs=validation_pairs,
            validation_ids=validation_ids,
            length_counts={"train": train_counts, "validation": validation_counts},
            streamed={
                "train_files": len(mine),
                "train_pairs": train_counts["kept"],
                "validation_pairs": validation_counts["kept"],
                "vocabulary_sample": len(sample),
            },
        ),
    )
