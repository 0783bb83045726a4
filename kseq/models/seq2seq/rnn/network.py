"""Keras graph of the RNN encoder-decoder family (`model.type: rnn_seq2seq`)."""

from __future__ import annotations

import keras
from keras import ops

from kseq.models.seq2seq.rnn.layers import RNNDecoder, RNNEncoder

__all__ = ["build_rnn_seq2seq"]


def build_rnn_seq2seq(
    model_spec, source_vocab_size: int, target_vocab_size: int, seed: int = 0
) -> keras.Model:
    """The functional teacher-forcing model of an `RNNSeq2SeqSpec`.

    Inputs `{"source": (B, S) int32, "target_in": (B, T) int32}` (0 = padding; `target_in` is
    the bos-shifted target); one output, the logits `(B, T, V)` float32.

    Layers, by name: `source_embedding` (`Embedding(mask_zero=True)`), `target_embedding`
    (with `shared_embeddings` there is a single layer, `source_embedding`, used for both, and
    the vocabulary sizes must be equal), `encoder` (`RNNEncoder`) and `decoder`
    (`RNNDecoder`). `kseq.models.seq2seq.rnn.graph.RNNSeq2SeqGraph` decodes with these layers.

    Args:
        model_spec: an `RNNSeq2SeqSpec`.
        source_vocab_size: size of the source vocabulary (ids 0..size-1, 0 = padding).
        target_vocab_size: size of the target vocabulary.
        seed: seed of the dropout layers.

    Returns:
        An uncompiled `keras.Model`.
    """
    if model_spec.shared_embeddings and source_vocab_size != target_vocab_size:
        raise ValueError(
            "shared_embeddings needs equal source and target vocabulary sizes. Received: "
            f"source_vocab_size={source_vocab_size}, target_vocab_size={target_vocab_size}"
        )
    enc, dec, att = model_spec.encoder, model_spec.decoder, model_spec.attention
    source = keras.Input((None,), dtype="int32", name="source")  # (B, S)
    target_in = keras.Input((None,), dtype="int32", name="target_in")  # (B, T)

    source_embedding = keras.layers.Embedding(
        source_vocab_size, model_spec.embedding_dim, mask_zero=True, name="source_embedding"
    )
    if model_spec.shared_embeddings:
        target_embedding = source_embedding
    else:
        target_embedding = keras.layers.Embedding(
            target_vocab_size, model_spec.embedding_dim, mask_zero=True, name="target_embedding"
        )
    encoder = RNNEncoder(
        cell=enc.cell,
        units=enc.units,
        num_layers=enc.layers,
        bidirectional=enc.bidirectional,
        dropout=enc.dropout,
        decoder_cell=dec.cell,
        decoder_units=dec.units,
        decoder_layers=dec.layers,
        seed=seed,
        name="encoder",
    )
    decoder = RNNDecoder(
        vocab_size=target_vocab_size,
        cell=dec.cell,
        units=dec.units,
        num_layers=dec.layers,
        attention=att.type,
        score=att.score,
        attention_units=att.units,
        input_feeding=att.input_feeding,
        dropout=dec.dropout,
        seed=seed + 1,
        name="decoder",
    )

    source_mask = ops.not_equal(source, 0)  # (B, S)
    memory, initial_states = encoder(source_embedding(source), mask=source_mask)
    logits, _ = decoder(target_embedding(target_in), memory, source_mask, initial_states)
    return keras.Model({"source": source, "target_in": target_in}, logits, name="rnn_seq2seq")


def with_attention_output(model: keras.Model) -> keras.Model:
    """The same trained layers, with the attention weights `(B, T, S)` as an extra output.

    Returns a functional model with inputs {"source", "target_in"} and outputs
    {"logits": (B, T, V), "attention": (B, T, S)} (teacher forcing); no weights are copied.
    """
    logits, attention = model.get_layer("decoder").output
    return keras.Model(
        model.input, {"logits": logits, "attention": attention}, name="rnn_seq2seq_attention"
    )
