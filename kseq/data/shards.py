"""Which files a data path names: one file, a glob pattern, or a list of either.

A pattern (`*`, `?`, `[...]`) expands to its matching regular files in sorted order, so a run
sees its shards in the same order on every machine. A name ending in `.gz` is gzip-compressed;
the extension before it picks the format (`train.tsv.gz` is TSV).
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import os
import zlib
from pathlib import Path

from kseq.errors import KseqError

GZIP_SUFFIX = ".gz"
_MAGIC = ("*", "?", "[")


def is_pattern(path: str) -> bool:
    return any(ch in path for ch in _MAGIC)


def expand_pattern(pattern: str) -> list[str]:
    """The regular files matching `pattern`, sorted (directories and the like left out)."""
    return sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))


def data_files(value: str | list[str]) -> list[str]:
    """Every file `value` names, in order (patterns expanded; a file named twice is read once).

    Raises:
        KseqError: a pattern matches nothing.
    """
    files: list[str] = []
    for item in [value] if isinstance(value, str) else value:
        matches = expand_pattern(item) if is_pattern(item) else [item]
        if not matches:
            raise KseqError(f"{item}: no file matches the pattern")
        files += [m for m in matches if m not in files]
    return files


def is_gzip(path: str | Path) -> bool:
    return str(path).lower().endswith(GZIP_SUFFIX)


def format_name(path: str | Path) -> str:
    """The path without a compression suffix: the name whose extension tells the format."""
    text = str(path)
    return text[: -len(GZIP_SUFFIX)] if is_gzip(text) else text


def total_size(files: list[str]) -> int:
    """Bytes on disk (compressed size for `.gz`); missing files count 0 (reported elsewhere)."""
    size = 0
    for path in files:
        with contextlib.suppress(OSError):
            size += os.stat(path).st_size
    return size


def gunzip(data: bytes, path: str | Path) -> bytes:
    """The content of a gzip file read whole; KseqError naming the file if it is not gzip."""
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise KseqError(f"{path}: not a readable gzip file ({error})") from None


# Training data streams (instead of being read into memory) above this size when the spec
# leaves `data.streaming` unset: 64 MiB of text is about 2M short pairs, 2-3 GB held in memory.
STREAM_ABOVE_BYTES = 64 << 20


def streams(data) -> bool:
    """Whether a data spec's training files are streamed: `data.streaming`, or when unset,
    several files, gzip, or more than `STREAM_ABOVE_BYTES` (with a validation file: a split
    is made in memory)."""
    if data.train is None or data.streaming is False:
        return False
    if data.streaming:
        return True
    if data.validation is None:
        return False
    files = data_files(data.train)
    return len(files) > 1 or any(map(is_gzip, files)) or total_size(files) > STREAM_ABOVE_BYTES
