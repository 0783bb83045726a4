"""Attention layers against an independent numpy reference."""

import keras
import numpy as np
import pytest

from kseq.models.seq2seq.rnn.attention import (
    BahdanauAttention,
    LuongAttention,
    LuongAttentionalState,
)

# Different sizes everywhere: batch, target steps, source steps, query, values, attention.
B, T, S, U, H, A = 3, 2, 6, 4, 5, 7
LENGTHS = np.array([6, 4, 1])


def _data(query_dim=U, seed=0):
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(B, T, query_dim)).astype("float32")
    values = rng.normal(size=(B, S, H)).astype("float32")
    mask = np.arange(S)[None, :] < LENGTHS[:, None]  # (B, S)
    return query, values, mask


def _randomize(layer, seed=1):
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])


def _softmax_masked(scores, mask):
    """scores (B, T, S), mask (B, S) -> weights, exactly 0 where masked."""
    scores = np.where(mask[:, None, :], scores, -np.inf)
    scores = scores - scores.max(-1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(-1, keepdims=True)


def _additive_scores(query, values, w_query, w_key, v):
    # vᵀ tanh(W_k h_i + W_q s), computed position by position to stay independent of the layer.
    scores = np.zeros((B, query.shape[1], S))
    for b in range(B):
        for t in range(query.shape[1]):
            for i in range(S):
                scores[b, t, i] = v[:, 0] @ np.tanh(values[b, i] @ w_key + query[b, t] @ w_query)
    return scores


def _reference(layer, query, values, mask):
    """(context (B, T, H), weights (B, T, S)) in float64 from the layer's weights."""
    q, h = query.astype("float64"), values.astype("float64")
    if isinstance(layer, BahdanauAttention) or layer.score == "concat":
        w = {v.path.split("/")[-2]: np.asarray(v, "float64") for v in layer.weights}
        scores = _additive_scores(q, h, w["query_dense"], w["key_dense"], w["score_dense"])
    elif layer.score == "dot":
        scores = np.einsum("btu,bsu->bts", q, h)
    else:  # general: hᵀ W h_i with W = key_dense.kernelᵀ
        kernel = np.asarray(layer.key_dense.kernel, "float64")  # (H, U)
        scores = np.einsum("btu,uh,bsh->bts", q, kernel.T, h)
    weights = _softmax_masked(scores, mask)
    return weights @ h, weights


LAYERS = {
    "bahdanau": lambda: BahdanauAttention(A),
    "dot": lambda: LuongAttention("dot"),
    "general": lambda: LuongAttention("general"),
    "concat": lambda: LuongAttention("concat", units=A),
}


def _built(name, query_dim):
    layer = LAYERS[name]()
    query, values, mask = _data(query_dim)
    layer(query, values, mask)
    _randomize(layer)
    return layer


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("single_step", [False, True])
def test_matches_numpy_reference(name, single_step):
    query_dim = H if name == "dot" else U
    layer = _built(name, query_dim)
    query, values, mask = _data(query_dim)
    expected_context, expected_weights = _reference(layer, query, values, mask)
    if single_step:
        query, expected_context, expected_weights = (
            query[:, 0],
            expected_context[:, 0],
            expected_weights[:, 0],
        )
    context, weights = (np.asarray(t) for t in layer(query, values, mask))
    np.testing.assert_allclose(context, expected_context, rtol=0, atol=1e-5)
    np.testing.assert_allclose(weights, expected_weights, rtol=0, atol=1e-6)
    # Padded source positions get exactly zero weight; real ones sum to one.
    padded = ~mask if single_step else np.broadcast_to(~mask[:, None, :], weights.shape)
    assert np.all(weights[padded] == 0.0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", list(LAYERS))
def test_unmasked_and_precomputed_keys(name):
    query_dim = H if name == "dot" else U
    layer = _built(name, query_dim)
    query, values, mask = _data(query_dim)
    all_real = np.ones_like(mask)
    expected = _reference(layer, query, values, all_real)
    for actual in (layer(query, values), layer(query, values, keys=layer.precompute_keys(values))):
        np.testing.assert_allclose(np.asarray(actual[0]), expected[0], rtol=0, atol=1e-5)
        np.testing.assert_allclose(np.asarray(actual[1]), expected[1], rtol=0, atol=1e-6)
    keys = layer.precompute_keys(values)
    np.testing.assert_array_equal(
        np.asarray(layer(query, values, mask, keys=keys)[1]),
        np.asarray(layer(query, values, mask)[1]),
    )


def test_hand_set_weights_golden_values():
    """dot score with hand-picked vectors: weights are a softmax of plain dot products."""
    query = np.array([[1.0, 0.0]], "float32")  # (1, 2)
    values = np.array([[[2.0, 0.0], [0.0, 5.0], [1.0, 1.0], [9.0, 9.0]]], "float32")  # (1, 4, 2)
    mask = np.array([[True, True, True, False]])
    context, weights = LuongAttention("dot")(query, values, mask)
    e = np.exp([2.0, 0.0, 1.0])
    np.testing.assert_allclose(np.asarray(weights)[0], [*(e / e.sum()), 0.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(context)[0], (e / e.sum()) @ values[0, :3], rtol=1e-6)


@pytest.mark.parametrize("name", list(LAYERS))
def test_fully_padded_source_gives_zeros_not_nan(name):
    query_dim = H if name == "dot" else U
    layer = _built(name, query_dim)
    query, values, _ = _data(query_dim)
    context, weights = layer(query, values, np.zeros((B, S), bool))
    assert np.all(np.asarray(weights) == 0.0)
    assert np.all(np.asarray(context) == 0.0)


def test_values_mask_is_filled_from_keras_mask():
    tokens = keras.Input((None,), dtype="int32")
    query_in = keras.Input((U,))
    values = keras.layers.Embedding(9, H, mask_zero=True)(tokens)
    attention = BahdanauAttention(A)
    model = keras.Model([query_in, tokens], attention(query_in, values))
    ids = np.array([[1, 2, 0, 0], [3, 4, 5, 6], [7, 0, 0, 0]], "int32")
    query = np.random.default_rng(0).normal(size=(3, U)).astype("float32")
    context, weights = model([query, ids])
    assert np.all(np.asarray(weights)[ids == 0] == 0.0)
    explicit = attention(query, model.layers[2](ids), ids != 0)
    np.testing.assert_array_equal(np.asarray(weights), np.asarray(explicit[1]))
    np.testing.assert_array_equal(np.asarray(context), np.asarray(explicit[0]))


def test_query_mask_propagates_to_outputs():
    tokens = keras.Input((None,), dtype="int32")
    sequence = keras.layers.Embedding(9, U, mask_zero=True)(tokens)  # (B, T, U), masked
    values = keras.Input((None, H))
    context, weights = LuongAttention("general")(sequence, values)
    assert context._keras_mask is not None and weights._keras_mask is not None


def test_attentional_state_matches_numpy():
    rng = np.random.default_rng(0)
    context = rng.normal(size=(B, T, H)).astype("float32")
    hidden = rng.normal(size=(B, T, U)).astype("float32")
    layer = LuongAttentionalState(A)
    layer(context, hidden)
    _randomize(layer)
    (kernel,) = layer.get_weights()
    assert kernel.shape == (H + U, A)
    expected = np.tanh(context @ kernel[:H] + hidden @ kernel[H:])
    np.testing.assert_allclose(np.asarray(layer(context, hidden)), expected, rtol=0, atol=1e-5)
    single = layer(context[:, 0], hidden[:, 0])
    np.testing.assert_allclose(np.asarray(single), expected[:, 0], rtol=0, atol=1e-5)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="score"):
        LuongAttention("bilinear")
    with pytest.raises(ValueError, match="units"):
        LuongAttention("concat")
    query, values, mask = _data(U)
    with pytest.raises(ValueError, match="same size"):
        LuongAttention("dot")(query, values, mask)
    with pytest.raises(ValueError, match="built"):
        BahdanauAttention(A).precompute_keys(values)
