"""Every registered kseq layer keeps every constructor argument in its config.

Each layer is built with a value other than its default for every argument it (or the kseq base
it extends) takes, and its `get_config()` is compared with those arguments — not only with its
own round trip, which cannot see a key that `get_config` drops. A new argument, or a new layer,
without an entry here fails `test_every_argument_is_covered` / `test_every_layer_is_covered`.
"""

from __future__ import annotations

import inspect

import keras
import pytest
from keras import constraints, initializers, regularizers

import kseq
from kseq.models.family import family_for
from kseq.spec.common import ModelSpec

# Registering every family's layers: each family module imports its own.
for _type in ModelSpec.variants.names():
    family_for(kseq.load_spec({"model": {"type": _type}}))

BASE = {"name": "configured", "trainable": False, "dtype": "float64"}

# The arguments ExportableLSTM and ExportableGRU share (their base's).
RECURRENT = {
    "activation": "relu",
    "recurrent_activation": "hard_sigmoid",
    "use_bias": False,
    "kernel_initializer": "he_normal",
    "recurrent_initializer": "glorot_normal",
    "bias_initializer": "ones",
    "kernel_regularizer": "l2",
    "recurrent_regularizer": "l1",
    "bias_regularizer": "l1",
    "dropout": 0.1,
    "recurrent_dropout": 0.2,
    "seed": 5,
    "return_sequences": True,
    "return_state": True,
    "go_backwards": True,
    "zero_output_for_mask": True,
}

# class name -> the non-default value of every constructor argument.
ARGUMENTS = {
    "BahdanauAttention": {"units": 6, "kernel_initializer": "he_normal"},
    "BestSpan": {"max_answer_length": 7},
    "ExportableBidirectional": {
        "units": 5,
        "rnn_type": "gru",
        "merge_mode": "sum",
        "return_sequences": False,
        "return_state": True,
        "reset_after": False,
        "dropout": 0.1,
        "recurrent_dropout": 0.2,
        "kernel_initializer": "he_normal",
        "recurrent_initializer": "glorot_normal",
        "bias_initializer": "ones",
        "seed": 4,
    },
    "ExportableGRU": {"units": 3, "reset_after": False, **RECURRENT},
    "ExportableLSTM": {"units": 4, "unit_forget_bias": False, **RECURRENT},
    "FirstTokenPooler": {"units": 9, "kernel_initializer": "he_normal"},
    "GatherPositions": {},
    "GaussianSampling": {"kl_weight": 0.5, "elements_per_sample": 3, "seed": 2},
    "LayerNormalization": {
        "axis": 1,
        "epsilon": 1e-5,
        "center": False,
        "scale": False,
        "beta_initializer": "ones",
        "gamma_initializer": "zeros",
        "beta_regularizer": "l2",
        "gamma_regularizer": "l1",
        "beta_constraint": "non_neg",
        "gamma_constraint": "unit_norm",
    },
    "LuongAttention": {"score": "concat", "units": 2, "kernel_initializer": "he_normal"},
    "LuongAttentionalState": {"units": 7, "use_bias": True, "kernel_initializer": "he_normal"},
    "MaskedLMTransform": {
        "activation": "relu",
        "layer_norm_epsilon": 1e-6,
        "kernel_initializer": "he_normal",
    },
    "MeanLogProbabilities": {},
    "MaskedMultiHeadAttention": {
        "num_heads": 3,
        "key_dim": 5,
        "value_dim": 6,
        "dropout": 0.1,
        "use_bias": False,
        "output_shape": (7,),
        "attention_axes": (2,),
        "kernel_initializer": "he_normal",
        "bias_initializer": "ones",
        "kernel_regularizer": "l2",
        "bias_regularizer": "l1",
        "activity_regularizer": "l2",
        "kernel_constraint": "non_neg",
        "bias_constraint": "unit_norm",
        "seed": 8,
    },
    "OutputBias": {},
    "PositionEmbedding": {"sequence_length": 11, "initializer": "he_normal"},
    "PositionTable": {
        "sequence_length": 12,
        "kind": "learned",
        "max_wavelength": 500.0,
        "initializer": "he_normal",
    },
    "RNNDecoder": {
        "vocab_size": 17,
        "cell": "gru",
        "units": 9,
        "num_layers": 2,
        "attention": "luong",
        "score": "concat",
        "attention_units": 5,
        "input_feeding": False,
        "dropout": 0.2,
        "seed": 6,
    },
    "RNNEncoder": {
        "cell": "gru",
        "units": 9,
        "num_layers": 3,
        "bidirectional": False,
        "dropout": 0.2,
        "decoder_cell": "gru",
        "decoder_units": 10,
        "decoder_layers": 2,
        "seed": 7,
    },
    "ReversibleEmbedding": {
        "vocab_size": 13,
        "output_dim": 6,
        "scale": True,
        "output_bias": True,
        "embeddings_initializer": "he_normal",
    },
    "SinusoidalPositionEncoding": {"max_wavelength": 500.0},
    "SpanLogits": {"kernel_initializer": "he_normal"},
    "TokenEmbedding": {
        "vocab_size": 14,
        "output_dim": 6,
        "scale": True,
        "output_bias": True,
        "embeddings_initializer": "he_normal",
    },
    **{
        name: {
            "intermediate_dim": 10,
            "num_heads": 3,
            "dropout": 0.1,
            "attention_dropout": 0.2,
            "activation": "relu",
            "layer_norm_epsilon": 1e-5,
            "norm_first": True,
            "kernel_initializer": "he_normal",
            "bias_initializer": "ones",
        }
        for name in ("TransformerDecoderLayer", "TransformerEncoderLayer")
    },
}

# Keras arguments of a Keras base class that kseq neither uses nor serializes differently.
KERAS_ONLY = {
    "MaskedMultiHeadAttention": {"flash_attention", "use_gate", "sliding_window"},
}


def kseq_layers():
    return {
        obj.__name__: obj
        for name, obj in keras.saving.get_custom_objects().items()
        if name.startswith("kseq>") and isinstance(obj, type) and issubclass(obj, keras.Layer)
    }


def constructor_arguments(cls) -> set[str]:
    """Named arguments of `cls.__init__` and of every base up to `keras.Layer` itself."""
    names = set()
    for klass in cls.__mro__:
        if klass is keras.Layer or "__init__" not in vars(klass):
            continue
        for parameter in inspect.signature(klass.__init__).parameters.values():
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                names.add(parameter.name)
    return names - {"self"} - set(inspect.signature(keras.Layer.__init__).parameters)


def normalized(name, value):
    """`value` as `get_config` writes it."""
    for suffix, module in (
        ("initializer", initializers),
        ("regularizer", regularizers),
        ("constraint", constraints),
    ):
        if name.endswith(suffix) and value is not None:
            return module.serialize(module.get(value))
    return value


def test_every_layer_is_covered():
    assert set(kseq_layers()) == set(ARGUMENTS)


@pytest.mark.parametrize("name", sorted(ARGUMENTS))
def test_every_argument_is_covered(name):
    cls = kseq_layers()[name]
    covered = set(ARGUMENTS[name]) | KERAS_ONLY.get(name, set())
    assert constructor_arguments(cls) <= covered, "arguments without a test value"
    defaults = {
        p.name: p.default
        for klass in cls.__mro__
        if "__init__" in vars(klass) and klass is not keras.Layer
        for p in inspect.signature(klass.__init__).parameters.values()
    }
    for argument, value in ARGUMENTS[name].items():
        if defaults.get(argument, inspect.Parameter.empty) is not inspect.Parameter.empty:
            assert value != defaults[argument], f"{argument}: the default proves nothing"


@pytest.mark.parametrize("name", sorted(ARGUMENTS))
def test_config_holds_every_argument(name):
    cls = kseq_layers()[name]
    arguments = ARGUMENTS[name]
    layer = cls(**arguments, **BASE)
    config = layer.get_config()
    for argument, value in arguments.items():
        assert argument in config, f"get_config drops {argument}"
        stored, expected = config[argument], normalized(argument, value)
        if isinstance(expected, tuple):  # Keras keeps some tuples as lists
            stored, expected = list(stored), list(expected)
        assert stored == expected, argument
    assert config["name"] == "configured" and config["trainable"] is False
    assert keras.DTypePolicy(config["dtype"]["config"]["name"]).name == "float64"
    again = cls.from_config(config)
    assert again.get_config() == config
    assert keras.saving.get_registered_name(cls) == f"kseq>{name}"
