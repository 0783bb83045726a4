"""Numeric arrays from .npy / .npz / .csv files, checked: clear errors name the file and problem."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np

from kseq.errors import KseqError


def _read_csv(path: Path) -> np.ndarray:
    rows: list[list[float]] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for line_number, row in enumerate(csv.reader(handle), start=1):
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
    return np.asarray(rows, dtype=np.float32)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_array(path: str | Path, npz_key: str | None = None) -> np.ndarray:
    """Load a float32 array with samples on axis 0; reject empty, non-numeric, NaN/inf data."""
    path = Path(path)
    if not path.is_file():
        raise KseqError(f"{path}: data file not found")
    if path.stat().st_size == 0:
        raise KseqError(f"{path}: data file is empty")
    try:
        if path.suffix == ".csv":
            array = _read_csv(path)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.files)
                if not names:
                    raise KseqError(f"{path}: the .npz archive holds no arrays")
                key = npz_key or names[0]
                if key not in names:
                    raise KseqError(f"{path}: no array {key!r}; the archive has {', '.join(names)}")
                array = archive[key]
        else:
            array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise KseqError(f"{path}: cannot read data: {error}") from None
    if not np.issubdtype(array.dtype, np.number) and array.dtype != np.bool_:
        raise KseqError(f"{path}: data must be numeric; received dtype {array.dtype}")
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 0 or array.shape[0] == 0:
        raise KseqError(f"{path}: data file holds no samples")
    finite = np.isfinite(array)
    if not finite.all():
        index = np.argwhere(~finite)[0]
        raise KseqError(
            f"{path}: data contains NaN or infinity (first at sample {index[0]}, "
            f"index {tuple(int(i) for i in index[1:])})"
        )
    return array


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
