"""Beam search with the GNMT length penalty, as a fixed-shape in-graph loop."""

from __future__ import annotations

import tensorflow as tf

from kseq.decoding._common import NEG, forbid_special
from kseq.decoding.protocol import Seq2SeqGraph
from kseq.decoding.scopes import BEAM_BOOKKEEPING

__all__ = ["beam_search", "length_penalty_factor"]


def length_penalty_factor(lengths, alpha):
    """GNMT length penalty `((5 + length) / 6) ** alpha` (Wu et al., 2016)."""
    return tf.pow((5.0 + lengths) / 6.0, alpha)


def _gather_rows(structure, rows):
    """Rows `rows` of every tensor in `structure`, each gathered as a 2-D `(rows, features)` view.

    The same data movement as `tf.gather(x, rows)`; in 2-D because LiteRT's CompiledModel on the
    CPU (XNNPack) mishandled GATHER of the Transformer's 4-D caches inside the decoding loop:
    measured on a date model, the first call right, later calls of the same input wrong beam
    ids, and a smaller batch after a larger one failed to allocate.
    """

    def gather(x):
        if x.shape.rank is None or x.shape.rank <= 2:
            return tf.gather(x, rows)
        shape = tf.shape(x)
        flat = tf.gather(tf.reshape(x, tf.stack([shape[0], -1])), rows)
        return tf.reshape(flat, tf.concat([tf.shape(rows), shape[1:]], 0))

    return tf.nest.map_structure(gather, structure)


def beam_search(
    graph: Seq2SeqGraph,
    source_ids,
    max_length: int,
    beam_width: int = 4,
    length_penalty: float = 0.6,
    n_best: int = 1,
    bos_id: int = 2,
    eos_id: int = 3,
) -> dict[str, tf.Tensor]:
    """Beam search over a `Seq2SeqGraph`.

    Every source keeps `K = beam_width` hypotheses; the encoded dict and the decoder state are
    tiled to `(B * K, ...)` by gathering rows, and reordered by gathering the parent beam of
    each survivor. A hypothesis that emitted eos is finished: it stays in the beam with its
    score frozen (its only continuation is itself) until better hypotheses push it out. At
    every step the `K` best candidates are chosen by the normalised score
    `log P(y) / lp(|y|)`, `lp(n) = ((5 + n) / 6) ** length_penalty`, where `|y|` counts the
    generated tokens including eos. The loop stops when all beams are finished or after
    `max_length` steps (unfinished hypotheses then compete with length `max_length`).
    Padding (0) and bos are never emitted. With `beam_width=1` this is exactly greedy
    decoding.

    Args:
        graph: a `Seq2SeqGraph`.
        source_ids: `(B, S)` int32 source ids, right-padded with 0.
        max_length: int, most tokens generated per hypothesis (eos included).
        beam_width: int `K >= 1`; the vocabulary must have at least `K` tokens.
        length_penalty: GNMT alpha; 0 ranks by total log-probability.
        n_best: hypotheses returned per source, `1 <= n_best <= beam_width`.
        bos_id: id fed at the first step.
        eos_id: id that finishes a hypothesis.

    Returns:
        Dict with `"target_ids"` `(B, n_best, max_length)` int32 (ids before eos, then 0),
        best first, and `"scores"` `(B, n_best)` float32, their normalised scores.
    """
    if not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"`beam_width` must be an int >= 1. Received: beam_width={beam_width}")
    if not isinstance(n_best, int) or not 1 <= n_best <= beam_width:
        raise ValueError(
            f"`n_best` must be an int in [1, beam_width={beam_width}]. Received: n_best={n_best}"
        )
    k = beam_width
    alpha = float(length_penalty)
    source_ids = tf.convert_to_tensor(source_ids, tf.int32)  # (B, S)
    batch = tf.shape(source_ids)[0]
    encoded = graph.encode(source_ids)
    state = graph.initial_state(encoded)
    # Row b*K + j is beam j of source b.
    tile_rows = tf.math.floordiv(tf.range(batch * k), k)  # (B*K,)
    encoded = _gather_rows(encoded, tile_rows)
    state = _gather_rows(state, tile_rows)
    beam_offsets = tf.expand_dims(tf.range(batch) * k, 1)  # (B, 1)

    positions = tf.range(max_length)  # (L,)
    ids = tf.zeros(tf.stack([batch, k, max_length]), tf.int32)  # (B, K, L)
    # Only beam 0 is live at the start, so the K copies do not yield K identical hypotheses.
    first = tf.where(tf.equal(tf.range(k), 0), 0.0, NEG)  # (K,)
    scores = tf.zeros(tf.stack([batch, k]), tf.float32) + first  # (B, K) total log-prob
    lengths = tf.zeros(tf.stack([batch, k]), tf.float32)  # (B, K)
    finished = tf.zeros(tf.stack([batch, k]), tf.bool)  # (B, K)
    tokens = tf.fill(tf.expand_dims(batch * k, 0), tf.constant(bos_id, tf.int32))  # (B*K,)

    def cond(i, ids, scores, lengths, finished, tokens, state):
        return tf.logical_and(i < max_length, tf.reduce_any(tf.logical_not(finished)))

    def body(i, ids, scores, lengths, finished, tokens, state):
        logits, new_state, _ = graph.step(tokens, state, encoded)  # (B*K, V)
        with tf.name_scope(BEAM_BOOKKEEPING):  # kept float in int8 files
            return bookkeeping(i, ids, scores, lengths, finished, logits, new_state)

    def bookkeeping(i, ids, scores, lengths, finished, logits, new_state):
        vocab = tf.shape(logits)[1]
        # Model log-probabilities; padding and bos are never extended.
        log_probs = forbid_special(tf.nn.log_softmax(tf.cast(logits, tf.float32)), bos_id)
        log_probs = tf.reshape(log_probs, tf.stack([batch, k, vocab]))  # (B, K, V)
        # A finished hypothesis continues only as itself, at no cost (through the eos slot).
        eos_only = tf.where(tf.equal(tf.range(vocab), eos_id), 0.0, NEG)  # (V,)
        log_probs = tf.where(tf.expand_dims(finished, -1), eos_only, log_probs)
        totals = tf.expand_dims(scores, -1) + log_probs  # (B, K, V)
        step_length = tf.cast(i + 1, tf.float32)
        candidate_lengths = tf.where(finished, lengths, step_length)  # (B, K)
        normalized = totals / tf.expand_dims(length_penalty_factor(candidate_lengths, alpha), -1)

        flat = tf.reshape(normalized, tf.stack([batch, k * vocab]))  # (B, K*V)
        _, best = tf.math.top_k(flat, k=k)  # (B, K) indices into K*V
        parents = tf.math.floordiv(best, vocab)  # (B, K)
        next_tokens = tf.math.floormod(best, vocab)  # (B, K)
        parent_rows = tf.reshape(parents + beam_offsets, [-1])  # (B*K,)
        candidate_rows = tf.reshape(best + beam_offsets * vocab, [-1])  # (B*K,)

        new_scores = tf.reshape(tf.gather(tf.reshape(totals, [-1]), candidate_rows), [batch, k])
        new_lengths = tf.reshape(
            tf.gather(tf.reshape(candidate_lengths, [-1]), parent_rows), [batch, k]
        )
        parent_finished = tf.reshape(tf.gather(tf.reshape(finished, [-1]), parent_rows), [batch, k])
        ids = tf.gather(tf.reshape(ids, tf.stack([batch * k, max_length])), parent_rows)
        ids = tf.reshape(ids, tf.stack([batch, k, max_length]))  # (B, K, L)
        is_eos = tf.equal(next_tokens, eos_id)  # (B, K)
        write = tf.logical_and(tf.logical_not(parent_finished), tf.logical_not(is_eos))
        cell = tf.logical_and(
            tf.expand_dims(write, -1),
            tf.expand_dims(tf.expand_dims(tf.equal(positions, i), 0), 0),
        )  # (B, K, L)
        ids = tf.where(cell, tf.expand_dims(next_tokens, -1), ids)
        new_finished = tf.logical_or(parent_finished, is_eos)
        new_state = _gather_rows(new_state, parent_rows)
        return (
            i + 1,
            ids,
            new_scores,
            new_lengths,
            new_finished,
            tf.reshape(next_tokens, [-1]),
            new_state,
        )

    _, ids, scores, lengths, _, _, _ = tf.while_loop(
        cond,
        body,
        (tf.constant(0), ids, scores, lengths, finished, tokens, state),
        maximum_iterations=max_length,
    )
    final = scores / length_penalty_factor(lengths, alpha)  # (B, K)
    top_scores, order = tf.math.top_k(final, k=n_best)  # (B, N)
    rows = tf.reshape(order + beam_offsets, [-1])  # (B*N,)
    best_ids = tf.gather(tf.reshape(ids, tf.stack([batch * k, max_length])), rows)
    best_ids = tf.reshape(best_ids, tf.stack([batch, n_best, max_length]))
    return {"target_ids": best_ids, "scores": top_scores}
