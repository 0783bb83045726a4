"""Pieces of the Transformer encoder-decoder (`model.type: transformer_seq2seq`).

- `TokenEmbedding`: token table scaled by `√D`, also usable in reverse as the tied output
  projection (`logits = h · Eᵀ + b`).
- `PositionTable`: sinusoidal or learned encodings of positions `0 … sequence_length - 1`, by
  slice (teacher forcing) or by row index (one decoding step); it wraps
  `kseq.layers.transformer.SinusoidalPositionEncoding` / `PositionEmbedding`.

The blocks themselves are `kseq.layers.transformer`'s encoder and decoder layers; the decoder
layer's `call` also runs one cached decoding step.
"""

from __future__ import annotations

import math

import keras
from keras import initializers, ops

from kseq.layers.config import ArgumentsConfig
from kseq.layers.transformer import PositionEmbedding, SinusoidalPositionEncoding

__all__ = ["PositionTable", "TokenEmbedding"]

POSITION_KINDS = ("sinusoidal", "learned")


@keras.saving.register_keras_serializable(package="kseq")
class TokenEmbedding(ArgumentsConfig, keras.layers.Layer):
    """Token embeddings `E` `(V, D)`, scaled by `√D`; in reverse, the tied output projection.

    Forward: `ids (B, T) -> E[ids] · √D (B, T, D)` (`scale=True`). Reverse: `h (..., D) ->
    h · Eᵀ + b (..., V)` float32 logits, `b` a `(V,)` bias when `output_bias=True`. The same layer
    object is called both ways in a functional model, so the table is shared (Press & Wolf, 2017).

    Masking: none; padding (id 0) is embedded like any token, the callers build padding masks.

    Args:
        vocab_size: int, rows `V` of the table.
        output_dim: int, width `D`.
        scale: bool, multiply looked-up rows by `√D`. Defaults to True.
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
    embedding = TokenEmbedding(1000, 64)
    hidden = embedding(token_ids)  # (B, T) -> (B, T, 64)
    logits = embedding(hidden, reverse=True)  # (B, T, 64) -> (B, T, 1000)
    ```
    """

    def __init__(
        self,
        vocab_size,
        output_dim,
        scale=True,
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
            logits = ops.matmul(inputs, ops.transpose(table))  # (..., V)
            if self.bias is not None:
                logits = logits + self.bias
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


@keras.saving.register_keras_serializable(package="kseq")
class PositionTable(ArgumentsConfig, keras.layers.Layer):
    """Encodings of positions `0 … sequence_length - 1`: sinusoidal (fixed) or learned.

    Teacher forcing adds `call(x)` (the first `T` rows, broadcast to `(B, T, D)`); a decoding
    step adds `rows(positions)` (`(B,)` -> `(B, D)`), the same values by row index. The decoder
    of `transformer_seq2seq` also sizes its key/value caches by `sequence_length`.

    Sublayers: `position_embedding` (`PositionEmbedding`, learned) or `sinusoidal_encoding`
    (`SinusoidalPositionEncoding`).

    Masking: none.

    Args:
        sequence_length: int, number of positions (rows of the table; inputs longer than
            this fail).
        kind: `"sinusoidal"` or `"learned"`.
        max_wavelength: float, longest sinusoid wavelength. Defaults to 10000.
        initializer: initializer of the learned table. Defaults to `"glorot_uniform"`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: `(B, T, D)`; only its shape is used.

    Returns:
        `(B, T, D)` encodings of positions `0 … T - 1`.
    """

    def __init__(
        self,
        sequence_length,
        kind="sinusoidal",
        max_wavelength=10000.0,
        initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(sequence_length, int) or sequence_length < 1:
            raise ValueError(
                f"`sequence_length` must be a positive int. Received: {sequence_length!r}"
            )
        if kind not in POSITION_KINDS:
            raise ValueError(f"`kind` must be one of {POSITION_KINDS}. Received: kind={kind!r}")
        self.sequence_length = sequence_length
        self.kind = kind
        self.max_wavelength = max_wavelength
        self.initializer = initializers.get(initializer)
        if kind == "learned":
            self.encoding = PositionEmbedding(
                sequence_length,
                initializer=self.initializer,
                dtype=self.dtype_policy,
                name="position_embedding",
            )
        else:
            self.encoding = SinusoidalPositionEncoding(
                max_wavelength, dtype=self.dtype_policy, name="sinusoidal_encoding"
            )

    def build(self, inputs_shape):
        self.dim = int(inputs_shape[-1])
        if self.kind == "learned":
            self.encoding.build((None, self.sequence_length, self.dim))

    def call(self, inputs):
        if self.kind == "learned":
            return self.encoding(inputs)  # (B, T, D)
        # The first T rows of the whole table, the same values as computing them for T. The
        # table's shape is static, so the converter folds it into a constant: an int8 file
        # stores the encodings instead of running SIN on int8 angles up to `sequence_length`
        # (measured on the date Transformer: 0.6 points of exact match lost that way).
        shape = ops.shape(inputs)
        rows = ops.slice(self.table(), (0, 0), (shape[1], self.dim))  # (T, D)
        return ops.broadcast_to(ops.expand_dims(rows, 0), shape)

    def table(self):
        """All `(sequence_length, D)` encodings."""
        if self.kind == "learned":  # read outside `call`: no autocast, so cast here
            table = ops.convert_to_tensor(self.encoding.position_embeddings)
            return ops.cast(table, self.compute_dtype)
        shape = (1, self.sequence_length, self.dim)
        return self.encoding(ops.zeros(shape, self.compute_dtype))[0]  # (L, D)

    def rows(self, positions):
        """`(B,)` int positions (clipped to the table) -> `(B, D)` encodings."""
        positions = ops.clip(ops.cast(positions, "int32"), 0, self.sequence_length - 1)
        return ops.take(self.table(), positions, axis=0)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    config_arguments = ("sequence_length", "kind", "max_wavelength", "initializer")
