"""The Transformer encoder-decoder seen through the `kseq.decoding.Seq2SeqGraph` protocol."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from kseq.models.seq2seq.graph_layers import token_embeddings

__all__ = ["TransformerSeq2SeqGraph"]


class TransformerSeq2SeqGraph:
    """Encode/step adapter over a model from `build_transformer_seq2seq` (built or loaded).

    Decoding keeps per-layer key/value caches: each step embeds one token, projects its
    self-attention key and value once per decoder layer, writes them into the caches at the
    row's position (a one-hot `ops.where`, no scatter) and attends over the cache under a
    "position <= current" mask. A step then costs O(L·D) attention plus O(D²) projections per
    layer, instead of re-running the decoder over the whole prefix (O(L·D²) per layer and step);
    the cross-attention keys/values of the memory are projected once, in `encode`. Every state
    tensor keeps its shape from step to step (`L` = the model's target position count), as
    the builtin TFLite WHILE loop and beam search's row gathers need.

    `encode(source_ids)` returns (all batch-first, `N` heads of size `K = D / N`):

    - `"memory"`: `(B, S, D)` encoder outputs;
    - `"source_mask"`: `(B, S)` float32, 1.0 at real source positions;
    - `"cross_key_<i>"`, `"cross_value_<i>"`: `(B, S, N, K)` the memory projected by decoder
      layer `i`'s cross-attention.

    The state dict holds `"position"` `(B,)` int32 (the position of the next input token, 0 =
    bos) and, per decoder layer `i`, `"self_key_<i>"` / `"self_value_<i>"` `(B, L, N, K)`
    (slots at and after `position` are zero). `step` returns the logits of that position —
    equal to the teacher-forced model's (≤ 1e-5) — and the last decoder layer's cross-attention
    weights averaged over heads, `(B, S)`, exactly 0 at padded source positions.

    Uses the model's layers by name (see `build_transformer_seq2seq`); no weights of its own.

    Args:
        model: the functional model of `build_transformer_seq2seq`, or its `.keras` reload.
        cache_length: slots of the caches when fewer steps will run than the model has
            positions (a static export for a shorter target); default: every position.
    """

    def __init__(self, model: keras.Model, cache_length: int | None = None):
        self.model = model
        names = {layer.name for layer in model.layers}
        self.source_embedding, self.target_embedding = token_embeddings(model)
        self.source_positions = model.get_layer("source_positions")
        self.target_positions = model.get_layer("target_positions")
        self.encoder_layers = _numbered(model, names, "encoder_layer_")
        self.decoder_layers = _numbered(model, names, "decoder_layer_")
        self.encoder_norm = model.get_layer("encoder_norm") if "encoder_norm" in names else None
        self.decoder_norm = model.get_layer("decoder_norm") if "decoder_norm" in names else None
        self.output_projection = (
            model.get_layer("output_projection") if "output_projection" in names else None
        )
        attention = self.decoder_layers[0].self_attention
        self.num_heads = attention.num_heads
        self.head_size = attention.key_dim
        self.cache_length = self.target_positions.sequence_length
        if cache_length is not None:
            self.cache_length = max(1, min(self.cache_length, cache_length))

    @property
    def vocab_size(self) -> int:
        if self.output_projection is not None:
            return self.output_projection.units
        return self.target_embedding.vocab_size

    # ---- encoder -------------------------------------------------------------------------------
    def encode(self, source_ids):
        source_ids = tf.convert_to_tensor(source_ids, tf.int32)  # (B, S)
        mask = ops.not_equal(source_ids, 0)  # (B, S)
        tokens = self.source_embedding(source_ids)  # (B, S, D)
        memory = tokens + self.source_positions(tokens)
        for layer in self.encoder_layers:
            memory = layer(memory, padding_mask=mask)
        if self.encoder_norm is not None:
            memory = self.encoder_norm(memory)
        encoded = {"memory": memory, "source_mask": ops.cast(mask, "float32")}
        for index, layer in enumerate(self.decoder_layers):
            attention = layer.cross_attention
            encoded[f"cross_key_{index}"] = attention.key_dense(memory)  # (B, S, N, K)
            encoded[f"cross_value_{index}"] = attention.value_dense(memory)
        return encoded

    # ---- decoder -------------------------------------------------------------------------------
    def initial_state(self, encoded):
        memory = encoded["memory"]
        batch = ops.shape(memory)[0]
        shape = (batch, self.cache_length, self.num_heads, self.head_size)
        # Zeros computed from the memory rather than a constant: at fixed shapes the converter
        # would fold constant caches into one tensor that every state output names, which
        # CompiledModel cannot bind.
        corner = ops.cast(memory[:, :1, :1], self.decoder_layers[0].compute_dtype)
        zero = ops.minimum(ops.abs(corner), 0)  # 0 for any finite or infinite value
        cache = ops.broadcast_to(ops.expand_dims(zero, -1), shape)
        state = {"position": ops.zeros((batch,), "int32")}
        for index in range(len(self.decoder_layers)):
            state[f"self_key_{index}"] = cache
            state[f"self_value_{index}"] = cache
        return state

    def step(self, token_ids, state, encoded):
        position = ops.cast(state["position"], "int32")  # (B,)
        tokens = self.target_embedding(ops.expand_dims(ops.cast(token_ids, "int32"), 1))
        hidden = tokens + ops.expand_dims(self.target_positions.rows(position), 1)  # (B, 1, D)
        new_state = {"position": position + 1}
        for index, layer in enumerate(self.decoder_layers):
            hidden, scores, (keys, values) = layer(
                hidden,
                memory_padding_mask=encoded["source_mask"],
                self_attention_cache=(state[f"self_key_{index}"], state[f"self_value_{index}"]),
                cache_position=position,
                cross_attention_cache=_cross_cache(encoded, index),
                return_attention_scores=True,
            )
            new_state[f"self_key_{index}"] = keys
            new_state[f"self_value_{index}"] = values
        logits = self._logits(self._final_norm(hidden))[:, 0]  # (B, V)
        attention = self._attention(scores, encoded)[:, 0]  # (B, S)
        return logits, new_state, attention

    def teacher_forced(self, source_ids, target_in):
        encoded = self.encode(source_ids)
        target_in = tf.convert_to_tensor(target_in, tf.int32)  # (B, T)
        tokens = self.target_embedding(target_in)
        hidden = tokens + self.target_positions(tokens)  # (B, T, D)
        for index, layer in enumerate(self.decoder_layers):
            hidden, scores = layer(
                hidden,
                memory_padding_mask=encoded["source_mask"],
                cross_attention_cache=_cross_cache(encoded, index),
                return_attention_scores=True,
            )
        return self._logits(self._final_norm(hidden)), self._attention(scores, encoded)

    # ---- pieces --------------------------------------------------------------------------------
    def _final_norm(self, hidden):
        return hidden if self.decoder_norm is None else self.decoder_norm(hidden)

    def _logits(self, hidden):
        if self.output_projection is None:
            return self.target_embedding(hidden, reverse=True)
        return ops.cast(self.output_projection(hidden), "float32")

    @staticmethod
    def _attention(scores, encoded):
        """Head-averaged `(B, T, S)` weights, exactly 0 at padded sources (all-padding rows too)."""
        weights = ops.mean(ops.cast(scores, "float32"), axis=1)  # (B, T, S)
        return weights * ops.expand_dims(encoded["source_mask"], 1)


def _cross_cache(encoded, index):
    return encoded[f"cross_key_{index}"], encoded[f"cross_value_{index}"]


def _numbered(model, names, prefix):
    layers = []
    while f"{prefix}{len(layers)}" in names:
        layers.append(model.get_layer(f"{prefix}{len(layers)}"))
    if not layers:
        raise ValueError(f"The model has no `{prefix}0` layer; is it a transformer_seq2seq model?")
    return layers
