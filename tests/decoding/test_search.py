"""Greedy, beam search and sampling against references: python loops and brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import tensorflow as tf

from kseq.decoding import Seq2SeqGraph, beam_search, greedy, sample

from .models import BOS, EOS, MarkovGraph, markov_table, reverse_batch, trained_reverse_model

A, B = 4, 5
# Condition 0: greedy takes A (0.5) and never recovers; "B eos" (0.4 * 0.9) is the best sequence.
# Condition 1: greedy is optimal ("A eos"). Condition 2: long sequences win only with a length
# penalty (0.7 per token on the A-loop).
TABLE = markov_table(
    [
        {BOS: {A: 0.5, B: 0.4, EOS: 0.1}, A: {A: 0.36, B: 0.34, EOS: 0.3}, B: {EOS: 0.9, A: 0.1}},
        {BOS: {A: 0.8, B: 0.2}, A: {EOS: 0.7, B: 0.3}, B: {EOS: 0.5, A: 0.5}},
        {BOS: {A: 0.6, EOS: 0.4}, A: {A: 0.7, EOS: 0.3}, B: {EOS: 1.0}},
    ]
)
# The Markov "encoder" reads the condition from column 0.
SOURCES = np.array([[0, 4, 0], [1, 0, 0], [2, 5, 6]], "int32")


def markov_graph():
    return MarkovGraph(TABLE)


def brute_force(table, max_length, alpha, allowed=(1, EOS, A, B)):
    """All sequences (eos-terminated, or unfinished at max_length) with their GNMT scores."""
    results = []
    for length in range(1, max_length + 1):
        for tokens in itertools.product(allowed, repeat=length):
            if EOS in tokens[:-1]:
                continue
            if tokens[-1] != EOS and length < max_length:
                continue
            prev, log_p = BOS, 0.0
            for token in tokens:
                log_p += table[prev, token]
                prev = token
            ids = [t for t in tokens if t != EOS]
            score = log_p / ((5.0 + length) / 6.0) ** alpha
            results.append((score, ids + [0] * (max_length - len(ids))))
    return sorted(results, key=lambda r: -r[0])


def python_greedy(graph, source, max_length):
    """Argmax decoding in a python loop over `graph.step` (pad and bos excluded)."""
    encoded = graph.encode(source)
    state = graph.initial_state(encoded)
    tokens = np.full(source.shape[0], BOS, "int32")
    ids = np.zeros((source.shape[0], max_length), "int32")
    done = np.zeros(source.shape[0], bool)
    for t in range(max_length):
        logits, state, _ = graph.step(tf.constant(tokens), state, encoded)
        logits = logits.numpy()
        logits[:, [0, BOS]] = -np.inf
        tokens = logits.argmax(-1).astype("int32")
        write = ~done & (tokens != EOS)
        ids[write, t] = tokens[write]
        done |= tokens == EOS
    return ids


def test_markov_graph_follows_protocol():
    assert isinstance(markov_graph(), Seq2SeqGraph)
    _, graph = trained_reverse_model()
    assert isinstance(graph, Seq2SeqGraph)


def test_greedy_is_suboptimal_where_beam_is_not():
    graph = markov_graph()
    ids = greedy(graph, SOURCES, max_length=4)["target_ids"].numpy()
    np.testing.assert_array_equal(ids, [[A, A, A, A], [A, 0, 0, 0], [A, A, A, A]])
    np.testing.assert_array_equal(ids, python_greedy(graph, SOURCES, 4))

    result = beam_search(graph, SOURCES, max_length=4, beam_width=2, length_penalty=0.0)
    np.testing.assert_array_equal(result["target_ids"][:, 0], [[B, 0, 0, 0], [A, 0, 0, 0], [0] * 4])
    np.testing.assert_allclose(
        result["scores"][:, 0], np.log([0.4 * 0.9, 0.8 * 0.7, 0.4]), rtol=0, atol=1e-3
    )


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_beam_search_finds_the_best_sequences(alpha):
    graph = markov_graph()
    result = beam_search(graph, SOURCES, 4, beam_width=6, length_penalty=alpha, n_best=3)
    ids, scores = result["target_ids"].numpy(), result["scores"].numpy()
    assert ids.shape == (3, 3, 4) and scores.shape == (3, 3)
    for row in range(3):
        ranked = brute_force(TABLE[row], 4, alpha)
        for n in range(3):
            assert ids[row, n].tolist() == ranked[n][1], (row, n)
            assert scores[row, n] == pytest.approx(ranked[n][0], abs=1e-4)
        assert np.all(np.diff(scores[row]) <= 0)  # n-best ordered by score
    if alpha == 2.0:  # a strong length penalty makes the long A-loop win for condition 2
        assert ids[2, 0].tolist() == [A, A, A, A]


def test_beam_width_one_equals_greedy():
    graph = markov_graph()
    np.testing.assert_array_equal(
        beam_search(graph, SOURCES, 4, beam_width=1, length_penalty=0.6)["target_ids"][:, 0],
        greedy(graph, SOURCES, 4)["target_ids"],
    )
    _, graph = trained_reverse_model()
    source, _, _ = reverse_batch(np.random.default_rng(3), 16)
    expected = greedy(graph, source, 7)["target_ids"].numpy()
    np.testing.assert_array_equal(expected, python_greedy(graph, source, 7))
    beam = beam_search(graph, source, 7, beam_width=1, length_penalty=0.6)
    np.testing.assert_array_equal(beam["target_ids"][:, 0], expected)


def test_trained_model_decodes():
    _, graph = trained_reverse_model()
    source, _, target_out = reverse_batch(np.random.default_rng(4), 32)
    expected = np.where(target_out == EOS, 0, target_out)
    greedy_ids = greedy(graph, source, 6)["target_ids"].numpy()
    assert (greedy_ids == expected).all(1).mean() >= 0.9
    beam = beam_search(graph, source, 6, beam_width=3, n_best=3)
    assert beam["target_ids"].shape == (32, 3, 6)
    assert (beam["target_ids"].numpy()[:, 0] == expected).all(1).mean() >= 0.9
    assert np.all(np.diff(beam["scores"].numpy(), axis=1) <= 0)
    # The three hypotheses of a row are distinct.
    for row in beam["target_ids"].numpy():
        assert len({tuple(h) for h in row}) == 3


def test_loop_stops_when_all_rows_finished():
    graph = markov_graph()
    source = SOURCES[1:2]  # condition 1: "A eos"
    result = greedy(graph, source, max_length=10)
    assert result["target_ids"].shape == (1, 10)
    assert graph.calls.numpy() == 2  # two steps, not ten
    graph.calls.assign(0)
    beam_search(graph, source, 10, beam_width=1)
    assert graph.calls.numpy() == 2


def test_greedy_attention():
    _, graph = trained_reverse_model()
    source = np.array([[4, 5, 6, 0, 0], [7, 8, 9, 4, 5]], "int32")
    result = greedy(graph, source, 7)
    ids, attention = result["target_ids"].numpy(), result["attention"].numpy()
    assert attention.shape == (2, 7, 5)
    written = ids != 0
    np.testing.assert_allclose(attention[written].sum(-1), 1.0, atol=1e-6)
    assert np.all(attention[~written] == 0.0)
    assert np.all(attention[0][:, 3:] == 0.0)


def test_in_tf_function():
    _, graph = trained_reverse_model()
    source, _, _ = reverse_batch(np.random.default_rng(5), 8)

    @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32)])
    def decode(source_ids):
        return (
            greedy(graph, source_ids, 6)["target_ids"],
            beam_search(graph, source_ids, 6, beam_width=2, n_best=2)["target_ids"],
        )

    greedy_ids, beam_ids = decode(source)
    np.testing.assert_array_equal(greedy_ids, greedy(graph, source, 6)["target_ids"])
    np.testing.assert_array_equal(
        beam_ids, beam_search(graph, source, 6, beam_width=2, n_best=2)["target_ids"]
    )


def test_sample():
    _, graph = trained_reverse_model()
    source, _, _ = reverse_batch(np.random.default_rng(6), 16)
    expected = greedy(graph, source, 6)["target_ids"].numpy()
    # top_k=1 and a near-zero temperature are greedy.
    np.testing.assert_array_equal(sample(graph, source, 6, top_k=1)["target_ids"], expected)
    np.testing.assert_array_equal(
        sample(graph, source, 6, temperature=1e-4, seed=3)["target_ids"], expected
    )

    # Deterministic per seed; a flat distribution gives different draws for different seeds.
    def hot(seed):
        return sample(graph, source, 6, temperature=50.0, seed=seed)["target_ids"].numpy()

    draws = hot(1)
    np.testing.assert_array_equal(hot(1), draws)
    assert not np.array_equal(hot(2), draws)
    assert not np.any(draws == BOS), "bos is never sampled"
    with pytest.raises(ValueError, match="temperature"):
        sample(graph, source, 6, temperature=0.0)


def test_sample_top_k_restricts_choices():
    graph = markov_graph()
    draws = np.concatenate(
        [sample(graph, SOURCES[:1], 1, top_k=2, seed=s)["target_ids"].numpy() for s in range(40)]
    )
    assert set(draws[:, 0].tolist()) == {A, B}  # eos (0.1) is outside the top 2


def test_beam_arguments():
    graph = markov_graph()
    with pytest.raises(ValueError, match="n_best"):
        beam_search(graph, SOURCES, 4, beam_width=2, n_best=3)
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(graph, SOURCES, 4, beam_width=0)
    assert math.isfinite(float(beam_search(graph, SOURCES, 4, beam_width=3)["scores"][0, 0]))
