"""What kseq writes to disk: atomic writes (`atomic`) and the RUN_DIR layout (`run_dir`).

The atomic writers are re-exported here: `from kseq.io import atomic_write_text`.
"""

from kseq.io.atomic import (
    atomic_directory,
    atomic_save_arrays,
    atomic_write_bytes,
    atomic_write_text,
    swap_into_place,
)

__all__ = [
    "atomic_directory",
    "atomic_save_arrays",
    "atomic_write_bytes",
    "atomic_write_text",
    "swap_into_place",
]
