"""Plain Keras loads any `model.keras` kseq wrote, after `import kseq`.

Keras resolves a saved class by its registered name (`kseq>RNNEncoder`) in its registry of custom
objects. Importing every kseq layer module at `import kseq` would import TensorFlow and slow
`kseq validate` down, so kseq registers lazily instead: when Keras is imported (now, or later
through an import hook), each name below enters Keras's registry as a stand-in whose
`from_config` imports the module that defines the class (the module's own
`register_keras_serializable` then replaces the stand-in) and builds the real object. Safe mode
applies as usual: the stand-in runs inside Keras's deserialization scope.

`tests/test_keras_names.py` checks this table against every registration in kseq's source.
"""

from __future__ import annotations

import contextlib
import importlib
import sys

from kseq.import_hook import around_first_import

PACKAGE = "kseq"

# module -> the classes it registers with `register_keras_serializable(package="kseq")`
REGISTERED: dict[str, tuple[str, ...]] = {
    "kseq.layers.embedding": ("ReversibleEmbedding", "TokenEmbedding"),
    "kseq.layers.layer_norm": ("LayerNormalization",),
    "kseq.layers.masked_softmax": ("MaskedMultiHeadAttention",),
    "kseq.layers.rnn": ("ExportableBidirectional", "ExportableGRU", "ExportableLSTM"),
    "kseq.layers.transformer": (
        "PositionEmbedding",
        "SinusoidalPositionEncoding",
        "TransformerDecoderLayer",
        "TransformerEncoderLayer",
    ),
    "kseq.models.autoencoder.variational": ("GaussianSampling",),
    "kseq.models.bert.keras_losses": ("IgnoreIndexAccuracy", "IgnoreIndexCrossentropy"),
    "kseq.models.bert.head_layers": (
        "BestSpan",
        "FirstTokenPooler",
        "GatherPositions",
        "MaskedLMTransform",
        "OutputBias",
        "SpanLogits",
    ),
    "kseq.models.seq2seq.ensemble": ("MeanLogProbabilities",),
    "kseq.models.seq2seq.rnn.attention": (
        "BahdanauAttention",
        "LuongAttention",
        "LuongAttentionalState",
    ),
    "kseq.models.seq2seq.rnn.layers": ("RNNDecoder", "RNNEncoder"),
    "kseq.models.seq2seq.transformer.layers": ("PositionTable",),
    "kseq.train.schedules": ("InverseSqrtDecay", "WarmupCosineDecay", "WarmupLinearDecay"),
    "kseq.train.sequence_losses": ("MaskedSparseCrossentropy", "MaskedTokenAccuracy"),
}


class RegisteredLater:
    """Holds a kseq class's place in Keras's registry until a saved file names it."""

    def __init__(self, registered_name: str, module: str):
        self.registered_name = registered_name
        self.module = module

    def resolve(self) -> type:
        import keras

        importlib.import_module(self.module)  # its decorators register the real classes
        cls = keras.saving.get_custom_objects().get(self.registered_name)
        if cls is None or isinstance(cls, RegisteredLater):
            raise ImportError(f"{self.module} does not register {self.registered_name}")
        return cls

    def from_config(self, config):
        return self.resolve().from_config(config)

    def __repr__(self) -> str:
        return f"<{self.registered_name}, registered when first loaded from {self.module}>"


def register_with(custom_objects: dict) -> None:
    """Put a stand-in for each kseq class into Keras's (live) registry; real classes stay."""
    for module, names in REGISTERED.items():
        for name in names:
            registered_name = f"{PACKAGE}>{name}"
            custom_objects.setdefault(registered_name, RegisteredLater(registered_name, module))


@contextlib.contextmanager
def _register_after_import(keras_module):
    yield
    register_with(keras_module.saving.get_custom_objects())


def install() -> None:
    """Register kseq's classes with Keras now if it is imported, else right after its import."""
    if not around_first_import("keras", _register_after_import):
        register_with(sys.modules["keras"].saving.get_custom_objects())
