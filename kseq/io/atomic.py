"""Atomic file and directory writes: readers see the old artifact or the new one, never half of one.

Everything is staged under a hidden temporary name in the destination's own directory, so the final
step is a `rename` on one filesystem (atomic on POSIX). Any exception, KeyboardInterrupt included,
removes the staged copy and leaves whatever was at the destination untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kseq.errors import ExportError, write_error

__all__ = [
    "atomic_directory",
    "atomic_save_arrays",
    "atomic_write_bytes",
    "atomic_write_text",
    "swap_into_place",
]


def _prepare_parent(path: Path) -> Path:
    """Create the parent directory; turn OS errors into one clear ExportError naming the path."""
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror or e}") from e
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {path}: directory {parent} is not writable")
    return parent


def _read_umask() -> int:
    # The only portable way to read the umask is to set it; done once, at import.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _fsync_dir(directory: Path) -> None:
    """Persist a rename in `directory` (best effort: not every filesystem supports it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (temp file in the same directory, fsync, rename).

    Returns:
        The destination as a `Path`.

    Raises:
        ExportError: the destination cannot be written (names the path).
    """
    path = Path(path)
    parent = _prepare_parent(path)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror or e}") from e
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise write_error(path, e, ExportError) from None
        raise
    _fsync_dir(parent)
    return path


def atomic_save_arrays(arrays: list, path: str | os.PathLike) -> Path:
    """`np.savez` of `arrays` (saved as arr_0, arr_1, ...), written atomically."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, *arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically; see `atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode(encoding))


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Stage a directory and move it to `path` only if the `with` block succeeds.

    Yields a fresh empty hidden directory next to `path`. On success it replaces `path`: an existing
    directory is first renamed aside, the new one renamed in, then the old one deleted, so a crash
    in between leaves either the old or the new directory at `path`, never a mix. On any exception
    (KeyboardInterrupt included) the staged directory is deleted and `path` is left as it was.

    Raises:
        ExportError: the parent cannot be written, or `path` exists and is not a directory.
    """
    path = Path(path)
    parent = _prepare_parent(path)
    if path.exists() and not path.is_dir():
        raise ExportError(f"cannot write {path}: it exists and is not a directory")
    try:
        staged = Path(tempfile.mkdtemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp"))
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror or e}") from e
    try:
        os.chmod(staged, 0o777 & ~_UMASK)  # mkdtemp makes 0700; give the usual permissions
        yield staged
        swap_into_place(staged, path)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    _fsync_dir(parent)


def swap_into_place(staged: Path, path: Path) -> None:
    """Rename `staged` to `path`, moving an existing directory aside first and deleting it last."""
    old: Path | None = None
    try:
        if path.exists():
            # mkdtemp reserves a unique name for the old copy; the rename replaces that empty dir.
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            try:
                os.replace(path, old)
            except BaseException:
                with contextlib.suppress(OSError):
                    old.rmdir()
                raise
        try:
            os.rename(staged, path)
        except BaseException:
            if old is not None:
                os.replace(old, path)  # put the previous artifact back
                old = None
            raise
    except OSError as e:
        raise write_error(path, e, ExportError) from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
