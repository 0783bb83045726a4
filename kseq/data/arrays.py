"""Numeric arrays from .npy / .npz / .csv files, checked: clear errors name the file and problem.

A .npy header is read and checked against the file's size before any data is allocated, so a
corrupt or lying header is one clear error rather than a MemoryError; the same holds for the
array read from an .npz archive, checked against the member's uncompressed size.
"""

from __future__ import annotations

import csv
import io
import lzma
import math
import os
import tokenize
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from kseq.data.files import (
    invalid_utf8,
    one_line,
    open_regular,
    read_bytes,
    require_regular_file,
)
from kseq.errors import KseqError

# The largest float32 array a data file may produce (8 GiB).
MAX_ARRAY_BYTES = 8 * 2**30
REAL_KINDS = "biuf"  # bool, signed and unsigned integers, floats
NPZ_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
# What a truncated or corrupt file makes numpy, zipfile and the decompressors raise.
READ_ERRORS = (
    ValueError,
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    NotImplementedError,  # zip features (strong encryption, patched data) zipfile lacks
    tokenize.TokenError,  # numpy re-reading an unparsable header as a Python 2 one
)
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _read_csv(path: Path) -> np.ndarray:
    data = read_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise KseqError(f"{path}:{invalid_utf8(data, error)}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return _csv_rows(path, reader)
    except csv.Error as error:
        raise KseqError(f"{path}:{reader.line_num}: {one_line(error)}") from None


def _csv_rows(path: Path, reader) -> np.ndarray:
    rows: list[list[float]] = []
    for line_number, row in enumerate(reader, start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        try:
            values = [float(cell) for cell in row]
        except ValueError:
            if line_number == 1 and not rows:
                continue  # a header line
            bad = next(c for c in row if not _is_number(c))
            raise KseqError(f"{path}:{line_number}: not a number: {bad!r}") from None
        if rows and len(values) != len(rows[0]):
            raise KseqError(
                f"{path}:{line_number}: row has {len(values)} columns; expected {len(rows[0])}"
            )
        rows.append(values)
    return np.asarray(rows, dtype=np.float64)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _require_real_dtype(dtype: np.dtype, where: str) -> None:
    if dtype.kind not in REAL_KINDS:
        raise KseqError(
            f"{where}: data must be real numbers (bool, integer or float); received dtype {dtype}"
        )


def _npy_header(handle) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) from the .npy header at the handle's position."""
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    return shape, dtype, handle.tell()


def _check_npy_header(handle, stored_bytes: int, where: str) -> None:
    """Refuse a non-real dtype, a shape the stored bytes do not hold, or a too large array."""
    shape, dtype, offset = _npy_header(handle)
    _require_real_dtype(dtype, where)
    count = math.prod(shape)
    needed = count * dtype.itemsize
    if any(n < 0 for n in shape) or offset + needed != stored_bytes:
        raise KseqError(
            f"{where}: the .npy header's shape {shape} of {dtype} needs {needed} bytes of data, "
            f"but {stored_bytes - offset} are stored (a truncated file or a corrupt header)"
        )
    if count * 4 > MAX_ARRAY_BYTES:
        raise KseqError(
            f"{where}: shape {shape} is too large ({count * 4} bytes as float32; "
            f"at most {MAX_ARRAY_BYTES})"
        )


def _read_npy(path: Path) -> np.ndarray:
    with open_regular(path) as handle:
        _check_npy_header(handle, os.fstat(handle.fileno()).st_size, str(path))
        handle.seek(0)
        return np.lib.format.read_array(handle, allow_pickle=False)


def _npz_member(path: Path, archive: zipfile.ZipFile, npz_key: str | None) -> zipfile.ZipInfo:
    # Keys as numpy.load names them: the member name less a ".npy" suffix.
    members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
    if not members:
        raise KseqError(f"{path}: the .npz archive holds no arrays")
    key = npz_key or next(iter(members))
    if key not in members:
        raise KseqError(f"{path}: no array {key!r}; the archive has {', '.join(members)}")
    info = members[key]
    where = f"{path}: array {key!r}"
    if info.flag_bits & 0x1:
        raise KseqError(f"{where}: the member is encrypted")
    if info.compress_type not in NPZ_COMPRESSION:
        raise KseqError(f"{where}: unsupported zip compression method {info.compress_type}")
    return info


def _read_npz(path: Path, npz_key: str | None) -> np.ndarray:
    with open_regular(path) as handle, zipfile.ZipFile(handle) as archive:
        info = _npz_member(path, archive, npz_key)
        where = f"{path}: array {info.filename.removesuffix('.npy')!r}"
        with archive.open(info) as member:
            _check_npy_header(member, info.file_size, where)
        with archive.open(info) as member:
            return np.lib.format.read_array(member, allow_pickle=False)


def _load(path: Path, npz_key: str | None) -> np.ndarray:
    if path.suffix == ".csv":
        return _read_csv(path)
    # Old (Python 2) headers make numpy warn; the data reads the same.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            if path.suffix == ".npz":
                return _read_npz(path, npz_key)
            return _read_npy(path)
        except READ_ERRORS as error:
            raise KseqError(f"{path}: cannot read data: {one_line(error)}") from None


def _first_index(mask: np.ndarray) -> str:
    index = np.argwhere(mask)[0]
    return f"sample {index[0]}, index {tuple(int(i) for i in index[1:])}"


def _require_finite_float32(array: np.ndarray, path: Path) -> None:
    """NaN, infinity, and (for wider floats) values float32 cannot hold are errors."""
    finite = np.isfinite(array)
    if not finite.all():
        raise KseqError(f"{path}: data contains NaN or infinity (first at {_first_index(~finite)})")
    if array.dtype.itemsize > 4:
        too_large = np.abs(array) > FLOAT32_MAX
        if too_large.any():
            raise KseqError(
                f"{path}: data holds values beyond float32's range (±{FLOAT32_MAX:.4g}); "
                f"first at {_first_index(too_large)}"
            )


def read_array(path: str | Path, npz_key: str | None = None) -> np.ndarray:
    """Load a float32 array with samples on axis 0; reject empty, non-numeric, NaN/inf data."""
    path = Path(path)
    require_regular_file(path)  # a FIFO, directory or device is refused before anything opens it
    if path.stat().st_size == 0:
        raise KseqError(f"{path}: data file is empty")
    array = _load(path, npz_key)
    _require_real_dtype(array.dtype, str(path))
    if array.ndim == 0 or array.shape[0] == 0:
        raise KseqError(f"{path}: data file holds no samples")
    if array.dtype.kind == "f":
        _require_finite_float32(array, path)
    with np.errstate(all="ignore"):  # in range: only underflow to 0 is left, and it is fine
        return np.asarray(array, dtype=np.float32)


def reshape_samples(array: np.ndarray, sample_shape: list[int] | None, where: str) -> np.ndarray:
    """Give each sample the spec's shape; a size mismatch is a user error naming the shapes."""
    if sample_shape is None:
        return array
    size = int(np.prod(array.shape[1:]))
    if size != int(np.prod(sample_shape)):
        raise KseqError(
            f"{where}: samples of shape {tuple(array.shape[1:])} cannot be reshaped to "
            f"data.sample_shape {tuple(sample_shape)}"
        )
    return array.reshape((array.shape[0], *sample_shape))
