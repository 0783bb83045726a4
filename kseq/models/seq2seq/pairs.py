"""Sequence pairs as the seq2seq families read them: tokenizers, id padding, reading and
encoding pairs, their lengths, and the held-out and calibration rows. Shared by the family, its
streamed reader and its export (which import this module, not the family)."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import numpy as np

from kseq.data.dates import date_splits
from kseq.data.lengths import LengthProfile, SideLengths, check_length_share
from kseq.data.parallel import apply_length_policy, read_parallel
from kseq.data.shards import data_files
from kseq.data.split import train_and_validation
from kseq.tokenizers.special_tokens import EOS_ID, PAD_ID, UNK_ID

SOURCE_TOKENIZER = "source_tokenizer"
TARGET_TOKENIZER = "target_tokenizer"


@dataclass
class Tokenizers:
    source: object
    target: object


def pad_ids(rows: list[list[int]], length: int | None = None) -> np.ndarray:
    """Right-pad id lists with 0 to a (B, L) int32 array (L = longest row by default)."""
    width = max(1, length or max((len(r) for r in rows), default=1))
    out = np.zeros((len(rows), width), np.int32)
    for index, row in enumerate(rows):
        out[index, : len(row)] = row[:width]
    return out


def strip_ids(row) -> list[int]:
    """Ids up to (excluding) eos or the first padding."""
    out = []
    for token in np.asarray(row).tolist():
        if token in (EOS_ID, PAD_ID):
            break
        out.append(int(token))
    return out


def read_pairs(spec, data_file):
    """(train pairs, validation pairs) as text, from files or the built-in task."""

    data = spec.data

    def read(path):
        result = read_parallel(path, data.on_error)
        print_skipped(path, result.skipped, result.messages)
        return result.pairs

    def read_all(value):
        return [pair for path in data_files(value) for pair in read(path)]

    if data_file is not None:
        pairs = read(data_file)
        return pairs, pairs
    if data.train is None:
        synthetic = data.synthetic
        return date_splits(synthetic.train_size, synthetic.validation_size, synthetic.seed)
    return train_and_validation(data, read_all, spec.train.seed, "pairs")


# Held-out pairs a streamed run decodes for its metrics and export gate (a validation set can
# be as big as the training data; the loss still runs over all of it).
STREAM_DECODED_PAIRS = 10_000


def print_skipped(path, skipped: int, messages: list[str]) -> None:
    if skipped:
        print(
            f"kseq: skipped {skipped} bad line(s) in {path}: {messages[0]}"
            + (" …" if skipped > 1 else ""),
            file=sys.stderr,
        )


def warn_about_unknown_tokens(sides, tokenizers, sources, targets) -> None:
    """A vocabulary fitted here that misses much of its own training data trains a model to emit
    <unk>: say so once per side, naming the spec keys that fix it."""

    for side, options, key, tokenizer, rows in (
        ("source", sides.source, sides.source_path, tokenizers.source, sources),
        ("target", sides.target, sides.target_path, tokenizers.target, targets),
    ):
        total = sum(map(len, rows))
        share = sum(row.count(UNK_ID) for row in rows) / total if total else 0.0
        if share <= 0.05:
            continue
        kind = options.type
        finer = [] if kind == "char" else [k for k in ("char", "wordpiece") if k != kind]
        print(
            f"kseq: warning: {share:.1%} of {side} training tokens are <unk> ({kind} "
            f"tokenizer, {tokenizer.vocab_size:,}-token vocabulary); raise {key}.vocab_size, "
            "lower its min_count"
            + (f", or use a finer kind ({', '.join(finer)})" if finer else ""),
            file=sys.stderr,
        )


def tokenized_pairs(tokenizers, pairs) -> list[tuple[list[int], list[int]]]:
    """Text pairs -> id pairs, before any length limit."""
    sources = tokenizers.source.encode([s for s, _ in pairs])
    targets = tokenizers.target.encode([t for _, t in pairs])
    return list(zip(sources, targets, strict=True))


def limited_pairs(data, id_pairs):
    """Id pairs -> (kept id pairs, length-policy counts) under the spec's (concrete) limits."""

    kept, counts = apply_length_policy(
        id_pairs, data.max_source_length, data.max_target_length, data.length_policy
    )
    kept = [(s, t) for s, t in kept if s and t]  # an empty side has nothing to learn
    return kept, counts


def encode_pairs(data, tokenizers, pairs, warn_unknown=False):
    """Text pairs -> (kept id pairs, length-policy counts), as training sees them."""
    id_pairs = tokenized_pairs(tokenizers, pairs)
    if warn_unknown:
        warn_about_unknown_tokens(
            data.sides(), tokenizers, [s for s, _ in id_pairs], [t for _, t in id_pairs]
        )
    return limited_pairs(data, id_pairs)


def length_sides(family, spec, source: LengthProfile, target: LengthProfile) -> list[SideLengths]:
    """Both sides' limits (as given) with their training lengths and the model's capacity."""
    source_capacity, target_capacity = family.length_capacity(spec)
    data = spec.data
    return [
        SideLengths(
            "data.max_source_length", "sources", data.max_source_length, source, source_capacity
        ),
        SideLengths(
            "data.max_target_length", "targets", data.max_target_length, target, target_capacity
        ),
    ]


def with_lengths(spec, sides: list[SideLengths]):
    """The spec with concrete limits (`auto` resolved), as RUN_DIR/spec.yaml records it."""
    source, target = (side.limit for side in sides)
    data = dataclasses.replace(spec.data, max_source_length=source, max_target_length=target)
    return dataclasses.replace(spec, data=data)


def check_training_lengths(data, sides: list[SideLengths], counts: dict[str, int]) -> None:
    """Stop when the length policy changes too much of the training data; else say what."""
    check_length_share(
        sides,
        counts["truncated"] + counts["dropped"],
        counts["total"],
        data.length_policy,
        data.max_dropped_share,
    )


def held_out_samples(validation_ids) -> dict:
    """`generate` is gated on every held-out source, mixed lengths in one padded batch as apps
    send them; the other signatures on the first `export.parity_samples` rows."""
    return {"source_ids": pad_ids([s for s, _ in validation_ids])}


def calibration_pairs(spec, train_ids) -> dict:
    """int8 calibration: training pairs spread over the file (files are often sorted)."""
    count = min(len(train_ids), spec.export.calibration_samples)
    spread = [train_ids[i] for i in np.linspace(0, len(train_ids) - 1, count).astype(int)]
    return {"source_ids": [s for s, _ in spread], "target_ids": [t for _, t in spread]}


@dataclass
class Seq2SeqInfo:
    """What a seq2seq family's prepared data knows besides its datasets (`PreparedData.info`):
    the tokenizers, the held-out pairs as text and as ids, what the length policy did, and for a
    streamed corpus its files and pairs."""

    tokenizers: Tokenizers
    validation_pairs: list
    validation_ids: list
    length_counts: dict
    train_ids: list | None = None  # in-memory data only
    streamed: dict | None = None
