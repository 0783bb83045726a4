"""Parallel text read in a stream: corpora larger than memory, from files, globs or shards.

Everything after the file list happens inside `tf.data`, on blocks of lines (a megabyte of a
file at a time) with TensorFlow string and tensorflow-text ops: a tf.data function per line
would cost more than the whole vectorized block.

    files -> (this worker's files) -> lines of each file, interleaved by block
          -> parse + check (bad lines left out) -> tokenize -> length policy
          -> shuffle buffer -> pools of POOL_BATCHES batches -> batches

A pool is cut into batches after sorting it by length when bucketing (so a batch holds
sequences of similar length), in the shuffled order otherwise; every batch but the epoch's last
is full, so an epoch has `ceil(pairs / batch_size)` batches, known from the checking pass.

The checking pass (`check_files`) reads each file once before training with the same ops: it
reports bad lines as `FILE:LINE: what is wrong` (the message comes from the in-memory reader's
own check, `kseq.data.parallel.check_line`, so the two never disagree), fails at the first one
with `on_error: fail`, and counts the pairs the length policy keeps.

TSV lines are checked and split in graph; JSONL lines need a JSON parser, so a block of them is
parsed in Python (`tf.numpy_function`), one call per block.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from kseq.data.files import open_regular
from kseq.data.lengths import LengthProfile
from kseq.data.parallel import check_line, detect_format, line_parser
from kseq.data.shards import format_name, is_gzip
from kseq.errors import KseqError
from kseq.tokenizers.kinds import whitespace_patterns
from kseq.tokenizers.special_tokens import BOS_ID, EOS_ID

CHUNK_BYTES = 1 << 20  # read at a time: a block of lines
POOL_BATCHES = 64
CYCLE_LENGTH = 8  # files read at once
_BOM = b"\xef\xbb\xbf"


# ---- files -----------------------------------------------------------------------------------
def common_format(files: list[str], key: str) -> str:
    """The one format ("tsv"/"jsonl") of `files`; KseqError when shards mix formats."""
    formats = {detect_format(format_name(f)) for f in files}
    if len(formats) > 1:
        raise KseqError(f"data.{key}: the files mix TSV and JSONL; give one format per side")
    return formats.pop()


def worker_files(files: list[str], workers: int, index: int, key: str) -> list[str]:
    """This worker's shards: every `workers`-th file from `index` (TensorFlow's FILE policy)."""
    if workers <= 1:
        return files
    if len(files) < workers:
        raise KseqError(
            f"data.{key}: {workers} workers stream whole files, but there are {len(files)}; "
            f"split the data into at least {workers} shards"
        )
    return files[index::workers]


# ---- one block of lines ------------------------------------------------------------------------
def _blank(texts: tf.Tensor) -> tf.Tensor:
    """Whether each string is empty or whitespace only (Python's `str.isspace` class)."""
    return tf.strings.regex_full_match(texts, f"(?:{whitespace_patterns()[0]})?")


def _strip_bom(lines: tf.Tensor, block_index: tf.Tensor) -> tf.Tensor:
    """A UTF-8 byte order mark opening a file is not part of its first line."""
    first = tf.logical_and(tf.equal(tf.range(tf.size(lines)), 0), tf.equal(block_index, 0))
    has_bom = tf.equal(tf.strings.substr(lines, 0, 3), _BOM)
    # substr past a string's end is an error: strip only strings that hold the mark.
    stripped = tf.strings.substr(tf.where(has_bom, lines, _BOM), 3, -1)
    return tf.where(first & has_bom, stripped, lines)


def _strip_cr(lines: tf.Tensor) -> tf.Tensor:
    """Lines without one trailing "\r" (a CRLF file's line ends)."""
    length = tf.strings.length(lines)
    safe = tf.where(length > 0, lines, "x")  # substr from the end of "" is an error
    ends_in_cr = tf.equal(tf.strings.substr(safe, -1, 1), "\r") & (length > 0)
    return tf.where(ends_in_cr, tf.strings.substr(safe, tf.zeros_like(length), length - 1), lines)


def _parse_tsv_block(lines: tf.Tensor):
    """(ok, source, target) per line, with the checks of `kseq.data.parallel.check_line`."""
    lines = _strip_cr(lines)
    valid_utf8 = tf.equal(
        tf.strings.unicode_transcode(lines, "UTF-8", "UTF-8", errors="replace"), lines
    )
    fields = tf.strings.split(lines, "\t")
    two = tf.equal(fields.row_lengths(), 2)
    pair = fields.to_tensor("", shape=[None, 2])
    source, target = pair[:, 0], pair[:, 1]
    ok = valid_utf8 & two & ~_blank(source) & ~_blank(target)
    return ok, source, target


def _parse_jsonl_block(lines: tf.Tensor):
    parse = line_parser("jsonl")

    def run(raw: np.ndarray):
        ok = np.zeros(len(raw), bool)
        sources, targets = [b""] * len(raw), [b""] * len(raw)
        for i, line in enumerate(raw):
            try:
                source, target = check_line(bytes(line), parse)
            except ValueError:
                continue
            ok[i] = True
            sources[i], targets[i] = source.encode("utf-8"), target.encode("utf-8")
        return ok, np.array(sources, object), np.array(targets, object)

    ok, source, target = tf.numpy_function(
        run, [lines], (tf.bool, tf.string, tf.string), stateful=False
    )
    n = tf.shape(lines)[:1]
    return tf.ensure_shape(ok, [None]), tf.reshape(source, n), tf.reshape(target, n)


def _parser(fmt: str):
    return _parse_tsv_block if fmt == "tsv" else _parse_jsonl_block


def _read_blocks(path: bytes, compressed: bool):
    """(block index, lines) of one file, lines split at b"\n" only (as the in-memory readers
    split them; TextLineDataset would also drop every "\r" inside a line), read CHUNK_BYTES
    at a time: the splitting is `bytes.split`, no Python runs per line."""
    path = path.decode("utf-8", "surrogateescape")
    with open_regular(path) as raw:
        handle = gzip.GzipFile(fileobj=raw) if compressed else raw
        carry, index = b"", 0
        while chunk := handle.read(CHUNK_BYTES):
            lines = (carry + chunk).split(b"\n")
            carry = lines.pop()  # the start of a line the next chunk ends
            if lines:
                yield index, np.array(lines, dtype=object)
                index += 1
        if carry:  # a last line without a newline
            yield index, np.array([carry], dtype=object)


def file_blocks(path: tf.Tensor, compressed: tf.Tensor) -> tf.data.Dataset:
    """(block index, lines) of one file."""
    return tf.data.Dataset.from_generator(
        _read_blocks,
        args=(path, compressed),
        output_signature=(
            tf.TensorSpec((), tf.int64),
            tf.TensorSpec((None,), tf.string),
        ),
    )


def _blocks(files: list[str], fmt: str) -> tf.data.Dataset:
    """(ok, source, target) blocks of `files`, interleaved block by block, in a fixed order."""
    parse = _parser(fmt)
    names = tf.data.Dataset.from_tensor_slices(
        (tf.constant(files, tf.string), tf.constant([is_gzip(f) for f in files], tf.bool))
    )
    cycle = min(len(files), CYCLE_LENGTH)
    parallel = {"num_parallel_calls": cycle, "deterministic": True} if cycle > 1 else {}
    blocks = names.interleave(file_blocks, cycle_length=cycle, **parallel)
    return blocks.map(
        lambda index, lines: parse(_strip_bom(lines, index)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


# ---- the length policy, on a block -------------------------------------------------------------
@dataclass(frozen=True)
class Lengths:
    max_source: int
    max_target: int
    policy: str  # "truncate" | "drop"


def _tokenize_block(tokenizers, lengths: Lengths, source: tf.Tensor, target: tf.Tensor):
    """(source ids, target ids) ragged after the length policy, per-row counters (over any
    limit, source over, target over, kept) and the rows' lengths before the policy."""
    source_ids = tokenizers.source.tf_tokenize(source)
    target_ids = tokenizers.target.tf_tokenize(target)
    seen = (source_ids.row_lengths(), target_ids.row_lengths())
    source_over = seen[0] > lengths.max_source
    target_over = seen[1] > lengths.max_target
    over = source_over | target_over
    if lengths.policy == "drop":
        keep = ~over
    else:
        keep = tf.ones_like(over)
        source_ids = source_ids[:, : lengths.max_source]
        target_ids = target_ids[:, : lengths.max_target]
    keep &= (source_ids.row_lengths() > 0) & (target_ids.row_lengths() > 0)
    return source_ids, target_ids, (over, source_over, target_over, keep), seen


# ---- the checking pass -------------------------------------------------------------------------
@dataclass
class FileCheck:
    """What the checking pass found in one file."""

    path: str
    lines: int = 0
    skipped: int = 0
    messages: list[str] = field(default_factory=list)
    over_limits: int = 0
    source_too_long: int = 0
    target_too_long: int = 0
    kept: int = 0
    source_lengths: LengthProfile = field(default_factory=lambda: LengthProfile.of(()))
    target_lengths: LengthProfile = field(default_factory=lambda: LengthProfile.of(()))

    @property
    def pairs(self) -> int:
        return self.lines - self.skipped


def check_files(
    files: list[str],
    fmt: str,
    tokenizers,
    lengths: Lengths,
    on_error: str,
    max_messages: int = 5,
) -> list[FileCheck]:
    """One pass over each file (see the module docstring).

    Raises:
        KseqError: the first bad line with on_error "fail"; an empty file; a file without a
            single good line.
    """
    parse = _parser(fmt)

    def block_facts(index, lines):
        lines = _strip_bom(lines, index)
        ok, source, target = parse(lines)
        _, _, (over, source_over, target_over, keep), seen = _tokenize_block(
            tokenizers, lengths, tf.boolean_mask(source, ok), tf.boolean_mask(target, ok)
        )
        counts = tf.stack(
            [tf.reduce_sum(tf.cast(x, tf.int64)) for x in (over, source_over, target_over, keep)]
        )
        histograms = tuple(tf.math.bincount(tf.cast(n, tf.int32), dtype=tf.int64) for n in seen)
        bad = tf.where(~ok)[:, 0]
        return tf.size(lines, tf.int64), counts, histograms, bad, tf.gather(lines, bad)

    checks = []
    for path in files:
        check = FileCheck(path)
        blocks = file_blocks(tf.constant(path), tf.constant(is_gzip(path))).map(
            block_facts, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        try:
            for size, counts, histograms, bad, raw in blocks.prefetch(2).as_numpy_iterator():
                for row, line in zip(bad.tolist(), raw.tolist(), strict=True):
                    _report(check, check.lines + row + 1, line, fmt, on_error, max_messages)
                check.lines += int(size)
                over, source_over, target_over, kept = (int(c) for c in counts)
                check.over_limits += over
                check.source_too_long += source_over
                check.target_too_long += target_over
                check.kept += kept
                check.source_lengths = check.source_lengths.merged(LengthProfile(histograms[0]))
                check.target_lengths = check.target_lengths.merged(LengthProfile(histograms[1]))
        except tf.errors.OpError as error:
            raise KseqError(f"{path}: cannot read data file: {error.message}") from None
        if not check.lines:
            raise KseqError(f"parallel data file is empty: {path}")
        if not check.pairs:
            first = f"; first: {check.messages[0]}" if check.messages else ""
            raise KseqError(f"no valid pairs in {path} ({check.skipped} bad lines skipped{first})")
        checks.append(check)
    return checks


def _report(check: FileCheck, lineno: int, raw: bytes, fmt, on_error, max_messages) -> None:
    try:
        check_line(raw, line_parser(fmt))
    except ValueError as error:
        message = f"{check.path}:{lineno}: {error}"
    else:  # the graph check and the Python one disagree: a bug, not the user's data
        raise AssertionError(f"{check.path}:{lineno}: the streamed check rejected a good line")
    if on_error == "fail":
        raise KseqError(message)
    check.skipped += 1
    if len(check.messages) < max_messages:
        check.messages.append(message)


# ---- samples, read into memory -----------------------------------------------------------------
def first_pairs(files: list[str], fmt: str, count: int) -> list[tuple[str, str]]:
    """The first `count` good pairs of the stream (files interleaved by block, unshuffled)."""
    pairs: list[tuple[str, str]] = []
    for ok, source, target in _blocks(files, fmt).prefetch(2).as_numpy_iterator():
        for s, t in zip(source[ok].tolist(), target[ok].tolist(), strict=True):
            pairs.append((s.decode("utf-8"), t.decode("utf-8")))
        if len(pairs) >= count:
            break
    return pairs[:count]


# ---- the training stream -----------------------------------------------------------------------
def _examples(files, fmt, tokenizers, lengths: Lengths) -> tf.data.Dataset:
    """Per-pair (source, target_in, target_out) int32 rows, zero-padded to their block's width."""

    def block_examples(ok, source, target):
        source_ids, target_ids, (*_, keep), _ = _tokenize_block(
            tokenizers, lengths, tf.boolean_mask(source, ok), tf.boolean_mask(target, ok)
        )
        source_ids = tf.ragged.boolean_mask(source_ids, keep)
        target_ids = tf.ragged.boolean_mask(target_ids, keep)
        rows = tf.shape(target_ids.row_lengths())[:1]
        bos = tf.RaggedTensor.from_tensor(tf.fill(tf.concat([rows, [1]], 0), BOS_ID))
        eos = tf.RaggedTensor.from_tensor(tf.fill(tf.concat([rows, [1]], 0), EOS_ID))
        target_in = tf.concat([bos, target_ids], axis=1)
        target_out = tf.concat([target_ids, eos], axis=1)
        return source_ids.to_tensor(), target_in.to_tensor(), target_out.to_tensor()

    return (
        _blocks(files, fmt)
        .map(block_examples, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .unbatch()
    )


def _nonzero_width(x: tf.Tensor) -> tf.Tensor:
    """Columns up to the last non-padding one in any row (ids are >= 1, padding 0)."""
    used = tf.reduce_any(tf.not_equal(x, 0), axis=0)
    return tf.reduce_max(tf.where(used, tf.range(1, tf.shape(x)[1] + 1), 0))


def _pool_batches(batch_size: int, bucketing: bool):
    def cut(source, target_in, target_out):
        n = tf.shape(source)[0]
        if bucketing:
            key = tf.maximum(
                tf.math.count_nonzero(source, axis=1, dtype=tf.int32),
                tf.math.count_nonzero(target_out, axis=1, dtype=tf.int32),
            )
            order = tf.argsort(key, stable=True)  # equal lengths keep the shuffled order
            source, target_in, target_out = (
                tf.gather(x, order) for x in (source, target_in, target_out)
            )
        batches = (n + batch_size - 1) // batch_size
        fill = batches * batch_size - n

        def grouped(x):
            padded = tf.pad(x, [[0, fill], [0, 0]])
            return tf.reshape(padded, [batches, batch_size, tf.shape(x)[1]])

        rows = tf.minimum(batch_size, n - tf.range(batches) * batch_size)
        return rows, grouped(source), grouped(target_in), grouped(target_out)

    return cut


def _trim(rows, source, target_in, target_out):
    source, target_in, target_out = source[:rows], target_in[:rows], target_out[:rows]
    source = source[:, : _nonzero_width(source)]
    width = _nonzero_width(target_in)
    return {"source": source, "target_in": target_in[:, :width]}, target_out[:, :width]


def stream_dataset(
    files: list[str],
    fmt: str,
    tokenizers,
    lengths: Lengths,
    batch_size: int,
    pairs: int,
    *,
    shuffle: bool,
    seed: int,
    shuffle_buffer: int,
    bucketing: bool,
) -> tf.data.Dataset:
    """Teacher-forcing batches, the elements `kseq.data.pipeline.make_dataset` yields.

    `pairs` is the count the checking pass found for `files` (the epoch's length).
    Without bucketing and with a buffer holding every pair, the batches equal
    `make_dataset`'s on the same pairs (same seed, same order).
    """
    examples = _examples(files, fmt, tokenizers, lengths)
    if shuffle:
        examples = examples.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    pool = batch_size * POOL_BATCHES
    batches = (
        examples.padded_batch(pool)
        .map(_pool_batches(batch_size, bucketing), num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
    )
    if shuffle and bucketing:  # sorted pools would hand out short batches first
        batches = batches.shuffle(POOL_BATCHES, seed=seed + 1, reshuffle_each_iteration=True)
    batches = batches.map(_trim, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    batches = batches.apply(tf.data.experimental.assert_cardinality(math.ceil(pairs / batch_size)))
    options = tf.data.Options()
    # The files are split across workers here (`worker_files`); tf.data must not split again.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return batches.with_options(options).prefetch(tf.data.AUTOTUNE)
