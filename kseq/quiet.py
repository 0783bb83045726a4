"""Keep TensorFlow's, Keras's and NumPy's chatter away from kseq's users (unless KSEQ_DEBUG=1).

TensorFlow writes start-up lines (oneDNN, CUDA probes) straight to file descriptor 2 while it is
imported, before any logging setting applies; only a redirect of the descriptor hides them. So
`install()` wraps the first `import tensorflow` — whoever makes it — in such a redirect, and
filters the libraries' Python warnings and loggers. Errors still propagate as exceptions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings

from kseq.import_hook import around_first_import

LIBRARIES = (
    r"(keras|tensorflow|tf_keras|numpy|h5py|absl|google\.protobuf|tensorboard|ai_edge_litert)"
)


def debugging() -> bool:
    return bool(os.environ.get("KSEQ_DEBUG"))


@contextlib.contextmanager
def stderr_silenced():
    """Send file descriptor 2 to /dev/null inside the block (C++ code writes there directly)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _quiet_tensorflow_import(module):
    with stderr_silenced():
        yield
        module.config.list_physical_devices()  # device probing logs too; do it now


def install() -> None:
    """Quiet the libraries for this process; a no-op with KSEQ_DEBUG=1."""
    if debugging():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", module=LIBRARIES + r"(\.|$)")
    for name in ("tensorflow", "absl", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    around_first_import("tensorflow", _quiet_tensorflow_import)
