"""Fixtures of the decoding tests: a hand-set Markov "model" and a tiny trained RNN model."""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from kseq.models.seq2seq.rnn.graph import RNNSeq2SeqGraph
from kseq.models.seq2seq.rnn.network import build_rnn_seq2seq
from kseq.models.seq2seq.rnn.spec import (
    AttentionSpec,
    RNNDecoderSpec,
    RNNEncoderSpec,
    RNNSeq2SeqSpec,
)

PAD, UNK, BOS, EOS = 0, 1, 2, 3


class MarkovGraph:
    """A `Seq2SeqGraph` whose next-token distribution depends on the previous token only.

    `log_probs[c, prev]` is the distribution after token `prev` for a source whose first id is
    `c`; the "encoder" just reads that id. `calls` counts the decoder steps actually run.
    """

    def __init__(self, log_probs):
        self.table = tf.constant(log_probs, tf.float32)  # (C, V, V)
        self.calls = tf.Variable(0)

    def encode(self, source_ids):
        source_ids = tf.convert_to_tensor(source_ids, tf.int32)
        return {
            "condition": source_ids[:, 0],  # (B,)
            "source_mask": tf.cast(tf.not_equal(source_ids, 0), tf.float32),  # (B, S)
        }

    def initial_state(self, encoded):
        return {"steps": tf.zeros_like(encoded["source_mask"][:, :1])}  # (B, 1)

    def step(self, token_ids, state, encoded):
        with tf.control_dependencies([self.calls.assign_add(1)]):
            index = tf.stack([encoded["condition"], tf.cast(token_ids, tf.int32)], axis=1)
            logits = tf.gather_nd(self.table, index)  # (B, V)
        mask = encoded["source_mask"]
        attention = mask / tf.reduce_sum(mask, -1, keepdims=True)
        return logits, {"steps": state["steps"] + 1.0}, attention

    def teacher_forced(self, source_ids, target_in):
        raise NotImplementedError


def markov_table(rows):
    """`rows[c][prev] = {token: prob}` -> log-probabilities `(C, V, V)`.

    Unlisted tokens get probability 1e-4 (before renormalising).
    """
    vocab = 6
    table = np.full((len(rows), vocab, vocab), 1e-4)
    for c, condition in enumerate(rows):
        for prev, probs in condition.items():
            for token, p in probs.items():
                table[c, prev, token] = p
    table /= table.sum(-1, keepdims=True)
    return np.log(table)


def reverse_batch(rng, batch, max_len=5, symbols=(4, 10)):
    """Sources of 1..max_len symbols and their reversals: (source, target_in, target_out)."""
    lengths = rng.integers(1, max_len + 1, size=batch)
    source = np.zeros((batch, max_len), "int32")
    target_in = np.zeros((batch, max_len + 1), "int32")
    target_out = np.zeros((batch, max_len + 1), "int32")
    for row, length in enumerate(lengths):
        tokens = rng.integers(*symbols, size=length)
        source[row, :length] = tokens
        target_in[row, : length + 1] = [BOS, *tokens[::-1]]
        target_out[row, : length + 1] = [*tokens[::-1], EOS]
    return source, target_in, target_out


@functools.cache
def trained_reverse_model():
    """A bidirectional-LSTM encoder, Bahdanau-attention LSTM decoder trained to reverse."""
    keras.utils.set_random_seed(0)
    spec = RNNSeq2SeqSpec(
        embedding_dim=8,
        shared_embeddings=True,
        encoder=RNNEncoderSpec(cell="lstm", units=12, layers=1, bidirectional=True),
        decoder=RNNDecoderSpec(cell="lstm", units=16, layers=1),
        attention=AttentionSpec(type="bahdanau", units=10),
    )
    model = build_rnn_seq2seq(spec, 10, 10)
    source, target_in, target_out = reverse_batch(np.random.default_rng(0), 64 * 120)
    weights = (target_out != PAD).astype("float32")
    model.compile(
        optimizer=keras.optimizers.Adam(2e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    model.fit(
        {"source": source, "target_in": target_in},
        target_out,
        sample_weight=weights,
        batch_size=64,
        epochs=1,
        verbose=0,
    )
    return model, RNNSeq2SeqGraph(model)
