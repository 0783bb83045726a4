"""The token embedding of every Transformer in kseq, also the tied output projection.

`ReversibleEmbedding` maps ids to rows of a `(V, D)` table and, called with `reverse=True`, hidden
states to vocabulary logits through the same table (Press & Wolf, 2017): BERT's masked-LM head
and the Transformer seq2seq's output layer. The projection multiplies by the table with
`transpose_b`, so in TFLite the gather and the FULLY_CONNECTED share one constant (quantized
once); an explicit transpose would be folded into a second, float copy.

Runs saved before this layer was shared load unchanged: BERT's old configs (a Keras `Embedding`'s
`input_dim`, ...) are read by `from_config`, and `TokenEmbedding`, the seq2seq Transformer's name
for it, stays registered.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import initializers, ops

from kseq.layers.config import ArgumentsConfig

__all__ = ["ReversibleEmbedding", "TokenEmbedding"]

# Arguments of `keras.layers.Embedding` that BERT runs saved before this layer carry with the
# values kseq always gave them (the layer then subclassed `Embedding`).
_EMBEDDING_DEFAULTS = {
    "embeddings_regularizer": None,
    "embeddings_constraint": None,
    "activity_regularizer": None,
    "mask_zero": False,
    "lora_rank": None,
    "lora_alpha": None,
    "quantization_config": None,
    "weights": None,
    "input_length": None,
}


@keras.saving.register_keras_serializable(package="kseq")
class ReversibleEmbedding(ArgumentsConfig, keras.layers.Layer):
    """Token embeddings `E` `(V, D)`; in reverse, the tied output projection `h · Eᵀ + b`.

    Forward: `ids (B, T) -> E[ids]`, times `√D` with `scale=True`. Reverse: `h (..., D) ->
    h · Eᵀ (+ b) (..., V)` float32 logits, `b` a `(V,)` bias with `output_bias=True`. Calling the
    same layer object both ways in a functional model shares (ties) the table.

    Masking: none; padding (id 0) is embedded like any token, the callers build padding masks.

    Args:
        vocab_size: int, rows `V` of the table.
        output_dim: int, width `D`.
        scale: bool, multiply looked-up rows by `√D` (the Transformer seq2seq). Defaults to False.
        output_bias: bool, add a `(V,)` bias to reverse logits. Defaults to False.
        embeddings_initializer: initializer of the table; None = normal with stddev `D^-½`
            (so scaled rows have unit variance).
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: `(B, T)` int ids, or `(..., D)` hidden states when `reverse=True`.
        reverse: bool, project hidden states to logits with `Eᵀ`.

    Returns:
        `(B, T, D)` embeddings, or `(..., V)` float32 logits when `reverse=True`.

    Example:
    ```python
    embedding = ReversibleEmbedding(1000, 64)
    hidden = embedding(token_ids)  # (B, T) -> (B, T, 64)
    logits = embedding(hidden, reverse=True)  # (B, T, 64) -> (B, T, 1000)
    ```
    """

    def __init__(
        self,
        vocab_size,
        output_dim,
        scale=False,
        output_bias=False,
        embeddings_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("vocab_size", vocab_size), ("output_dim", output_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        self.vocab_size = vocab_size
        self.output_dim = output_dim
        self.scale = scale
        self.output_bias = output_bias
        self.embeddings_initializer = initializers.get(
            embeddings_initializer or initializers.RandomNormal(stddev=1.0 / math.sqrt(output_dim))
        )

    def build(self, inputs_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.vocab_size, self.output_dim),
            initializer=self.embeddings_initializer,
        )
        self.bias = (
            self.add_weight(name="output_bias", shape=(self.vocab_size,), initializer="zeros")
            if self.output_bias
            else None
        )

    def call(self, inputs, reverse=False):
        table = ops.convert_to_tensor(self.embeddings)  # (V, D)
        if reverse:
            shape = tf.shape(inputs)
            flat = tf.reshape(tf.cast(inputs, table.dtype), (-1, shape[-1]))  # (N, D)
            logits = tf.linalg.matmul(flat, table, transpose_b=True)  # (N, V): see the module
            if self.bias is not None:
                logits = logits + ops.cast(self.bias, logits.dtype)
            logits = tf.reshape(logits, tf.concat([shape[:-1], [self.vocab_size]], axis=0))
            return ops.cast(logits, "float32")
        rows = ops.take(table, ops.cast(inputs, "int32"), axis=0)  # (B, T, D)
        if self.scale:
            rows = rows * ops.cast(math.sqrt(self.output_dim), rows.dtype)
        return rows

    def compute_output_shape(self, inputs_shape, reverse=False):
        if reverse:
            return tuple(inputs_shape[:-1]) + (self.vocab_size,)
        return tuple(inputs_shape) + (self.output_dim,)

    def compute_output_spec(self, inputs, reverse=False):
        shape = self.compute_output_shape(inputs.shape, reverse=reverse)
        dtype = "float32" if reverse else self.compute_dtype
        return keras.KerasTensor(shape, dtype=dtype)

    config_arguments = (
        "vocab_size",
        "output_dim",
        "scale",
        "output_bias",
        "embeddings_initializer",
    )

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "input_dim" in config:  # a BERT run saved when this layer subclassed `Embedding`
            config["vocab_size"] = config.pop("input_dim")
            for name, default in _EMBEDDING_DEFAULTS.items():
                if config.pop(name, default) != default:
                    raise ValueError(
                        f"ReversibleEmbedding: a saved `{name}` is not supported "
                        f"(expected {default!r})"
                    )
        return cls(**config)


@keras.saving.register_keras_serializable(package="kseq")
class TokenEmbedding(ReversibleEmbedding):
    """`ReversibleEmbedding` under the name the seq2seq Transformer's runs were saved with before
    the families shared it; kseq builds `ReversibleEmbedding` now."""
