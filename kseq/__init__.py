"""kseq: declarative Keras 3 models from YAML specs, trained and exported to builtin-only TFLite."""

from kseq import keras_names, quiet

quiet.install()  # before anything imports TensorFlow: its start-up lines stay off stderr
keras_names.install()  # plain `keras.saving.load_model` then loads any model.keras kseq wrote

# ruff: noqa: E402  (the imports below come after the quieting on purpose)

# The package `kseq.export` first, then the function of that name: importing a submodule binds
# it on its parent only the first time, so the function stays `kseq.export` afterwards.
import kseq.export  # noqa: F401
from kseq.api import (
    build,
    ensemble,
    evaluate,
    export,
    load,
    load_run,
    plot_attention,
    predict,
    run,
    tokenize,
    train,
)
from kseq.errors import KseqError
from kseq.spec.load import dump_spec, load_spec, spec_schema

__all__ = [
    "KseqError",
    "build",
    "dump_spec",
    "ensemble",
    "evaluate",
    "export",
    "load",
    "load_run",
    "load_spec",
    "plot_attention",
    "predict",
    "run",
    "spec_schema",
    "tokenize",
    "train",
]
__version__ = "0.1.0"
