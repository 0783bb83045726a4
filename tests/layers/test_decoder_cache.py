"""The decoder layer's cached step equals its full causal call, position by position.

Sizes all differ (batch 2, target length 4, cache slots 6, memory length 5, width 12, 3 heads
of 4, feed-forward 10) so a wrong axis cannot pass by accident.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from kseq.layers.masked_softmax import MaskedMultiHeadAttention
from kseq.layers.transformer import TransformerDecoderLayer

BATCH, LENGTH, SLOTS, MEMORY, WIDTH, HEADS = 2, 4, 6, 5, 12, 3
MEMORY_MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], "int32")


def layer_and_inputs(norm_first):
    keras.utils.set_random_seed(3)
    layer = TransformerDecoderLayer(
        intermediate_dim=10, num_heads=HEADS, norm_first=norm_first, layer_norm_epsilon=1e-5
    )
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(BATCH, LENGTH, WIDTH)).astype("float32")
    memory = rng.normal(size=(BATCH, MEMORY, WIDTH)).astype("float32")
    layer(inputs, memory=memory)
    return layer, inputs, memory


@pytest.mark.parametrize("norm_first", [False, True])
def test_cached_steps_equal_the_full_causal_call(norm_first):
    layer, inputs, memory = layer_and_inputs(norm_first)
    full, full_scores = layer(
        inputs, memory=memory, memory_padding_mask=MEMORY_MASK, return_attention_scores=True
    )
    cross = (layer.cross_attention.key_dense(memory), layer.cross_attention.value_dense(memory))
    zeros = np.zeros((BATCH, SLOTS, HEADS, WIDTH // HEADS), "float32")
    cache = (zeros, zeros)
    for t in range(LENGTH):
        step, scores, cache = layer(
            inputs[:, t : t + 1],
            memory_padding_mask=MEMORY_MASK,
            self_attention_cache=cache,
            cache_position=np.full((BATCH,), t, "int32"),
            cross_attention_cache=cross,
            return_attention_scores=True,
        )
        np.testing.assert_allclose(step[:, 0], full[:, t], rtol=0, atol=1e-5)
        np.testing.assert_allclose(scores[:, :, 0], full_scores[:, :, t], rtol=0, atol=1e-6)
        # the step wrote its own key into slot t (pre-LN: of the normalised input) and left
        # later slots empty
        x = inputs[:, t : t + 1]
        key = layer.self_attention.key_dense(
            layer.self_attention_layer_norm(x) if norm_first else x
        )
        np.testing.assert_allclose(cache[0][:, t], key[:, 0], rtol=0, atol=1e-6)
        assert np.all(np.asarray(cache[0])[:, t + 1 :] == 0)
    assert np.all(np.asarray(full_scores)[1, :, :, 2:] == 0)  # padded memory gets no weight


def test_cross_cache_equals_memory_and_plain_call_returns_a_tensor():
    layer, inputs, memory = layer_and_inputs(norm_first=True)
    plain = layer(inputs, memory=memory, memory_padding_mask=MEMORY_MASK)
    assert not isinstance(plain, tuple)
    cross = (layer.cross_attention.key_dense(memory), layer.cross_attention.value_dense(memory))
    cached = layer(inputs, memory_padding_mask=MEMORY_MASK, cross_attention_cache=cross)
    np.testing.assert_allclose(cached, plain, rtol=0, atol=1e-6)


def test_rows_at_different_positions_write_their_own_slots():
    attention = MaskedMultiHeadAttention(num_heads=2, key_dim=3)
    rng = np.random.default_rng(1)
    query = rng.normal(size=(2, 1, 5)).astype("float32")
    attention(query, query)
    earlier = rng.normal(size=(2, 4, 2, 3)).astype("float32")
    positions = np.array([1, 3], "int32")
    visible = ops.expand_dims(ops.less_equal(np.arange(4), positions[:, None]), 1)  # (B, 1, L)
    outputs, (keys, values) = attention(
        query, query, attention_mask=visible, cache=(earlier, earlier), cache_position=positions
    )
    keys, values = np.asarray(keys), np.asarray(values)
    new_key = np.asarray(attention.key_dense(query))[:, 0]
    new_value = np.asarray(attention.value_dense(query))[:, 0]
    for row, slot in enumerate(positions):
        np.testing.assert_allclose(keys[row, slot], new_key[row], rtol=0, atol=1e-6)
        np.testing.assert_allclose(values[row, slot], new_value[row], rtol=0, atol=1e-6)
        others = [s for s in range(4) if s != slot]
        np.testing.assert_array_equal(keys[row, others], earlier[row, others])
    # reference: plain attention over the visible slots of each row
    for row, slot in enumerate(positions):
        visible_keys = keys[row : row + 1, : slot + 1]
        visible_values = values[row : row + 1, : slot + 1]
        q = np.asarray(attention.query_dense(query[row : row + 1]))  # (1, 1, N, K)
        logits = np.einsum("btnk,bsnk->bnts", q, visible_keys) / np.sqrt(3)
        weights = np.exp(logits - logits.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        mixed = np.einsum("bnts,bsnk->btnk", weights, visible_values)
        expected = np.asarray(attention.output_dense(mixed))
        np.testing.assert_allclose(np.asarray(outputs)[row : row + 1], expected, atol=1e-5)


def test_a_self_attention_cache_needs_its_position():
    layer, inputs, _ = layer_and_inputs(norm_first=False)
    zeros = np.zeros((BATCH, SLOTS, HEADS, WIDTH // HEADS), "float32")
    with pytest.raises(ValueError, match="cache_position"):
        layer(inputs[:, :1], self_attention_cache=(zeros, zeros))
