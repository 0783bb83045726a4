"""What `kseq validate` checks of the data a spec names, without TensorFlow and in bounded time.

Every data file a spec names (each path field, globs expanded) must exist, be a regular file and
hold something. A data section may name a deeper check as `preflight = "module:function"`: text
pairs parse their first lines and measure the share of training pairs the length policy would
change (the rule `kseq train` applies, on the first `LENGTH_SAMPLE` pairs), so a spec written for
other data fails in a second instead of after the vocabulary is learned.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib
import zlib

from kseq.data.files import one_line, open_regular
from kseq.data.shards import data_files, is_gzip
from kseq.errors import KseqError

# Bytes read from the start of each file (decompressed), and lines parsed of each.
SAMPLE_BYTES = 8 * 2**20
SAMPLE_LINES = 1000
# Training pairs whose lengths are measured.
LENGTH_SAMPLE = 100_000


def head(path: str, limit: int = SAMPLE_BYTES) -> bytes:
    """The first `limit` bytes of a data file (decompressed); KseqError when it is missing, not a
    regular file, unreadable or empty."""
    with open_regular(path) as handle:
        try:
            if is_gzip(path):
                with gzip.GzipFile(fileobj=handle) as unzipped:
                    data = unzipped.read(limit)
            else:
                data = handle.read(limit)
        except (OSError, EOFError, zlib.error) as error:
            raise KseqError(f"{path}: cannot read data file: {one_line(error)}") from None
    if not data.strip():
        raise KseqError(f"{path}: data file is empty")
    return data


def head_lines(path: str, limit: int = SAMPLE_BYTES) -> list[bytes]:
    """Whole lines of the file's first `limit` bytes (a line cut by the limit left out)."""
    data = head(path, limit)
    lines = data.split(b"\n")
    if lines[-1] == b"" or len(data) >= limit:
        lines.pop()
    if lines and lines[0].startswith(b"\xef\xbb\xbf"):
        lines[0] = lines[0][3:]
    return lines


def named_files(data_spec) -> list[tuple[str, str]]:
    """(dotted field, file) of every data file a data section names, patterns expanded."""
    found = []
    for spec_field in dataclasses.fields(data_spec):
        value = getattr(data_spec, spec_field.name)
        if spec_field.metadata.get("is_path") and value is not None:
            for path in data_files(value):
                found.append((f"data.{spec_field.name}", path))
    return found


def check_data(spec) -> str:
    """Check the data `spec` names (see the module docstring); a one-line summary, or KseqError."""
    files = named_files(spec.data)
    for field_name, path in files:
        try:
            head(path, 4096)
        except KseqError as error:
            raise KseqError(f"{field_name}: {error}") from None
    deeper = getattr(type(spec.data), "preflight", None)
    if deeper is not None:
        module, name = deeper.split(":")
        return getattr(importlib.import_module(module), name)(spec)
    if not files:
        return "built-in data"
    return f"{len(files)} data file{'s' if len(files) != 1 else ''} found"
