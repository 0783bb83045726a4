"""Keras graph of the Transformer encoder-decoder family (`model.type: transformer_seq2seq`)."""

from __future__ import annotations

import keras
from keras import ops

from kseq.layers.embedding import ReversibleEmbedding
from kseq.layers.layer_norm import LayerNormalization
from kseq.layers.transformer import (
    TransformerDecoderLayer,
    TransformerEncoderLayer,
    block_arguments,
)
from kseq.models.seq2seq.transformer.layers import PositionTable

__all__ = ["build_transformer_seq2seq"]


def build_transformer_seq2seq(
    model_spec,
    source_vocab_size: int,
    target_vocab_size: int,
    source_positions: int,
    target_positions: int,
) -> keras.Model:
    """The functional teacher-forcing model of a `TransformerSeq2SeqSpec`.

    Inputs `{"source": (B, S) int32, "target_in": (B, T) int32}` (0 = padding; `target_in` is
    the bos-shifted target, `T <= target_positions`); one output, the logits `(B, T, V)`
    float32.

    ```
    x = Drop(E_src[source]·√D + P_src)  →  encoder_layer_0 … N-1  →  (encoder_norm)  = memory
    y = Drop(E_tgt[target_in]·√D + P_tgt) →  decoder_layer_0 … M-1 →  (decoder_norm)
    logits = output_projection(y)   or, tied, y · E_tgtᵀ + b
    ```

    The encoder self-attention and the cross-attention are masked by `source != 0`; the
    decoder self-attention is causal only (right padding comes after every real token, so a
    real position never sees padding; logits at padded positions are masked in the loss).

    Layers, by name: `source_embedding` / `target_embedding` (`ReversibleEmbedding`, scaled by
    `√D`; with `shared_embeddings` only `source_embedding`, used for both, and the vocabulary
    sizes must be equal), `source_positions` / `target_positions` (`PositionTable`),
    `source_dropout` / `target_dropout`, `encoder_layer_<i>` (`TransformerEncoderLayer`),
    `decoder_layer_<i>` (`TransformerDecoderLayer`), `encoder_norm` / `decoder_norm` (pre-LN
    only), and `output_projection` (`Dense(V)`, untied only).
    `kseq.models.seq2seq.transformer.graph.TransformerSeq2SeqGraph` decodes with these layers.

    Args:
        model_spec: a `TransformerSeq2SeqSpec`.
        source_vocab_size: size of the source vocabulary (ids 0..size-1, 0 = padding).
        target_vocab_size: size of the target vocabulary.
        source_positions: rows of the source position table (longest source).
        target_positions: rows of the target position table (longest `target_in`); also the
            length of the decoding caches.

    Returns:
        An uncompiled `keras.Model`.
    """
    spec = model_spec
    if spec.shared_embeddings and source_vocab_size != target_vocab_size:
        raise ValueError(
            "shared_embeddings needs equal source and target vocabulary sizes. Received: "
            f"source_vocab_size={source_vocab_size}, target_vocab_size={target_vocab_size}"
        )
    if spec.hidden_size % spec.num_heads:
        raise ValueError(
            f"num_heads must divide hidden_size. Received: num_heads={spec.num_heads}, "
            f"hidden_size={spec.hidden_size}"
        )
    width = spec.hidden_size
    source = keras.Input((None,), dtype="int32", name="source")  # (B, S)
    target_in = keras.Input((None,), dtype="int32", name="target_in")  # (B, T)

    source_embedding = ReversibleEmbedding(
        source_vocab_size,
        width,
        scale=True,
        output_bias=spec.tie_output and spec.shared_embeddings,
        name="source_embedding",
    )
    if spec.shared_embeddings:
        target_embedding = source_embedding
    else:
        target_embedding = ReversibleEmbedding(
            target_vocab_size,
            width,
            scale=True,
            output_bias=spec.tie_output,
            name="target_embedding",
        )
    block = block_arguments(spec)

    def embed(ids, embedding, positions, side):
        tokens = embedding(ids)  # (B, L, D)
        table = PositionTable(positions, spec.positions, name=f"{side}_positions")
        hidden = tokens + table(tokens)
        return keras.layers.Dropout(spec.dropout, name=f"{side}_dropout")(hidden)

    source_mask = ops.not_equal(source, 0)  # (B, S)
    memory = embed(source, source_embedding, source_positions, "source")  # (B, S, D)
    for index in range(spec.encoder_layers):
        layer = TransformerEncoderLayer(**block, name=f"encoder_layer_{index}")
        memory = layer(memory, padding_mask=source_mask)
    if spec.norm_first:
        memory = _layer_norm(spec, "encoder_norm")(memory)

    hidden = embed(target_in, target_embedding, target_positions, "target")  # (B, T, D)
    for index in range(spec.decoder_layers):
        layer = TransformerDecoderLayer(**block, name=f"decoder_layer_{index}")
        hidden = layer(hidden, memory=memory, memory_padding_mask=source_mask)
    if spec.norm_first:
        hidden = _layer_norm(spec, "decoder_norm")(hidden)

    if spec.tie_output:
        logits = target_embedding(hidden, reverse=True)  # (B, T, V)
    else:
        projection = keras.layers.Dense(
            target_vocab_size, dtype="float32", name="output_projection"
        )
        logits = projection(hidden)
    return keras.Model(
        {"source": source, "target_in": target_in}, logits, name="transformer_seq2seq"
    )


def _layer_norm(spec, name):
    return LayerNormalization(epsilon=spec.layer_norm_epsilon, name=name)
