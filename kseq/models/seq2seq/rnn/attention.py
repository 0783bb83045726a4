"""Bahdanau and Luong attention for RNN encoder-decoders, exportable to builtin-only TFLite.

All layers take a decoder query `(B, U)` (one decode step) or `(B, T, U)` (teacher forcing)
and encoder outputs `values (B, S, H)` with a source mask `(B, S)`, and return the context
`(B, [T,] H)` and the attention weights `(B, [T,] S)`. Padded source positions get exactly
zero weight and a row whose source is entirely padding gets all-zero weights and a zero context
(`masked_softmax`, which has no large negative constant, so the weights survive int8).

The score's key side depends only on the source, so `precompute_keys(values)` computes it once
per source sentence and `call(..., keys=keys)` reuses it at every decode step.

Only ops with TFLite builtins are used: `expand_dims` rather than `x[:, None]` (which can
become a Flex StridedSlice) and plain matmuls rather than einsum.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import initializers, ops

from kseq.layers.config import ArgumentsConfig
from kseq.layers.masked_softmax import masked_softmax

_LUONG_SCORES = ("dot", "general", "concat")


def _trained_masked_softmax(scores, mask, axis=-1):
    """The training form: a large negative score at padding (not int8-safe; inference and
    exports use `masked_softmax`), then exact zeros there and for a fully padded row."""
    mask = ops.cast(mask, "bool")
    # -1e9 overflows float16 to -inf; -inf - (-inf) in the softmax would give NaN.
    large_negative = -3e4 if keras.backend.standardize_dtype(scores.dtype) == "float16" else -1e9
    weights = ops.softmax(ops.where(mask, scores, large_negative), axis=axis)
    return ops.where(mask, weights, ops.zeros_like(weights))


class _SourceAttention(ArgumentsConfig, keras.layers.Layer):
    """Shared masking, softmax and context of the attention layers here.

    Subclasses define `precompute_keys(values) -> (B, S, K)` and
    `_scores(query (B, T, U), keys (B, S, K)) -> (B, T, S)`.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def precompute_keys(self, values):
        raise NotImplementedError

    def _scores(self, query, keys):
        raise NotImplementedError

    def _build_additive(self, query_shape, values_shape, dense):
        """`key_dense` W₁, `query_dense` W₂ and `score_dense` v of `vᵀ tanh(W₁ h + W₂ s)`."""
        self.key_dense = keras.layers.Dense(self.units, name="key_dense", **dense)
        self.key_dense.build(values_shape)
        self.query_dense = keras.layers.Dense(self.units, name="query_dense", **dense)
        self.query_dense.build(query_shape)
        self.score_dense = keras.layers.Dense(1, name="score_dense", **dense)
        self.score_dense.build((None, None, None, self.units))

    def _additive_scores(self, query, keys):
        projected = ops.expand_dims(self.query_dense(query), 2)  # (B, T, 1, A)
        features = ops.tanh(projected + ops.expand_dims(keys, 1))  # (B, T, S, A)
        return ops.squeeze(self.score_dense(features), -1)  # (B, T, S)

    def _check_built(self):
        if not self.built:
            raise ValueError(
                f"{self.__class__.__name__} {self.name!r} must be built (called once on a "
                "query and values) before `precompute_keys` can be used."
            )

    def call(self, query, values, values_mask=None, keys=None, training=None):
        single_step = len(query.shape) == 2
        if single_step:
            query = ops.expand_dims(query, 1)  # (B, 1, U)
        if keys is None:
            keys = self.precompute_keys(values)  # (B, S, K)
        scores = self._scores(query, keys)  # (B, T, S)
        if values_mask is not None:
            mask = ops.expand_dims(values_mask, 1)  # (B, 1, S)
            # The same values both ways; training keeps the form models always trained with, so
            # a rounding order alone does not send training down another path.
            masked = _trained_masked_softmax if training else masked_softmax
            weights = masked(scores, mask, axis=-1)  # (B, T, S)
        else:
            weights = ops.softmax(scores, axis=-1)  # (B, T, S)
        context = ops.matmul(weights, ops.cast(values, weights.dtype))  # (B, T, H)
        if single_step:
            context = ops.squeeze(context, 1)  # (B, H)
            weights = ops.squeeze(weights, 1)  # (B, S)
        return context, weights

    def compute_output_shape(self, query_shape, values_shape):
        leading = tuple(query_shape[:-1])  # (B,) or (B, T)
        return leading + (values_shape[-1],), leading + (values_shape[1],)

    def compute_mask(self, inputs, mask=None):
        # The query's time mask (if any) carries over to the context and the weights.
        if mask is None:
            return None
        return [mask, mask]


@keras.saving.register_keras_serializable(package="kseq")
class BahdanauAttention(_SourceAttention):
    """Additive attention (Bahdanau et al., 2015): `score(s, h_i) = vᵀ tanh(W₁ h_i + W₂ s)`.

    Sublayers (no biases, as in the paper): `key_dense` = W₁ `(H, A)`, `query_dense` = W₂
    `(U, A)`, `score_dense` = v `(A, 1)`.

    Masking: `values_mask` `(B, S)` (filled automatically from the Keras mask of `values`,
    e.g. an encoder fed by `Embedding(mask_zero=True)`) gives padded source positions exactly
    zero weight. The query's own mask, if any, is passed on to both outputs.

    Args:
        units: int, attention size `A`.
        kernel_initializer: initializer of W₁, W₂ and v. Defaults to `"glorot_uniform"`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        query: decoder state `(B, U)` or states `(B, T, U)`.
        values: encoder outputs `(B, S, H)`.
        values_mask: optional `(B, S)` bool tensor, True at real source positions.
        keys: optional `precompute_keys(values)` result `(B, S, A)`, to skip W₁ per step.

    Returns:
        `(context, weights)`: `(B, H)` and `(B, S)` for a 2D query, `(B, T, H)` and
        `(B, T, S)` for a 3D query. Weights sum to 1 over real source positions.

    Example:
    ```python
    attention = BahdanauAttention(16)
    context, weights = attention(decoder_h, encoder_outputs)  # (B, H), (B, S)
    keys = attention.precompute_keys(encoder_outputs)  # once per source
    context, weights = attention(decoder_h, encoder_outputs, source_mask, keys=keys)
    ```
    """

    def __init__(self, units, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.kernel_initializer = initializers.get(kernel_initializer)

    def build(self, query_shape, values_shape):
        dense = dict(
            use_bias=False, kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy
        )
        self._build_additive(query_shape, values_shape, dense)

    def precompute_keys(self, values):
        """W₁ h_i for every source position: `(B, S, H) -> (B, S, A)`."""
        self._check_built()
        return self.key_dense(values)

    def _scores(self, query, keys):
        return self._additive_scores(query, keys)

    config_arguments = ("units", "kernel_initializer")


@keras.saving.register_keras_serializable(package="kseq")
class LuongAttention(_SourceAttention):
    """Multiplicative attention (Luong et al., 2015) with its three score functions.

    - `"dot"`: `score(h, h_i) = hᵀ h_i`; needs `U == H`; no weights.
    - `"general"`: `score(h, h_i) = hᵀ W h_i`; sublayer `key_dense` `(H, U)` computes
      `W h_i` (so `W` is its kernel transposed).
    - `"concat"`: `score(h, h_i) = vᵀ tanh(W [h; h_i])`; `W = [W_q | W_k]` is held as
      `query_dense (U, A)` and `key_dense (H, A)`, `v` as `score_dense (A, 1)`; no biases.

    Luong's attentional hidden state `h̃ = tanh(W_c [c; h])` is the separate layer
    `LuongAttentionalState`.

    Masking: as `BahdanauAttention` (`values_mask` gives padded positions exactly zero weight).

    Args:
        score: `"dot"`, `"general"` or `"concat"`. Defaults to `"general"`.
        units: int, attention size `A`; required for `"concat"`, ignored otherwise.
        kernel_initializer: initializer of the score weights. Defaults to `"glorot_uniform"`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        query: decoder state `(B, U)` or states `(B, T, U)`.
        values: encoder outputs `(B, S, H)`.
        values_mask: optional `(B, S)` bool tensor, True at real source positions.
        keys: optional `precompute_keys(values)` result `(B, S, K)`.

    Returns:
        `(context, weights)`: `(B, H)` and `(B, S)` for a 2D query, `(B, T, H)` and
        `(B, T, S)` for a 3D query.

    Example:
    ```python
    attention = LuongAttention(score="general")
    context, weights = attention(decoder_outputs, encoder_outputs)  # (B, T, H), (B, T, S)
    ```
    """

    def __init__(self, score="general", units=None, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if score not in _LUONG_SCORES:
            raise ValueError(f"`score` must be one of {_LUONG_SCORES}. Received: score={score!r}")
        if score == "concat" and not units:
            raise ValueError(
                "LuongAttention(score='concat') needs the attention size `units`. "
                f"Received: units={units!r}"
            )
        self.score = score
        self.units = units
        self.kernel_initializer = initializers.get(kernel_initializer)

    def build(self, query_shape, values_shape):
        query_dim, values_dim = query_shape[-1], values_shape[-1]
        dense = dict(
            use_bias=False, kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy
        )
        if self.score == "dot":
            if query_dim != values_dim:
                raise ValueError(
                    "LuongAttention(score='dot') needs query and values of the same size. "
                    f"Received: query_shape={query_shape}, values_shape={values_shape}"
                )
        elif self.score == "general":
            self.key_dense = keras.layers.Dense(query_dim, name="key_dense", **dense)
            self.key_dense.build(values_shape)
        else:
            self._build_additive(query_shape, values_shape, dense)

    def precompute_keys(self, values):
        """The source side of the score: `h_i` (dot), `W h_i` (general), `W_k h_i` (concat)."""
        self._check_built()
        if self.score == "dot":
            return values  # (B, S, H)
        return self.key_dense(values)  # (B, S, U) or (B, S, A)

    def _scores(self, query, keys):
        if self.score == "concat":
            return self._additive_scores(query, keys)
        keys = ops.cast(keys, query.dtype)
        # `transpose_b` rather than a transposed copy of the keys at every decoding step.
        return tf.linalg.matmul(query, keys, transpose_b=True)  # (B, T, S)

    config_arguments = ("score", "units", "kernel_initializer")


@keras.saving.register_keras_serializable(package="kseq")
class LuongAttentionalState(ArgumentsConfig, keras.layers.Layer):
    """Luong's attentional hidden state `h̃ = tanh(W_c [c; h])`.

    Combines the attention context and the decoder state; `h̃` feeds the output projection
    (and, with input feeding, the next decoder step). The sublayer `combine_dense` holds `W_c`
    as a `(H + U, units)` kernel: rows `[:H]` act on the context, rows `[H:]` on the state.

    Masking: the mask of `context` (if any) is passed on to the output.

    Args:
        units: int, size of `h̃`.
        use_bias: add a bias inside the tanh (Luong et al. have none). Defaults to `False`.
        kernel_initializer: initializer of `W_c`. Defaults to `"glorot_uniform"`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        context: attention context `(B, H)` or `(B, T, H)`.
        hidden: decoder state `(B, U)` or `(B, T, U)`.

    Returns:
        `h̃`: `(B, units)` or `(B, T, units)`.

    Example:
    ```python
    context, _ = LuongAttention("dot")(decoder_outputs, encoder_outputs)
    attentional = LuongAttentionalState(32)(context, decoder_outputs)  # (B, T, 32)
    ```
    """

    def __init__(self, units, use_bias=False, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.supports_masking = True

    def build(self, context_shape, hidden_shape):
        self.combine_dense = keras.layers.Dense(
            self.units,
            activation="tanh",
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="combine_dense",
        )
        self.combine_dense.build(
            tuple(context_shape[:-1]) + (context_shape[-1] + hidden_shape[-1],)
        )

    def call(self, context, hidden):
        combined = ops.concatenate([context, ops.cast(hidden, context.dtype)], axis=-1)
        return self.combine_dense(combined)  # (B, [T,] units)

    def compute_output_shape(self, context_shape, hidden_shape):
        return tuple(context_shape[:-1]) + (self.units,)

    config_arguments = ("units", "use_bias", "kernel_initializer")
