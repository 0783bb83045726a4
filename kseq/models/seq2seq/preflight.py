"""`kseq validate` on text pairs: the first lines of every file parse, and the length policy
would not change more than `data.max_dropped_share` of the training pairs (measured on the first
`LENGTH_SAMPLE` pairs with each side's tokenizer kind; no TensorFlow, no vocabulary needed)."""

from __future__ import annotations

from kseq.data.lengths import AUTO, LengthProfile, SideLengths, check_length_share
from kseq.data.parallel import check_line, detect_format, line_parser
from kseq.data.preflight import (
    LENGTH_SAMPLE,
    SAMPLE_BYTES,
    SAMPLE_LINES,
    head_lines,
    named_files,
)
from kseq.data.shards import format_name
from kseq.errors import KseqError
from kseq.tokenizers.pretokenize import TOKEN_COUNTS


def sample_pairs(path: str, on_error: str, wanted: int) -> list[tuple[str, str]]:
    """Up to `wanted` good pairs from the file's start; its first SAMPLE_LINES lines checked."""
    parse = line_parser(detect_format(format_name(path)))
    pairs, bad = [], []
    # A file past the length sample is only parsed: its first MiB holds SAMPLE_LINES lines.
    for lineno, raw in enumerate(head_lines(path, SAMPLE_BYTES if wanted else 2**20), 1):
        if lineno > SAMPLE_LINES and len(pairs) >= wanted:
            break
        try:
            pairs.append(check_line(raw, parse))
        except ValueError as error:
            if lineno > SAMPLE_LINES:
                continue
            if on_error == "fail":
                raise KseqError(f"{path}:{lineno}: {error}") from None
            bad.append(f"{path}:{lineno}: {error}")
    if not pairs:
        first = f"; first: {bad[0]}" if bad else ""
        raise KseqError(f"no valid pairs in the first lines of {path}{first}")
    return pairs[:wanted]


def check_text_pairs(spec) -> str:
    data = spec.data
    files = named_files(data)
    if not files:
        return "built-in data"
    sample: list[tuple[str, str]] = []
    for field_name, path in files:
        wanted = LENGTH_SAMPLE - len(sample) if field_name == "data.train" else 0
        pairs = sample_pairs(path, data.on_error, wanted)
        if field_name == "data.train":
            sample += pairs
    sides = data.sides()
    count_source, count_target = TOKEN_COUNTS[sides.source.type], TOKEN_COUNTS[sides.target.type]
    lengths = [(count_source(s), count_target(t)) for s, t in sample]
    given = [
        SideLengths(
            "data.max_source_length",
            "sources",
            data.max_source_length,
            LengthProfile.of(s for s, _ in lengths),
        ),
        SideLengths(
            "data.max_target_length",
            "targets",
            data.max_target_length,
            LengthProfile.of(t for _, t in lengths),
        ),
    ]
    limits = [side.limit if side.given != AUTO else None for side in given]
    changed = sum(
        any(limit is not None and n > limit for n, limit in zip(pair, limits, strict=True))
        for pair in lengths
    )
    check_length_share(given, changed, len(lengths), data.length_policy, data.max_dropped_share)
    plural = "s" if len(files) != 1 else ""
    return f"{len(files)} data file{plural}, first {len(sample):,} training pairs read"
