"""Greedy decoding and sampling: one hypothesis per source, one shared loop."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from kseq.decoding._common import NEG, argmax_allowed, forbid_special
from kseq.decoding.protocol import Seq2SeqGraph

__all__ = ["greedy", "sample"]


def _generate(
    graph: Seq2SeqGraph,
    source_ids,
    max_length,
    choose: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
    bos_id: int,
    eos_id: int,
) -> dict[str, tf.Tensor]:
    """Runs `choose(logits (B, V) float32, step) -> (B,) int32` until every row emitted eos;
    `choose` never returns padding or bos."""
    source_ids = tf.convert_to_tensor(source_ids, tf.int32)  # (B, S)
    batch, source_length = tf.shape(source_ids)[0], tf.shape(source_ids)[1]
    encoded = graph.encode(source_ids)
    state = graph.initial_state(encoded)

    positions = tf.range(max_length)  # (L,)
    ids = tf.zeros(tf.stack([batch, max_length]), tf.int32)  # (B, L)
    attention = tf.zeros(tf.stack([batch, max_length, source_length]), tf.float32)  # (B, L, S)
    finished = tf.fill(tf.expand_dims(batch, 0), False)  # (B,)
    tokens = tf.fill(tf.expand_dims(batch, 0), tf.constant(bos_id, tf.int32))  # (B,)

    def cond(i, ids, attention, finished, tokens, state):
        return tf.logical_and(i < max_length, tf.reduce_any(tf.logical_not(finished)))

    def body(i, ids, attention, finished, tokens, state):
        logits, new_state, weights = graph.step(tokens, state, encoded)  # (B, V), (B, S)
        next_ids = tf.cast(choose(tf.cast(logits, tf.float32), i), tf.int32)  # (B,)
        is_eos = tf.equal(next_ids, eos_id)
        write = tf.logical_and(tf.logical_not(finished), tf.logical_not(is_eos))  # (B,)
        cell = tf.logical_and(
            tf.expand_dims(write, 1), tf.expand_dims(tf.equal(positions, i), 0)
        )  # (B, L)
        ids = tf.where(cell, tf.expand_dims(next_ids, 1), ids)
        attention = tf.where(
            tf.expand_dims(cell, -1),
            tf.expand_dims(tf.cast(weights, tf.float32), 1),
            attention,
        )
        finished = tf.logical_or(finished, is_eos)
        return i + 1, ids, attention, finished, next_ids, new_state

    _, ids, attention, _, _, _ = tf.while_loop(
        cond,
        body,
        (tf.constant(0), ids, attention, finished, tokens, state),
        maximum_iterations=max_length,
    )
    return {"target_ids": ids, "attention": attention}


def greedy(
    graph: Seq2SeqGraph,
    source_ids,
    max_length: int,
    bos_id: int = 2,
    eos_id: int = 3,
) -> dict[str, tf.Tensor]:
    """Greedy (argmax) decoding; padding (0) and bos are never emitted.

    Args:
        graph: a `Seq2SeqGraph` (e.g. `RNNSeq2SeqGraph(model)`).
        source_ids: `(B, S)` int32 source ids, right-padded with 0.
        max_length: int, most tokens generated per row (eos included).
        bos_id: id fed at the first step.
        eos_id: id that ends a row.

    Returns:
        Dict with `"target_ids"` `(B, max_length)` int32 (ids before the first eos, then 0)
        and `"attention"` `(B, max_length, S)` float32 (the weights of the step that produced
        each written id; zeros elsewhere).
    """

    def choose(logits, step):
        return argmax_allowed(logits, bos_id)

    return _generate(graph, source_ids, max_length, choose, bos_id, eos_id)


def sample(
    graph: Seq2SeqGraph,
    source_ids,
    max_length: int,
    temperature: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    bos_id: int = 2,
    eos_id: int = 3,
) -> dict[str, tf.Tensor]:
    """Ancestral sampling, optionally restricted to the `top_k` most likely tokens.

    Padding (0) and bos are never sampled.

    Deterministic for a given `seed` (stateless sampling, seeded by `(seed, step)`). TF only:
    the stateless multinomial has no TFLite builtin.

    Args:
        graph, source_ids, max_length, bos_id, eos_id: as in `greedy`.
        temperature: logits are divided by it before sampling (> 0).
        top_k: sample among the `top_k` highest logits; 0 = the whole vocabulary.
        seed: int seed.

    Returns:
        Dict with `"target_ids"` `(B, max_length)` int32 and `"attention"`, as `greedy`.
    """
    if temperature <= 0:
        raise ValueError(f"`temperature` must be > 0. Received: temperature={temperature}")
    if top_k < 0:
        raise ValueError(f"`top_k` must be >= 0. Received: top_k={top_k}")

    def choose(logits, step):
        logits = forbid_special(logits, bos_id) / temperature  # (B, V)
        if top_k > 0:
            k = tf.minimum(top_k, tf.shape(logits)[-1])
            threshold = tf.reduce_min(tf.math.top_k(logits, k=k).values, -1, keepdims=True)
            logits = tf.where(logits < threshold, NEG, logits)
        draws = tf.random.stateless_categorical(
            logits, 1, seed=tf.stack([tf.constant(seed, tf.int32), step]), dtype=tf.int32
        )  # (B, 1)
        return tf.squeeze(draws, -1)

    return _generate(graph, source_ids, max_length, choose, bos_id, eos_id)
