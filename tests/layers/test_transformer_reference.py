"""The Transformer blocks against an independent numpy implementation, weight by weight.

The other Transformer tests check self-consistency (causality, cached steps == the full call,
padding invariance); these check the numbers themselves: attention with its scaling and masks,
the residual/LayerNorm order of post-LN and pre-LN, the exact-erf GELU feed-forward, and the
cross-attention weights the decoder returns. Odd sizes (hidden 12, 3 heads of 4, feed-forward
10, target 4, memory 5) so a transposed kernel or a wrong axis cannot pass by accident.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from kseq.layers.transformer import TransformerDecoderLayer, TransformerEncoderLayer

B, T, S, D, HEADS, FF = 2, 4, 5, 12, 3, 10
EPSILON = 1e-5
ERF = np.vectorize(math.erf)


def layer_norm(x, norm):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + EPSILON) * weights(norm.gamma) + weights(norm.beta)


def weights(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), np.float64)


def attention(layer, query, memory, mask):
    """Multi-head attention of `query` (B, T, D) over `memory` (B, S, D); `mask` (B, T, S) bool.

    Returns the output (B, T, D) and the weights (B, N, T, S); a masked key weighs exactly 0."""

    def project(dense, x):  # kernel (D, N, K), bias (N, K)
        return np.einsum("bsd,dnk->bsnk", x, weights(dense.kernel)) + weights(dense.bias)

    q, k, v = (
        project(layer.query_dense, query),
        project(layer.key_dense, memory),
        project(layer.value_dense, memory),
    )
    scores = np.einsum("btnk,bsnk->bnts", q, k) / math.sqrt(q.shape[-1])
    visible = mask[:, None]  # (B, 1, T, S)
    scores = np.where(visible, scores, -np.inf)
    probabilities = np.exp(scores - scores.max(-1, keepdims=True))
    probabilities = np.where(visible, probabilities, 0.0)
    probabilities /= probabilities.sum(-1, keepdims=True)
    context = np.einsum("bnts,bsnk->btnk", probabilities, v)
    output = layer.output_dense
    return np.einsum("btnk,nkd->btd", context, weights(output.kernel)) + weights(
        output.bias
    ), probabilities


def feedforward(block, x):
    hidden = x @ weights(block.intermediate_dense.kernel) + weights(block.intermediate_dense.bias)
    hidden = 0.5 * hidden * (1.0 + ERF(hidden / math.sqrt(2.0)))  # exact GELU
    return hidden @ weights(block.output_dense.kernel) + weights(block.output_dense.bias)


def residual(block, x, sublayer, norm):
    if block.norm_first:
        return x + sublayer(layer_norm(x, norm))
    return layer_norm(x + sublayer(x), norm)


def random_weights(layer, seed):
    """Nonzero biases and LayerNorm parameters too, so each one is checked."""
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(0, 0.4, w.shape).astype("float32") for w in layer.get_weights()])


@pytest.fixture(params=[False, True], ids=["post-ln", "pre-ln"])
def norm_first(request):
    return request.param


def test_encoder_layer_matches_numpy(norm_first):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, S, D)).astype("float32")
    padding = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], "int32")
    layer = TransformerEncoderLayer(FF, HEADS, layer_norm_epsilon=EPSILON, norm_first=norm_first)
    layer(x, padding_mask=padding)
    random_weights(layer, 1)

    got = np.asarray(layer(x, padding_mask=padding, training=False))

    mask = np.broadcast_to(padding[:, None, :].astype(bool), (B, S, S))
    h = residual(
        layer,
        x.astype(np.float64),
        lambda v: attention(layer.self_attention, v, v, mask)[0],
        layer.self_attention_layer_norm,
    )
    expected = residual(layer, h, lambda v: feedforward(layer, v), layer.feedforward_layer_norm)
    real = padding.astype(bool)  # padded positions are computed but meaningless
    np.testing.assert_allclose(got[real], expected[real], rtol=1e-4, atol=1e-4)


def test_decoder_layer_matches_numpy_full_and_cached(norm_first):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(B, T, D)).astype("float32")
    memory = rng.normal(size=(B, S, D)).astype("float32")
    memory_padding = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], "int32")
    layer = TransformerDecoderLayer(FF, HEADS, layer_norm_epsilon=EPSILON, norm_first=norm_first)
    layer(x, memory, memory_padding_mask=memory_padding)
    random_weights(layer, 3)

    got, got_weights = layer(
        x, memory, memory_padding_mask=memory_padding, return_attention_scores=True, training=False
    )

    causal = np.tril(np.ones((T, T), bool))[None].repeat(B, 0)
    cross_mask = np.broadcast_to(memory_padding[:, None, :].astype(bool), (B, T, S))
    memory64 = memory.astype(np.float64)
    cross = {}

    def cross_attend(v):
        out, cross["weights"] = attention(layer.cross_attention, v, memory64, cross_mask)
        return out

    h = residual(
        layer,
        x.astype(np.float64),
        lambda v: attention(layer.self_attention, v, v, causal)[0],
        layer.self_attention_layer_norm,
    )
    h = residual(layer, h, cross_attend, layer.cross_attention_layer_norm)
    expected = residual(layer, h, lambda v: feedforward(layer, v), layer.feedforward_layer_norm)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(got_weights), cross["weights"], atol=1e-5)
    assert np.all(np.asarray(got_weights)[1, :, :, 2:] == 0.0)  # padded memory: exactly 0

    # One step at a time over a cache of T slots: the same numbers, position by position.
    attention_layer = layer.cross_attention
    cross_cache = (attention_layer.key_dense(memory), attention_layer.value_dense(memory))
    zeros = np.zeros((B, T, HEADS, D // HEADS), "float32")
    cache = (zeros, zeros)
    for position in range(T):
        step, _, cache = layer(
            x[:, position : position + 1],
            memory_padding_mask=memory_padding,
            self_attention_cache=cache,
            cache_position=np.full((B,), position, "int32"),
            cross_attention_cache=cross_cache,
            return_attention_scores=True,
            training=False,
        )
        np.testing.assert_allclose(np.asarray(step)[:, 0], expected[:, position], atol=1e-4)
