"""Opening user data files: regular files only, and every read problem as one KseqError line.

A FIFO given as a data file would block the reader forever, and a device may never end, so the
kind of file is checked before anything opens it (symlinks are followed: a link to a regular
file is fine). The file is then opened non-blocking and checked again, which closes the window
in which the path could be swapped for something else.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

from kseq.data.shards import gunzip, is_gzip
from kseq.errors import KseqError

_KINDS = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "special file")


def _refuse(path: Path, mode: int, directory: str | None) -> KseqError:
    if stat.S_ISDIR(mode) and directory is not None:
        return KseqError(directory)
    return KseqError(f"{path}: data path is a {_kind(mode)}, not a regular file")


def one_line(error: BaseException) -> str:
    """An exception's text with its whitespace (newlines included) collapsed."""
    return " ".join(str(error).split()) or type(error).__name__


def require_regular_file(
    path: str | Path, *, missing: str | None = None, directory: str | None = None
) -> None:
    """KseqError unless `path` is a regular file; `missing`/`directory` replace those messages."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise KseqError(missing or f"{path}: data file not found") from None
    except OSError as error:
        raise KseqError(f"{path}: cannot read data file: {error.strerror or error}") from None
    if not stat.S_ISREG(mode):
        raise _refuse(path, mode, directory)


def open_regular(
    path: str | Path, *, missing: str | None = None, directory: str | None = None
) -> io.BufferedReader:
    """A binary handle on the regular file `path`, never blocking; KseqError otherwise."""
    path = Path(path)
    require_regular_file(path, missing=missing, directory=directory)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise KseqError(missing or f"{path}: data file not found") from None
    except OSError as error:
        raise KseqError(f"{path}: cannot read data file: {error.strerror or error}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _refuse(path, mode, directory)
    return os.fdopen(fd, "rb")


def read_bytes(
    path: str | Path, *, missing: str | None = None, directory: str | None = None
) -> bytes:
    """The whole content of the regular file `path`; KseqError for anything that goes wrong."""
    with open_regular(path, missing=missing, directory=directory) as handle:
        try:
            return handle.read()
        except OSError as error:
            raise KseqError(f"{path}: cannot read data file: {error.strerror or error}") from None


def invalid_utf8(data: bytes, error: UnicodeDecodeError) -> str:
    """`LINE: invalid UTF-8 (byte 0x.. at byte N)` for a decode error in `data` (N within the
    line, both counted from 1)."""
    line = data.count(b"\n", 0, error.start) + 1
    column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
    return f"{line}: invalid UTF-8 (byte 0x{data[error.start]:02x} at byte {column})"


def read_text(path: str | Path) -> str:
    """The UTF-8 text of the regular file `path` (line ends kept as written; a BOM kept too;
    a `.gz` file decompressed).

    Raises:
        KseqError: not a regular file, unreadable, or `FILE:LINE: invalid UTF-8 ...`.
    """
    data = read_bytes(path)
    if is_gzip(path):
        data = gunzip(data, path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise KseqError(f"{path}:{invalid_utf8(data, error)}") from None


def text_lines(text: str) -> io.StringIO:
    """`text` as a stream iterated like a file opened in text mode (universal newlines)."""
    return io.StringIO(text, newline=None)
