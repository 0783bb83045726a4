"""Masked-LM pretraining text read in a stream: one document per line, any number of files.

The same path as `kseq.data.streaming`, for documents: blocks of lines are split where
Python's `str.splitlines` splits, stripped, tokenized with the tokenizer's exact in-graph form
(`BertTokenizer.tf_tokenize`, equal to `encode`), and cut into `[CLS] chunk [SEP]` rows of at most
`sequence_length` tokens (`kseq.models.bert.data.encode_documents`, vectorized); rows are
shuffled in a buffer, batched, trimmed and masked as in memory. A checking pass counts the rows
(the epoch's length) and stops at the first line that is not UTF-8, with the in-memory reader's
`FILE:LINE` message.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from kseq.data.shards import is_gzip
from kseq.data.streaming import CYCLE_LENGTH, file_blocks
from kseq.errors import KseqError
from kseq.tokenizers.kinds import whitespace_patterns

# Where `str.splitlines` breaks a line besides "\n" (where the file reader splits).
_LINE_BREAKS = r"[\r\x{0B}\x{0C}\x{1C}-\x{1E}\x{85}\x{2028}\x{2029}]"


def _documents(lines: tf.Tensor) -> tf.Tensor:
    """The stripped, non-blank documents of a block of lines, in order."""
    import tensorflow_text as tf_text

    pieces = tf_text.regex_split(lines, _LINE_BREAKS).flat_values
    space = whitespace_patterns()[0]
    stripped = tf.strings.regex_replace(pieces, f"^(?:{space})|(?:{space})$", "")
    return tf.boolean_mask(stripped, tf.strings.length(stripped) > 0)


def _valid_utf8(lines: tf.Tensor) -> tf.Tensor:
    return tf.equal(tf.strings.unicode_transcode(lines, "UTF-8", "UTF-8", errors="replace"), lines)


def _rows(tokenizer, documents: tf.Tensor, length: int):
    """`[CLS] chunk [SEP]` token id rows (ragged) of each document, chunks of `length - 2`."""
    ids = tokenizer.tf_tokenize(documents)
    width = length - 2
    chunks = (ids.row_lengths() + width - 1) // width  # an empty document: no row
    first_chunk = tf.cumsum(chunks, exclusive=True)
    position = tf.ragged.range(ids.row_lengths()).flat_values
    chunk_of = tf.gather(first_chunk, ids.value_rowids()) + position // width
    pieces = tf.RaggedTensor.from_value_rowids(
        ids.flat_values, chunk_of, nrows=tf.reduce_sum(chunks)
    )
    count = tf.shape(pieces.row_lengths(), out_type=tf.int64)[:1]
    cls = tf.RaggedTensor.from_tensor(
        tf.fill(tf.concat([count, [1]], 0), tf.constant(tokenizer.cls_id, ids.dtype))
    )
    sep = tf.RaggedTensor.from_tensor(
        tf.fill(tf.concat([count, [1]], 0), tf.constant(tokenizer.sep_id, ids.dtype))
    )
    return tf.concat([cls, pieces, sep], axis=1)


def count_rows(files: list[str], tokenizer, length: int) -> int:
    """Rows the files give (the checking pass); KseqError at the first line not UTF-8."""
    total = 0
    for path in files:

        def facts(index, lines):
            bad = tf.where(~_valid_utf8(lines))[:, 0]
            rows = _rows(tokenizer, _documents(tf.boolean_mask(lines, _valid_utf8(lines))), length)
            return tf.size(lines, tf.int64), tf.size(rows.row_lengths()), bad, tf.gather(lines, bad)

        blocks = file_blocks(tf.constant(path), tf.constant(is_gzip(path)))
        seen = 0
        try:
            for size, rows, bad, raw in blocks.map(facts).prefetch(2).as_numpy_iterator():
                if len(bad):
                    raise KseqError(f"{path}:{seen + int(bad[0]) + 1}: {_utf8_error(raw[0])}")
                seen += int(size)
                total += int(rows)
        except tf.errors.OpError as error:
            raise KseqError(f"{path}: cannot read data file: {error.message}") from None
    if not total:
        raise KseqError("data: no text to train on (every document is empty)")
    return total


def _utf8_error(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"invalid UTF-8 (byte 0x{raw[error.start]:02x} at byte {error.start + 1})"
    raise AssertionError("the streamed UTF-8 check rejected valid text")


def _blocks(files: list[str]) -> tf.data.Dataset:
    names = tf.data.Dataset.from_tensor_slices(
        (tf.constant(files), tf.constant([is_gzip(f) for f in files]))
    )
    cycle = min(len(files), CYCLE_LENGTH)
    parallel = {"num_parallel_calls": cycle, "deterministic": True} if cycle > 1 else {}
    lines = names.interleave(file_blocks, cycle_length=cycle, **parallel)
    return lines.map(lambda _, block: _documents(block))


def first_documents(files: list[str], count: int) -> list[str]:
    """The first `count` documents of the stream (files interleaved by block, unshuffled)."""
    out: list[str] = []
    for block in _blocks(files).prefetch(2).as_numpy_iterator():
        out += [d.decode("utf-8") for d in block.tolist()]
        if len(out) >= count:
            break
    return out[:count]


def stream_rows(
    files: list[str],
    tokenizer,
    length: int,
    batch_size: int,
    rows: int,
    *,
    shuffle: bool,
    seed: int,
    shuffle_buffer: int,
    finish,
) -> tf.data.Dataset:
    """Batches of `(inputs, {})` after `finish` (trim and mask, `bert_data.finish_batch`)."""
    pad = tokenizer.pad_id

    def block_rows(documents):
        ids = _rows(tokenizer, documents, length)
        ones = tf.ones_like(ids)
        return {
            "token_ids": tf.cast(ids.to_tensor(pad), tf.int32),
            "segment_ids": tf.zeros_like(tf.cast(ones.to_tensor(0), tf.int32)),
            "padding_mask": tf.cast(ones.to_tensor(0), tf.int32),
        }

    examples = _blocks(files).map(block_rows, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    examples = examples.map(lambda inputs: (inputs, {}))
    if shuffle:
        examples = examples.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    batches = examples.padded_batch(
        batch_size,
        padding_values=(
            {"token_ids": np.int32(pad), "segment_ids": np.int32(0), "padding_mask": np.int32(0)},
            {},
        ),
    )
    batches = batches.map(finish, num_parallel_calls=1, deterministic=True)
    batches = batches.apply(tf.data.experimental.assert_cardinality(math.ceil(rows / batch_size)))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return batches.with_options(options).prefetch(2)
