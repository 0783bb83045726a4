"""Pieces of the Transformer encoder-decoder (`model.type: transformer_seq2seq`).

- `PositionTable`: sinusoidal or learned encodings of positions `0 … sequence_length - 1`, by
  slice (teacher forcing) or by row index (one decoding step); it wraps
  `kseq.layers.transformer.SinusoidalPositionEncoding` / `PositionEmbedding`.

The token table (scaled by `√D`, in reverse the tied output projection) is
`kseq.layers.embedding.ReversibleEmbedding`, shared with BERT. The blocks themselves are
`kseq.layers.transformer`'s encoder and decoder layers; the decoder layer's `call` also runs one
cached decoding step.
"""

from __future__ import annotations

import keras
from keras import initializers, ops

from kseq.layers.config import ArgumentsConfig
from kseq.layers.transformer import PositionEmbedding, SinusoidalPositionEncoding

__all__ = ["PositionTable"]

POSITION_KINDS = ("sinusoidal", "learned")


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
