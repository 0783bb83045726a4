"""kseq: declarative Keras 3 models from YAML specs, trained and exported to builtin-only TFLite.

The API functions (`kseq.train`, `kseq.export`, ...) live in `kseq.api`, which imports TensorFlow;
they resolve on first use (PEP 562 `__getattr__`), so `import kseq` and `kseq validate` stay
free of TensorFlow.
"""

import importlib

from kseq import keras_names, quiet

quiet.install()  # before anything imports TensorFlow: its start-up lines stay off stderr
keras_names.install()  # plain `keras.saving.load_model` then loads any model.keras kseq wrote

# ruff: noqa: E402  (the imports below come after the quieting on purpose)

# Two API functions share their names with subpackages (`kseq.export`, `kseq.train`). Importing
# a submodule binds it on its parent only when it first loads: load both now, then unbind them,
# so the names resolve to the functions through `__getattr__` below.
import kseq.export
import kseq.train
from kseq.errors import KseqError
from kseq.spec.load import dump_spec, load_spec, spec_schema

del export, train, kseq  # noqa: F821  (bound by the submodule imports above)

API = (
    "build",
    "ensemble",
    "evaluate",
    "export",
    "import_checkpoint",
    "load",
    "load_run",
    "plot_attention",
    "predict",
    "run",
    "tokenize",
    "train",
)


def __getattr__(name: str):
    if name not in API:
        raise AttributeError(f"module 'kseq' has no attribute {name!r}")
    function = getattr(importlib.import_module("kseq.api"), name)
    globals()[name] = function  # once: later lookups skip this function
    return function


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(API))


__all__ = ["KseqError", "dump_spec", "load_spec", "spec_schema", *API]
__version__ = "0.1.0"
