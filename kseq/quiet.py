"""Keep TensorFlow's, Keras's and NumPy's chatter away from kseq's users (unless KSEQ_DEBUG=1).

TensorFlow writes start-up lines (oneDNN, CUDA probes) straight to file descriptor 2 while it is
imported, before any logging setting applies; only a redirect of the descriptor hides them. So
`install()` wraps the first `import tensorflow` — whoever makes it — in such a redirect, and
filters the libraries' Python warnings and loggers. Errors still propagate as exceptions.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import warnings

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


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with stderr_silenced():
            self.loader.exec_module(module)
            module.config.list_physical_devices()  # device probing logs too; do it now


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` once, with a loader that imports it with stderr silenced."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Quiet the libraries for this process; a no-op with KSEQ_DEBUG=1."""
    if debugging():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", module=LIBRARIES + r"(\.|$)")
    for name in ("tensorflow", "absl", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if "tensorflow" not in sys.modules and not any(
        isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path
    ):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
