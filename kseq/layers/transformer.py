"""Transformer building blocks that export to builtin-only TFLite.

- `TransformerEncoderLayer`: self-attention + feed-forward, post-LN (BERT) or pre-LN.
- `TransformerDecoderLayer`: causal self-attention + cross-attention + feed-forward.
- `PositionEmbedding` (learned) and `SinusoidalPositionEncoding` (fixed).
- Mask helpers `padding_attention_mask`, `causal_attention_mask`, `merge_attention_masks`.

Masks are built from ops with TFLite builtins only: `ops.expand_dims` (never `x[:, None]`, which
can become a Flex StridedSlice) and a comparison of two ranges for the causal mask (never
`tf.linalg.band_part`, which has no builtin). Attention masks are boolean, `True` where a query
position may attend to a key position, of shape `(B, T, S)` or broadcastable to it (`(B, 1, S)`
for padding, `(1, T, S)` for causality).

`"gelu"` is the exact erf GELU used by BERT (`0.5·x·(1 + erf(x/√2))`); `"gelu_approximate"` is
the tanh form. Both lower to the TFLite GELU builtin.
"""

from __future__ import annotations

import math

import keras
from keras import initializers, ops

from kseq.layers.config import ArgumentsConfig
from kseq.layers.layer_norm import LayerNormalization
from kseq.layers.masked_softmax import MaskedMultiHeadAttention

__all__ = [
    "PositionEmbedding",
    "SinusoidalPositionEncoding",
    "TransformerDecoderLayer",
    "TransformerEncoderLayer",
    "block_arguments",
    "causal_attention_mask",
    "get_activation",
    "merge_attention_masks",
    "padding_attention_mask",
]

ACTIVATIONS = ("gelu", "gelu_approximate", "relu", "silu", "tanh")


def get_activation(name: str):
    """The activation function for a name in `ACTIVATIONS` (`"gelu"` is the exact erf GELU)."""
    if name == "gelu":
        return lambda x: keras.activations.gelu(x, approximate=False)
    if name == "gelu_approximate":
        return lambda x: keras.activations.gelu(x, approximate=True)
    if name in ACTIVATIONS:
        return keras.activations.get(name)
    raise ValueError(f"`activation` must be one of {ACTIVATIONS}. Received: activation={name!r}")


def padding_attention_mask(padding_mask):
    """`(B, S)` padding mask (1/True = real token) -> `(B, 1, S)` bool attention mask.

    Every query position may attend to every real key position; broadcasts against `(B, T, S)`.
    """
    return ops.expand_dims(ops.cast(padding_mask, "bool"), 1)  # (B, 1, S)


def causal_attention_mask(query_length, key_length=None, start_index=0):
    """`(1, T, S)` bool mask: query position `start_index + i` sees key positions `<=` itself.

    Built by comparing two ranges (no `band_part`, no `tril`), so it lowers to builtins with a
    dynamic length.

    Args:
        query_length: T, an int or a scalar tensor.
        key_length: S; defaults to `start_index + query_length`.
        start_index: position of the first query (decoding with a cache of earlier keys).
    """
    if key_length is None:
        key_length = query_length + start_index
    rows = ops.arange(query_length, dtype="int32") + start_index  # (T,)
    cols = ops.arange(key_length, dtype="int32")  # (S,)
    mask = ops.greater_equal(ops.expand_dims(rows, 1), ops.expand_dims(cols, 0))  # (T, S)
    return ops.expand_dims(mask, 0)  # (1, T, S)


def merge_attention_masks(*masks):
    """Logical AND of bool masks broadcastable to `(B, T, S)`; `None` entries are skipped."""
    masks = [ops.cast(m, "bool") for m in masks if m is not None]
    if not masks:
        return None
    merged = masks[0]
    for mask in masks[1:]:
        merged = ops.logical_and(merged, mask)
    return merged


def block_arguments(spec) -> dict:
    """A Transformer layer's arguments from a model spec that names them as BERT's and the
    Transformer seq2seq's do (`intermediate_size`, `num_heads`, `dropout`, `activation`,
    `layer_norm_epsilon`, `norm_first`)."""
    return {
        "intermediate_dim": spec.intermediate_size,
        "num_heads": spec.num_heads,
        "dropout": spec.dropout,
        "activation": spec.activation,
        "layer_norm_epsilon": spec.layer_norm_epsilon,
        "norm_first": spec.norm_first,
    }


def clone_initializer(initializer):
    """A fresh instance with the same config, so sublayers do not share one initializer object."""
    return initializers.get(initializers.serialize(initializer))


def _dense_kwargs(layer):
    return dict(
        kernel_initializer=clone_initializer(layer.kernel_initializer),
        bias_initializer=clone_initializer(layer.bias_initializer),
        dtype=layer.dtype_policy,
    )


class _TransformerBlock(ArgumentsConfig, keras.layers.Layer):
    """Shared constructor arguments, feed-forward sublayers and config of the two blocks."""

    def __init__(
        self,
        intermediate_dim,
        num_heads,
        dropout=0.0,
        attention_dropout=None,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        norm_first=False,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        get_activation(activation)  # validate early
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.norm_first = norm_first
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self._activation_fn = get_activation(activation)
        self.supports_masking = True

    def _attention(self, name, hidden_dim):
        if hidden_dim % self.num_heads:
            raise ValueError(
                f"The hidden size ({hidden_dim}) must be divisible by `num_heads`. "
                f"Received: num_heads={self.num_heads}"
            )
        dropout = self.dropout if self.attention_dropout is None else self.attention_dropout
        return MaskedMultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=hidden_dim // self.num_heads,
            dropout=dropout,
            name=name,
            **_dense_kwargs(self),
        )

    def _layer_norm(self, name, shape):
        norm = LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )
        norm.build(shape)
        return norm

    def _dropout(self, name):
        return keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name=name)

    def _build_self_attention(self, shape):
        self.self_attention = self._attention("self_attention", shape[-1])
        self.self_attention.build(shape, shape)
        self.self_attention_layer_norm = self._layer_norm("self_attention_layer_norm", shape)
        self.self_attention_dropout = self._dropout("self_attention_dropout")

    def _build_feedforward(self, shape):
        hidden_dim = shape[-1]
        self.feedforward_layer_norm = self._layer_norm("feedforward_layer_norm", shape)
        self.intermediate_dense = keras.layers.Dense(
            self.intermediate_dim, name="intermediate_dense", **_dense_kwargs(self)
        )
        self.intermediate_dense.build(shape)
        self.output_dense = keras.layers.Dense(
            hidden_dim, name="output_dense", **_dense_kwargs(self)
        )
        self.output_dense.build(tuple(shape[:-1]) + (self.intermediate_dim,))
        self.output_dropout = self._dropout("output_dropout")

    def _residual(self, x, sublayer, norm, dropout, training):
        """`norm(x + f(x))` (post-LN) or `x + f(norm(x))` (pre-LN)."""
        if self.norm_first:
            return x + dropout(sublayer(norm(x)), training=training)
        return norm(x + dropout(sublayer(x), training=training))

    def _feedforward(self, x):
        return self.output_dense(self._activation_fn(self.intermediate_dense(x)))

    def compute_output_shape(self, inputs_shape, *args, **kwargs):
        return inputs_shape

    config_arguments = (
        "intermediate_dim",
        "num_heads",
        "dropout",
        "attention_dropout",
        "activation",
        "layer_norm_epsilon",
        "norm_first",
        "kernel_initializer",
        "bias_initializer",
    )


@keras.saving.register_keras_serializable(package="kseq")
class TransformerEncoderLayer(_TransformerBlock):
    """One Transformer encoder block: multi-head self-attention and a feed-forward network.

    Post-LN (BERT, the default): `h = LN(x + Drop(MHA(x))); y = LN(h + Drop(FFN(h)))`.
    Pre-LN (`norm_first=True`): `h = x + Drop(MHA(LN(x))); y = h + Drop(FFN(LN(h)))`.
    `FFN(x) = W₂ act(W₁ x + b₁) + b₂`. Attention probabilities get dropout too.

    Sublayers (fixed names): `self_attention` (`MaskedMultiHeadAttention`, key size
    `D / num_heads`), `self_attention_layer_norm`, `self_attention_dropout`,
    `intermediate_dense` `(D, F)`, `output_dense` `(F, D)`, `feedforward_layer_norm`,
    `output_dropout`.

    Masking: `padding_mask` `(B, S)` (1 = real token) stops every position from attending to
    padded keys; `attention_mask` `(B, T, S)` (or broadcastable) is combined with it by AND. A
    Keras mask on `inputs` is used as the padding mask when none is given, and passed on.
    Outputs at padded positions are computed but meaningless; real positions do not depend on
    the padding (padding invariance).

    Args:
        intermediate_dim: int, width `F` of the feed-forward layer.
        num_heads: int, attention heads; must divide the hidden size `D`.
        dropout: float, dropout after attention/feed-forward and on attention probabilities.
        attention_dropout: float or None; dropout on attention probabilities (None = `dropout`).
        activation: `"gelu"` (exact erf, BERT), `"gelu_approximate"`, `"relu"`, `"silu"`,
            `"tanh"`. Defaults to `"gelu"`.
        layer_norm_epsilon: float, LayerNorm epsilon. Defaults to `1e-12` (BERT).
        norm_first: bool, pre-LN when True. Defaults to False (post-LN, BERT).
        kernel_initializer: initializer of every kernel. Defaults to `"glorot_uniform"`.
        bias_initializer: initializer of every bias. Defaults to `"zeros"`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: `(B, S, D)` hidden states.
        padding_mask: optional `(B, S)` int or bool, nonzero at real tokens.
        attention_mask: optional bool `(B, S, S)` (or broadcastable).
        training: bool, enables dropout.

    Returns:
        `(B, S, D)` hidden states.

    Example:
    ```python
    layer = TransformerEncoderLayer(intermediate_dim=512, num_heads=4)
    outputs = layer(hidden, padding_mask=padding_mask)  # (B, S, 128) -> (B, S, 128)
    ```
    """

    def build(self, inputs_shape, *args, **kwargs):
        shape = tuple(inputs_shape)
        self._build_self_attention(shape)
        self._build_feedforward(shape)

    def call(self, inputs, padding_mask=None, attention_mask=None, training=None, mask=None):
        if padding_mask is None:
            padding_mask = mask
        mask = merge_attention_masks(
            None if padding_mask is None else padding_attention_mask(padding_mask),
            attention_mask,
        )  # (B, 1 or S, S)

        def attend(x):
            return self.self_attention(x, x, attention_mask=mask, training=training)  # (B, S, D)

        x = self._residual(
            inputs, attend, self.self_attention_layer_norm, self.self_attention_dropout, training
        )
        return self._residual(
            x, self._feedforward, self.feedforward_layer_norm, self.output_dropout, training
        )  # (B, S, D)

    def compute_mask(self, inputs, mask=None):
        return mask


@keras.saving.register_keras_serializable(package="kseq")
class TransformerDecoderLayer(_TransformerBlock):
    """One Transformer decoder block: causal self-attention, cross-attention, feed-forward.

    Post-LN: `h = LN(x + SelfAttn(x)); h = LN(h + CrossAttn(h, memory)); y = LN(h + FFN(h))`;
    pre-LN normalises each sublayer's input instead. Without `memory` the cross-attention is
    skipped (a decoder-only block). The causal mask is built from two ranges (builtin ops).

    Sublayers (fixed names): `self_attention`, `self_attention_layer_norm`,
    `self_attention_dropout`, `cross_attention`, `cross_attention_layer_norm`,
    `cross_attention_dropout`, `intermediate_dense`, `output_dense`, `feedforward_layer_norm`,
    `output_dropout`.

    Masking: `padding_mask` `(B, T)` masks padded target keys; `memory_padding_mask` `(B, S)`
    masks padded memory positions in the cross-attention. Self-attention is always causal.

    Cached decoding (one target position per call, inference): `self_attention_cache` is the
    pair `(keys, values)` of earlier positions, each `(B, L, N, K)`, and `cache_position` `(B,)`
    the position of this step; its key and value are written into that slot and the step
    attends to the slots up to it. `cross_attention_cache` is the memory's `(keys, values)`
    `(B, S, N, K)` projected once by `cross_attention.key_dense` / `value_dense`, used instead
    of `memory`. The outputs equal the full causal call's at that position.

    Args:
        Same as `TransformerEncoderLayer`.

    Call arguments:
        inputs: `(B, T, D)` target-side hidden states.
        memory: optional `(B, S, D_m)` encoder outputs.
        padding_mask: optional `(B, T)`, nonzero at real target tokens.
        memory_padding_mask: optional `(B, S)`, nonzero at real memory tokens.
        self_attention_cache: optional `(keys, values)`, each `(B, L, N, K)`.
        cache_position: `(B,)` int, the step's slot; needed with `self_attention_cache`.
        cross_attention_cache: optional `(keys, values)`, each `(B, S, N, K)`.
        return_attention_scores: bool, also return the cross-attention weights `(B, N, T, S)`.
        training: bool, enables dropout.

    Returns:
        `(B, T, D)` hidden states; with `return_attention_scores` and/or a self-attention cache,
        the tuple `(outputs, [cross-attention weights], [updated (keys, values)])`.

    Example:
    ```python
    layer = TransformerDecoderLayer(intermediate_dim=256, num_heads=4)
    outputs = layer(target_hidden, memory=encoded, memory_padding_mask=source_mask)
    ```
    """

    def build(self, inputs_shape, memory_shape=None, *args, **kwargs):
        shape = tuple(inputs_shape)
        self._build_self_attention(shape)
        self.cross_attention = self._attention("cross_attention", shape[-1])
        memory_shape = tuple(memory_shape) if memory_shape is not None else shape
        self.cross_attention.build(shape, memory_shape)
        self.cross_attention_layer_norm = self._layer_norm("cross_attention_layer_norm", shape)
        self.cross_attention_dropout = self._dropout("cross_attention_dropout")
        self._build_feedforward(shape)

    def call(
        self,
        inputs,
        memory=None,
        padding_mask=None,
        memory_padding_mask=None,
        self_attention_cache=None,
        cache_position=None,
        cross_attention_cache=None,
        return_attention_scores=False,
        training=None,
    ):
        if self_attention_cache is None:
            self_mask = merge_attention_masks(
                causal_attention_mask(ops.shape(inputs)[1]),
                None if padding_mask is None else padding_attention_mask(padding_mask),
            )  # (B or 1, T, T)
        else:  # one step at `cache_position`: it sees the slots up to and including its own
            if cache_position is None:
                raise ValueError("`self_attention_cache` needs `cache_position`.")
            slots = ops.arange(self_attention_cache[0].shape[1], dtype="int32")  # (L,)
            position = ops.expand_dims(ops.cast(cache_position, "int32"), 1)  # (B, 1)
            self_mask = ops.expand_dims(ops.less_equal(slots, position), 1)  # (B, 1, L)
        updated_cache = []

        def self_attend(x):
            if self_attention_cache is None:
                return self.self_attention(x, x, attention_mask=self_mask, training=training)
            outputs, cache = self.self_attention(
                x,
                x,
                attention_mask=self_mask,
                cache=self_attention_cache,
                cache_position=cache_position,
                training=training,
            )
            updated_cache.append(cache)
            return outputs

        x = self._residual(
            inputs,
            self_attend,
            self.self_attention_layer_norm,
            self.self_attention_dropout,
            training,
        )
        scores = []
        if memory is not None or cross_attention_cache is not None:
            cross_mask = (
                None if memory_padding_mask is None else padding_attention_mask(memory_padding_mask)
            )  # (B, 1, S)

            def cross_attend(h):
                if cross_attention_cache is None:
                    result = self.cross_attention(
                        h,
                        memory,
                        attention_mask=cross_mask,
                        return_attention_scores=return_attention_scores,
                        training=training,
                    )
                    outputs, weights = result if return_attention_scores else (result, None)
                else:  # the memory's keys and values, projected once by the caller
                    outputs, weights, _ = self.cross_attention(
                        h,
                        attention_mask=cross_mask,
                        return_attention_scores=True,
                        cache=cross_attention_cache,
                        training=training,
                    )
                scores.append(weights)
                return outputs

            x = self._residual(
                x,
                cross_attend,
                self.cross_attention_layer_norm,
                self.cross_attention_dropout,
                training,
            )
        outputs = self._residual(
            x, self._feedforward, self.feedforward_layer_norm, self.output_dropout, training
        )  # (B, T, D)
        if not return_attention_scores and self_attention_cache is None:
            return outputs
        result = (outputs,)
        if return_attention_scores:
            result += (scores[0] if scores else None,)  # None: no memory, no cross-attention
        if self_attention_cache is not None:
            result += (updated_cache[0],)
        return result


@keras.saving.register_keras_serializable(package="kseq")
class PositionEmbedding(ArgumentsConfig, keras.layers.Layer):
    """Learned position embeddings: row `p` of a `(sequence_length, D)` table for position `p`.

    Masking: none (positions do not depend on padding); the input's Keras mask is passed on.

    Args:
        sequence_length: int, the largest supported length (rows of the table).
        initializer: initializer of the table. Defaults to `"glorot_uniform"`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: `(B, S, D)` tensor; only its shape is used (S may be dynamic, up to
            `sequence_length`).
        start_index: int or scalar tensor, position of the first input step. Defaults to 0.

    Returns:
        `(B, S, D)` position embeddings for positions `start_index … start_index + S - 1`.

    Example:
    ```python
    tokens = keras.layers.Embedding(1000, 64)(token_ids)  # (B, S, 64)
    hidden = tokens + PositionEmbedding(128)(tokens)  # (B, S, 64)
    ```
    """

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(sequence_length, int) or sequence_length < 1:
            raise ValueError(
                f"`sequence_length` must be a positive int. Received: {sequence_length!r}"
            )
        self.sequence_length = sequence_length
        self.initializer = initializers.get(initializer)
        self.supports_masking = True

    def build(self, inputs_shape):
        self.position_embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, inputs_shape[-1]),
            initializer=self.initializer,
            trainable=True,
        )

    def call(self, inputs, start_index=0):
        shape = ops.shape(inputs)
        length = shape[1]
        table = ops.convert_to_tensor(self.position_embeddings)
        rows = ops.slice(table, (start_index, 0), (length, shape[-1]))  # (S, D)
        return ops.broadcast_to(ops.expand_dims(rows, 0), shape)  # (B, S, D)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    config_arguments = ("sequence_length", "initializer")


@keras.saving.register_keras_serializable(package="kseq")
class SinusoidalPositionEncoding(ArgumentsConfig, keras.layers.Layer):
    """Fixed sinusoidal position encodings (Vaswani et al., 2017); no weights.

    `PE[p, 2i] = sin(p / w^(2i/D))`, `PE[p, 2i+1] = cos(p / w^(2i/D))` with `w =
    max_wavelength`. The cosine is computed as `sin(x + π/2)`, so only the SIN builtin is needed.

    Args:
        max_wavelength: float, the longest wavelength. Defaults to 10000.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: `(B, S, D)` tensor; only its shape is used.
        start_index: int or scalar tensor, position of the first step. Defaults to 0.

    Returns:
        `(B, S, D)` encodings, in the dtype of the layer.

    Example:
    ```python
    hidden = embedded + SinusoidalPositionEncoding()(embedded)
    ```
    """

    def __init__(self, max_wavelength=10000.0, **kwargs):
        super().__init__(**kwargs)
        self.max_wavelength = max_wavelength
        self.supports_masking = True
        self.built = True

    def call(self, inputs, start_index=0):
        shape = ops.shape(inputs)
        length, dim = shape[1], shape[-1]
        dtype = self.compute_dtype
        positions = ops.cast(ops.arange(length) + start_index, dtype)  # (S,)
        channels = ops.arange(dim)  # (D,)
        pair = ops.cast(channels // 2 * 2, dtype)  # 2i for channels 2i and 2i + 1
        inverse = ops.exp(-pair / ops.cast(dim, dtype) * math.log(self.max_wavelength))  # (D,)
        phase = ops.cast(channels % 2, dtype) * (math.pi / 2)  # 0 (sin) or π/2 (cos)
        angles = ops.expand_dims(positions, 1) * ops.expand_dims(inverse, 0)  # (S, D)
        encoding = ops.sin(angles + ops.expand_dims(phase, 0))  # (S, D)
        return ops.broadcast_to(ops.expand_dims(encoding, 0), shape)  # (B, S, D)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    config_arguments = ("max_wavelength",)
