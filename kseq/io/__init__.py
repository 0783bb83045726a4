"""What kseq writes to disk: atomic writes (`atomic`) and the RUN_DIR layout (`run_dir`).

The atomic writers are re-exported here: `from kseq.io import atomic_write_text`.
"""

from kseq.io.atomic import *  # noqa: F403 (its __all__: the atomic writers)
from kseq.io.atomic import __all__ as __all__
