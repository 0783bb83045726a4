"""BERT-specific layers: pooler, task heads and span decoding (the tied token embedding is
`kseq.layers.embedding.ReversibleEmbedding`, shared with the Transformer seq2seq).

All of them lower to TFLite builtins: positions are gathered with a one-hot matmul (ONE_HOT +
BATCH_MATMUL, exact in float32) rather than `take_along_axis`, and span decoding compares two
ranges instead of `band_part`.

- `FirstTokenPooler`: `tanh(W h_[CLS] + b)`, BERT's pooled output.
- `GatherPositions`: `(B, S, D)` hidden states at `(B, P)` positions.
- `MaskedLMTransform`: gather + dense + activation + LayerNorm (the part of BERT's MLM head
  before the tied projection); `OutputBias` adds the per-token bias after it.
- `SpanLogits`: start/end logits for extractive question answering.
- `BestSpan`: the best `(start, end)` with `start <= end < start + max_answer_length` inside the
  allowed positions.
"""

from __future__ import annotations

import keras
from keras import initializers, ops

from kseq.layers.config import ArgumentsConfig
from kseq.layers.layer_norm import LayerNormalization
from kseq.layers.static_ops import position_one_hot
from kseq.layers.transformer import get_activation

__all__ = [
    "BestSpan",
    "FirstTokenPooler",
    "GatherPositions",
    "MaskedLMTransform",
    "OutputBias",
    "SpanLogits",
    "best_span",
    "gather_positions",
]

_NEG = -1e30  # below any real span score; finite, so max/argmax never see NaN


def gather_positions(sequence, positions):
    """`(B, S, D)` x `(B, P)` int positions -> `(B, P, D)` via a one-hot matmul (exact)."""
    length = ops.shape(sequence)[1]
    one_hot = position_one_hot(positions, length, sequence.dtype)  # (B, P, S), no ONE_HOT op
    return ops.matmul(one_hot, sequence)  # (B, P, D)


def best_span(start_logits, end_logits, allowed, max_answer_length):
    """Best-scoring span under the usual extractive-QA constraints.

    Args:
        start_logits, end_logits: `(B, S)` float.
        allowed: `(B, S)` bool or int, nonzero where a span may start or end (context tokens).
        max_answer_length: int, longest span in tokens.

    Returns:
        `(start, end, score)`: `(B,)` int32 positions (inclusive) and `(B,)` float
        `start_logits[start] + end_logits[end]`, maximised over `start <= end <
        start + max_answer_length` with both ends allowed. Ties go to the earliest start, then
        the earliest end. With no allowed position the result is `(0, 0)` with a score of -1e30.
    """
    length = ops.shape(start_logits)[1]
    scores = ops.expand_dims(start_logits, 2) + ops.expand_dims(end_logits, 1)  # (B, S, S)
    rows = ops.expand_dims(ops.arange(length, dtype="int32"), 1)  # (S, 1): start
    cols = ops.expand_dims(ops.arange(length, dtype="int32"), 0)  # (1, S): end
    offset = cols - rows
    valid = ops.logical_and(
        ops.greater_equal(offset, 0), ops.less(offset, max_answer_length)
    )  # (S, S)
    allowed = ops.cast(allowed, "bool")
    both = ops.logical_and(ops.expand_dims(allowed, 2), ops.expand_dims(allowed, 1))  # (B, S, S)
    valid = ops.logical_and(ops.expand_dims(valid, 0), both)
    scores = ops.where(valid, scores, ops.cast(_NEG, scores.dtype))
    flat = ops.reshape(scores, (ops.shape(scores)[0], length * length))  # (B, S*S)
    best = ops.max(flat, axis=-1, keepdims=True)  # (B, 1)
    # First index of the maximum; `ops.argmax` is avoided because Keras's TF version adds
    # Bitcast/BitwiseAnd ops (for -0.0) that have no TFLite builtin.
    cells = ops.expand_dims(ops.arange(length * length, dtype="int32"), 0)  # (1, S*S)
    index = ops.min(ops.where(ops.equal(flat, best), cells, length * length), axis=-1)  # (B,)
    start = index // length
    end = index - start * length
    return start, end, ops.squeeze(best, -1)


@keras.saving.register_keras_serializable(package="kseq")
class FirstTokenPooler(ArgumentsConfig, keras.layers.Layer):
    """BERT's pooler: `tanh(W h₀ + b)` on the hidden state of the first ([CLS]) token.

    Args:
        units: int, output size (the hidden size in BERT).
        kernel_initializer: initializer of `W`. Defaults to `"glorot_uniform"`.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: `(B, S, D)` hidden states.

    Returns:
        `(B, units)` pooled output.
    """

    def __init__(self, units, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.kernel_initializer = initializers.get(kernel_initializer)

    def build(self, inputs_shape):
        self.dense = keras.layers.Dense(
            self.units,
            activation="tanh",
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="dense",
        )
        self.dense.build((inputs_shape[0], inputs_shape[-1]))

    def call(self, inputs):
        # A slice, not `take(…, 0)`: NPU compilers leave a scalar-index GATHER on the CPU.
        first = ops.reshape(inputs[:, :1, :], (-1, inputs.shape[-1]))  # (B, D)
        return self.dense(first)  # (B, units)

    def compute_output_shape(self, inputs_shape):
        return (inputs_shape[0], self.units)

    config_arguments = ("units", "kernel_initializer")


@keras.saving.register_keras_serializable(package="kseq")
class GatherPositions(keras.layers.Layer):
    """Hidden states at given positions: `(B, S, D)`, `(B, P)` -> `(B, P, D)`.

    Uses a one-hot matmul, exact in float32 and builtin-only in TFLite. Out-of-range positions
    give zero vectors.

    Call arguments:
        sequence: `(B, S, D)` hidden states.
        positions: `(B, P)` int positions.

    Returns:
        `(B, P, D)`.
    """

    def call(self, sequence, positions):
        return gather_positions(sequence, positions)

    def compute_output_shape(self, sequence_shape, positions_shape):
        return tuple(positions_shape) + (sequence_shape[-1],)


@keras.saving.register_keras_serializable(package="kseq")
class MaskedLMTransform(ArgumentsConfig, keras.layers.Layer):
    """BERT's masked-LM transform: gather the masked positions, then `LN(act(W h + b))`.

    The vocabulary projection follows with the tied `ReversibleEmbedding(..., reverse=True)`
    and `OutputBias`.

    Sublayers (fixed names): `dense` `(D, D)`, `layer_norm`.

    Args:
        activation: activation name (see `kseq.layers.transformer.ACTIVATIONS`). Defaults to
            `"gelu"` (exact).
        layer_norm_epsilon: float. Defaults to `1e-12`.
        kernel_initializer: initializer of `dense`. Defaults to `"glorot_uniform"`.
        **kwargs: base layer arguments.

    Call arguments:
        sequence: `(B, S, D)` encoder outputs.
        positions: `(B, P)` int positions of the masked tokens.

    Returns:
        `(B, P, D)` transformed hidden states.
    """

    def __init__(
        self,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = initializers.get(kernel_initializer)
        self._activation_fn = get_activation(activation)

    def build(self, sequence_shape, positions_shape):
        hidden = sequence_shape[-1]
        self.dense = keras.layers.Dense(
            hidden,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="dense",
        )
        self.dense.build((None, None, hidden))
        self.layer_norm = LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )
        self.layer_norm.build((None, None, hidden))

    def call(self, sequence, positions):
        gathered = gather_positions(sequence, positions)  # (B, P, D)
        return self.layer_norm(self._activation_fn(self.dense(gathered)))  # (B, P, D)

    def compute_output_shape(self, sequence_shape, positions_shape):
        return tuple(positions_shape) + (sequence_shape[-1],)

    config_arguments = ("activation", "layer_norm_epsilon", "kernel_initializer")


@keras.saving.register_keras_serializable(package="kseq")
class OutputBias(keras.layers.Layer):
    """Adds a learned bias over the last axis (the masked-LM output bias).

    Call arguments:
        inputs: `(..., V)` logits.

    Returns:
        `(..., V)` logits plus the bias.
    """

    def build(self, inputs_shape):
        self.bias = self.add_weight(
            name="bias", shape=(inputs_shape[-1],), initializer="zeros", trainable=True
        )

    def call(self, inputs):
        return inputs + self.bias

    def compute_output_shape(self, inputs_shape):
        return inputs_shape


@keras.saving.register_keras_serializable(package="kseq")
class SpanLogits(ArgumentsConfig, keras.layers.Layer):
    """Start and end logits of an answer span: one `(D, 2)` dense layer, split.

    Sublayers (fixed names): `dense` `(D, 2)`; column 0 scores starts, column 1 ends.

    Args:
        kernel_initializer: initializer of `dense`. Defaults to `"glorot_uniform"`.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: `(B, S, D)` encoder outputs.

    Returns:
        `(start_logits, end_logits)`, each `(B, S)`.
    """

    def __init__(self, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = initializers.get(kernel_initializer)

    def build(self, inputs_shape):
        self.dense = keras.layers.Dense(
            2, kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy, name="dense"
        )
        self.dense.build(inputs_shape)

    def call(self, inputs):
        logits = self.dense(inputs)  # (B, S, 2)
        start, end = ops.split(logits, 2, axis=-1)
        return ops.squeeze(start, -1), ops.squeeze(end, -1)  # (B, S), (B, S)

    def compute_output_shape(self, inputs_shape):
        shape = tuple(inputs_shape[:-1])
        return shape, shape

    config_arguments = ("kernel_initializer",)


@keras.saving.register_keras_serializable(package="kseq")
class BestSpan(ArgumentsConfig, keras.layers.Layer):
    """Decodes the best answer span from start/end logits (see `best_span`); no weights.

    Args:
        max_answer_length: int, longest answer in tokens.
        **kwargs: base layer arguments.

    Call arguments:
        start_logits, end_logits: `(B, S)`.
        allowed: `(B, S)` bool/int, nonzero where an answer may start or end.

    Returns:
        `(start, end, score)`: `(B,)` int32, `(B,)` int32, `(B,)` float.
    """

    def __init__(self, max_answer_length, **kwargs):
        super().__init__(**kwargs)
        self.max_answer_length = max_answer_length
        self.built = True

    def call(self, start_logits, end_logits, allowed):
        return best_span(start_logits, end_logits, allowed, self.max_answer_length)

    def compute_output_spec(self, start_logits, end_logits, allowed):
        batch = (start_logits.shape[0],)
        return (
            keras.KerasTensor(batch, dtype="int32"),
            keras.KerasTensor(batch, dtype="int32"),
            keras.KerasTensor(batch, dtype=start_logits.dtype),
        )

    config_arguments = ("max_answer_length",)
