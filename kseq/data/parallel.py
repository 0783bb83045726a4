"""Readers for parallel (source, target) text data, and a length policy for tokenized pairs.

File formats, chosen by extension:
    * `.tsv`, `.txt`: one pair per line, `source<TAB>target`, UTF-8 (a leading BOM is ignored,
      `\\r\\n` line ends are accepted). Exactly one tab per line; both sides are kept as written.
    * `.jsonl`, `.json`: JSON Lines, one object per line with string values under "source" and
      "target" (other keys are ignored).

A line is bad if it is blank, has no tab (or more than one), has an empty (or whitespace-only)
side, is not valid UTF-8, is not valid JSON (or nested too deeply) / not an object, misses a key,
or has a string with an unpaired surrogate escape. Bad lines are reported as `FILE:LINE: what is
wrong` (lines counted from 1). With `on_error="fail"` the first one raises `KseqError`; with
`on_error="skip"` they are counted and the first few messages kept. The file itself must be a
regular file (a FIFO or device is refused before it is opened).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kseq.data.files import read_bytes
from kseq.data.shards import format_name, gunzip, is_gzip
from kseq.errors import KseqError

TSV_SUFFIXES = (".tsv", ".txt")
JSONL_SUFFIXES = (".jsonl", ".json")
ON_ERROR = ("skip", "fail")
LENGTH_POLICIES = ("truncate", "drop")


@dataclass
class ParallelData:
    """What `read_parallel` returns.

    Attributes:
        pairs: the good (source, target) pairs, in file order.
        skipped: number of bad lines skipped (always 0 with on_error="fail").
        messages: the first `max_messages` `FILE:LINE: ...` messages of skipped lines.
        path: the file read.
    """

    pairs: list[tuple[str, str]]
    skipped: int = 0
    messages: list[str] = field(default_factory=list)
    path: str = ""

    @property
    def sources(self) -> list[str]:
        return [s for s, _ in self.pairs]

    @property
    def targets(self) -> list[str]:
        return [t for _, t in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)


def detect_format(path: str | Path) -> str:
    """ "tsv" or "jsonl" from the file extension; KseqError for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix in TSV_SUFFIXES:
        return "tsv"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    raise KseqError(
        f"cannot tell the format of {path} from its extension: expected one of "
        f"{', '.join(TSV_SUFFIXES + JSONL_SUFFIXES)}; Received: {suffix or '(none)'!r}"
    )


def _parse_tsv(line: str) -> tuple[str, str]:
    tabs = line.count("\t")
    if tabs == 0:
        raise ValueError("no tab: expected 'source<TAB>target'")
    if tabs > 1:
        raise ValueError(f"expected 2 tab-separated fields, found {tabs + 1}")
    source, target = line.split("\t")
    return source, target


def _is_valid_unicode(text: str) -> bool:
    """False for a string with lone surrogates (JSON lets `\\ud800` through; UTF-8 cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse_jsonl(line: str) -> tuple[str, str]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON: {e.msg} (column {e.colno})") from None
    except RecursionError:
        raise ValueError("invalid JSON: nested too deeply") from None
    except ValueError as e:  # e.g. an integer with more digits than Python converts
        raise ValueError(f"invalid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, found {type(obj).__name__}")
    out = []
    for key in ("source", "target"):
        if key not in obj:
            raise ValueError(f"missing key {key!r}")
        if not isinstance(obj[key], str):
            raise ValueError(f"{key!r} must be a string, found {type(obj[key]).__name__}")
        if not _is_valid_unicode(obj[key]):
            raise ValueError(f"{key!r} holds an unpaired surrogate escape (\\ud800-\\udfff)")
        out.append(obj[key])
    return out[0], out[1]


def line_parser(fmt: str):
    """The parser of one decoded line of format `fmt` ("tsv" or "jsonl")."""
    if fmt not in ("tsv", "jsonl"):
        raise KseqError(f"format must be 'tsv' or 'jsonl'; Received: format={fmt!r}")
    return _parse_tsv if fmt == "tsv" else _parse_jsonl


def check_line(raw: bytes, parse) -> tuple[str, str]:
    """(source, target) of one raw line (without its newline); ValueError naming what is wrong."""
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = f"byte 0x{raw[e.start]:02x} at byte {e.start + 1}"
        raise ValueError(f"invalid UTF-8 ({bad})") from None
    if not line.strip():
        raise ValueError("blank line")
    source, target = parse(line)
    if not source.strip():
        raise ValueError("empty source")
    if not target.strip():
        raise ValueError("empty target")
    return source, target


def read_parallel(
    path: str | Path,
    on_error: str = "fail",
    *,
    format: str | None = None,
    max_messages: int = 5,
) -> ParallelData:
    """Reads a parallel TSV or JSONL file.

    Args:
        path: the file; its extension picks the format unless `format` is given.
        on_error: "fail" raises KseqError at the first bad line; "skip" skips and counts bad lines.
        format: "tsv" or "jsonl" to override the extension.
        max_messages: how many skip messages to keep.

    Returns:
        ParallelData(pairs, skipped, messages, path).

    Raises:
        KseqError: missing, empty or not a regular file; unknown format; bad line (fail); or no
            good line at all.
    """
    if on_error not in ON_ERROR:
        raise KseqError(f"on_error must be one of {', '.join(ON_ERROR)}; Received: {on_error!r}")
    path = Path(path)
    fmt = format if format is not None else detect_format(format_name(path))
    parse = line_parser(fmt)
    data = read_bytes(
        path,
        missing=f"parallel data file not found: {path}",
        directory=f"parallel data path is a directory, not a file: {path}",
    )
    if is_gzip(path):
        data = gunzip(data, path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        raise KseqError(f"parallel data file is empty: {path}")

    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the newline ending the last line does not start another one
    result = ParallelData(pairs=[], path=str(path))
    for lineno, raw in enumerate(lines, 1):
        try:
            source, target = check_line(raw, parse)
        except ValueError as e:
            message = f"{path}:{lineno}: {e}"
            if on_error == "fail":
                raise KseqError(message) from None
            result.skipped += 1
            if len(result.messages) < max_messages:
                result.messages.append(message)
            continue
        result.pairs.append((source, target))
    if not result.pairs:
        first = f"; first: {result.messages[0]}" if result.messages else ""
        raise KseqError(f"no valid pairs in {path} ({result.skipped} bad lines skipped{first})")
    return result


def apply_length_policy(
    pairs_as_ids: Sequence[tuple[Sequence[int], Sequence[int]]],
    max_source_length: int | None,
    max_target_length: int | None,
    policy: str = "truncate",
) -> tuple[list[tuple[list[int], list[int]]], dict[str, int]]:
    """Limits tokenized pairs to maximum lengths.

    Lengths are those of the id lists as given, before the pipeline adds `<s>`/`</s>` (so the
    decoder sees up to `max_target_length + 1` steps). `None` means no limit.

    Args:
        pairs_as_ids: (source ids, target ids) pairs.
        max_source_length, max_target_length: limits (positive ints) or None.
        policy: "truncate" cuts over-long sides (keeping the start); "drop" removes the pair.

    Returns:
        (kept pairs, counts) with counts keys: "total", "kept", "truncated" (pairs cut), "dropped",
        "source_too_long", "target_too_long" (pairs over each limit, before the policy).
    """
    if policy not in LENGTH_POLICIES:
        raise KseqError(
            f"length policy must be one of {', '.join(LENGTH_POLICIES)}; Received: {policy!r}"
        )
    limits = (("max_source_length", max_source_length), ("max_target_length", max_target_length))
    for name, v in limits:
        if v is not None and (not isinstance(v, int) or v < 1):
            raise KseqError(f"{name} must be a positive integer or None; Received: {name}={v!r}")
    s_max = max_source_length if max_source_length is not None else float("inf")
    t_max = max_target_length if max_target_length is not None else float("inf")
    counts = dict.fromkeys(
        ("total", "kept", "truncated", "dropped", "source_too_long", "target_too_long"), 0
    )
    kept: list[tuple[list[int], list[int]]] = []
    for source, target in pairs_as_ids:
        counts["total"] += 1
        s_over, t_over = len(source) > s_max, len(target) > t_max
        counts["source_too_long"] += s_over
        counts["target_too_long"] += t_over
        if s_over or t_over:
            if policy == "drop":
                counts["dropped"] += 1
                continue
            counts["truncated"] += 1
            if s_over:
                source = source[:max_source_length]
            if t_over:
                target = target[:max_target_length]
        kept.append((list(source), list(target)))
    counts["kept"] = len(kept)
    return kept, counts
