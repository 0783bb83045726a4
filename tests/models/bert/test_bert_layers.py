"""Transformer and BERT layers: numpy parity, masks, padding invariance, saving, builtin TFLite."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from bert_helpers import convert_builtins, gelu, run_tflite

from kseq.layers.embedding import ReversibleEmbedding
from kseq.layers.transformer import (
    PositionEmbedding,
    SinusoidalPositionEncoding,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
    causal_attention_mask,
    merge_attention_masks,
    padding_attention_mask,
)
from kseq.models.bert.head_layers import (
    BestSpan,
    FirstTokenPooler,
    GatherPositions,
    MaskedLMTransform,
    OutputBias,
    SpanLogits,
    best_span,
    gather_positions,
)

B, S, H, N, F = 2, 5, 8, 2, 12  # a different size for every dimension


def _randomize(layer, seed=0, scale=0.4):
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        value = rng.normal(size=weight.shape) * scale
        if weight.path.endswith("gamma"):
            value += 1.0
        weight.assign(value.astype("float32"))


def _ln(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _np_attention(mha, query, value, mask):
    """Keras MultiHeadAttention weights, plain numpy arithmetic. mask: (B, T, S) bool."""
    w = {v.path.split("/", 1)[1]: v.numpy().astype(np.float64) for v in mha.weights}
    prefix = mha.name + "/"
    w = {k.removeprefix(prefix): v for k, v in w.items()}
    q = np.einsum("bth,hnd->bntd", query, w["query/kernel"]) + w["query/bias"][None, :, None]
    k = np.einsum("bsh,hnd->bnsd", value, w["key/kernel"]) + w["key/bias"][None, :, None]
    v = np.einsum("bsh,hnd->bnsd", value, w["value/kernel"]) + w["value/bias"][None, :, None]
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(q.shape[-1])  # (B, N, T, S)
    scores = np.where(mask[:, None], scores, -1e30)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    context = probs @ v  # (B, N, T, d)
    out = np.einsum("bntd,ndh->bth", context, w["attention_output/kernel"])
    return out + w["attention_output/bias"]


def _np_encoder(layer, x, padding):
    def dense(sub, h):
        return h @ sub.kernel.numpy() + sub.bias.numpy()

    def ln(sub, h):
        return _ln(h, sub.gamma.numpy(), sub.beta.numpy(), layer.layer_norm_epsilon)

    mask = np.broadcast_to(padding[:, None, :] > 0, (x.shape[0], x.shape[1], x.shape[1]))

    def attend(h):
        return _np_attention(layer.self_attention, h, h, mask)

    def ffn(h):
        return dense(layer.output_dense, gelu(dense(layer.intermediate_dense, h)))

    if layer.norm_first:
        h = x + attend(ln(layer.self_attention_layer_norm, x))
        return h + ffn(ln(layer.feedforward_layer_norm, h))
    h = ln(layer.self_attention_layer_norm, x + attend(x))
    return ln(layer.feedforward_layer_norm, h + ffn(h))


def _inputs(seed=1, length=S):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, length, H)).astype("float32")
    padding = np.ones((B, length), "int32")
    padding[1, 3:] = 0
    return x, padding


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_matches_numpy(norm_first):
    layer = TransformerEncoderLayer(F, N, layer_norm_epsilon=1e-6, norm_first=norm_first)
    x, padding = _inputs()
    layer(x, padding_mask=padding)
    _randomize(layer)
    got = np.asarray(layer(x, padding_mask=padding))
    expected = _np_encoder(layer, x.astype(np.float64), padding)
    real = padding.astype(bool)
    np.testing.assert_allclose(got[real], expected[real], atol=1e-5)
    assert np.abs(expected).max() > 0.5


def test_encoder_layer_is_padding_invariant_and_reads_keras_masks():
    layer = TransformerEncoderLayer(F, N, dropout=0.3)
    x, padding = _inputs()
    layer(x, padding_mask=padding)
    _randomize(layer, seed=2)
    base = np.asarray(layer(x, padding_mask=padding))
    rng = np.random.default_rng(5)
    longer = np.concatenate([x, rng.normal(size=(B, 4, H)).astype("float32") * 10], axis=1)
    longer[1, 3:] = rng.normal(size=(6, H)) * 10  # garbage in every padded slot
    padded = np.concatenate([padding, np.zeros((B, 4), "int32")], axis=1)
    got = np.asarray(layer(longer, padding_mask=padded))
    real = padding.astype(bool)
    np.testing.assert_allclose(got[:, :S][real], base[real], atol=1e-5)
    # A Keras mask on the inputs acts as the padding mask.
    masked = keras.layers.Masking(mask_value=0.0)
    zeroed = np.where(padding[..., None] > 0, x, 0.0).astype("float32")
    auto = np.asarray(layer(masked(zeroed)))
    np.testing.assert_allclose(auto[real], base[real], atol=1e-5)


def test_masks_are_exact():
    causal = np.asarray(causal_attention_mask(4))
    np.testing.assert_array_equal(causal[0], np.tril(np.ones((4, 4), bool)))
    shifted = np.asarray(causal_attention_mask(2, 5, start_index=3))[0]
    np.testing.assert_array_equal(shifted, [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    padding = np.asarray(padding_attention_mask(np.array([[1, 1, 0]])))
    assert padding.shape == (1, 1, 3) and padding.tolist() == [[[True, True, False]]]
    merged = np.asarray(merge_attention_masks(causal_attention_mask(3), padding, None))
    np.testing.assert_array_equal(merged[0], [[1, 0, 0], [1, 1, 0], [1, 1, 0]])
    assert merge_attention_masks(None) is None


def test_decoder_layer_is_causal_and_ignores_padded_memory():
    layer = TransformerDecoderLayer(F, N)
    x, padding = _inputs(seed=3)
    memory = np.random.default_rng(4).normal(size=(B, 7, H)).astype("float32")
    memory_mask = np.ones((B, 7), "int32")
    memory_mask[0, 4:] = 0
    layer(x, memory, memory_padding_mask=memory_mask)
    _randomize(layer, seed=6)
    base = np.asarray(layer(x, memory, memory_padding_mask=memory_mask))
    future = x.copy()
    future[:, 3:] += 5.0
    changed = np.asarray(layer(future, memory, memory_padding_mask=memory_mask))
    np.testing.assert_allclose(changed[:, :3], base[:, :3], atol=1e-5)
    assert np.abs(changed[:, 3:] - base[:, 3:]).max() > 1e-2
    noisy = memory.copy()
    noisy[0, 4:] = 100.0
    np.testing.assert_allclose(layer(x, noisy, memory_padding_mask=memory_mask), base, atol=1e-5)
    # Decoder-only use (no memory) works too.
    assert layer(x).shape == (B, S, H)


def test_position_encodings():
    layer = PositionEmbedding(10)
    x = np.zeros((B, 4, H), "float32")
    out = np.asarray(layer(x))
    table = layer.position_embeddings.numpy()
    np.testing.assert_array_equal(out, np.broadcast_to(table[:4], (B, 4, H)))
    np.testing.assert_array_equal(layer(x, start_index=3)[0], table[3:7])
    sinus = np.asarray(SinusoidalPositionEncoding()(np.zeros((1, 6, H), "float32")))[0]
    pos, i = np.arange(6)[:, None], np.arange(H)[None, :]
    angle = pos / np.power(10000.0, (i // 2 * 2) / H)
    expected = np.where(i % 2 == 0, np.sin(angle), np.cos(angle))
    np.testing.assert_allclose(sinus, expected, atol=1e-5)


def _brute_force_span(start, end, allowed, limit):
    best = (-np.inf, 0, 0)
    for i in range(len(start)):
        for j in range(i, min(len(start), i + limit)):
            if allowed[i] and allowed[j] and start[i] + end[j] > best[0]:
                best = (start[i] + end[j], i, j)
    return best


def test_best_span_picks_the_best_valid_span():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(64, 11)).astype("float32")
    end = rng.normal(size=(64, 11)).astype("float32")
    allowed = rng.random((64, 11)) < 0.7
    allowed[:, 0] = False
    got_start, got_end, got_score = (np.asarray(t) for t in best_span(start, end, allowed, 3))
    for row in range(64):
        score, i, j = _brute_force_span(start[row], end[row], allowed[row], 3)
        if score == -np.inf:
            assert (got_start[row], got_end[row], got_score[row]) == (0, 0, -1e30)
            continue
        assert (got_start[row], got_end[row]) == (i, j)
        assert got_score[row] == pytest.approx(score, abs=1e-6)
    # The unconstrained argmax (end before start, too long, or outside `allowed`) is refused.
    s = np.array([[0.0, 9.0, 0.0, 1.0, 0.0]], "float32")
    e = np.array([[9.0, 0.0, 0.0, 0.0, 12.0]], "float32")  # (1, 4) is too long
    spans = best_span(s, e, np.array([[0, 1, 1, 1, 1]]), 3)
    assert [int(np.asarray(t)[0]) for t in spans[:2]] == [3, 4]
    ties = best_span(np.zeros((1, 4), "float32"), np.zeros((1, 4), "float32"), np.ones((1, 4)), 2)
    assert [int(np.asarray(t)[0]) for t in ties[:2]] == [0, 0]  # earliest start, then end


def test_gather_and_reversible_embedding_are_exact():
    rng = np.random.default_rng(1)
    sequence = rng.normal(size=(B, S, H)).astype("float32")
    positions = np.array([[4, 0, 2], [1, 1, 3]], "int32")
    gathered = np.asarray(gather_positions(sequence, positions))
    np.testing.assert_array_equal(gathered, np.take_along_axis(sequence, positions[..., None], 1))
    embedding = ReversibleEmbedding(13, H)
    embedding(positions)
    logits = np.asarray(embedding(sequence, reverse=True))
    np.testing.assert_allclose(logits, sequence @ embedding.embeddings.numpy().T, atol=1e-6)


LAYERS = [
    lambda: TransformerEncoderLayer(
        16,
        4,
        dropout=0.2,
        attention_dropout=0.0,
        activation="gelu_approximate",
        layer_norm_epsilon=1e-6,
        norm_first=True,
        kernel_initializer="he_normal",
        name="enc",
    ),  # fmt: skip
    lambda: TransformerDecoderLayer(8, 2, activation="relu"),
    lambda: PositionEmbedding(32, initializer="zeros"),
    lambda: SinusoidalPositionEncoding(max_wavelength=100.0),
    lambda: ReversibleEmbedding(10, 4),
    lambda: FirstTokenPooler(6),
    lambda: GatherPositions(),
    lambda: MaskedLMTransform(activation="relu", layer_norm_epsilon=1e-5),
    lambda: OutputBias(),
    lambda: SpanLogits(),
    lambda: BestSpan(7),
]


@pytest.mark.parametrize("make", LAYERS)
def test_config_round_trip(make):
    layer = make()
    config = layer.get_config()
    assert layer.__class__.from_config(config).get_config() == config
    name = keras.saving.get_registered_name(layer.__class__)
    assert name == f"kseq>{layer.__class__.__name__}"


def test_invalid_arguments_fail_early():
    with pytest.raises(ValueError, match="activation"):
        TransformerEncoderLayer(8, 2, activation="swishy")
    layer = TransformerEncoderLayer(8, 3)
    with pytest.raises(ValueError, match="divisible"):
        layer(np.zeros((1, 2, 8), "float32"))
    with pytest.raises(ValueError, match="sequence_length"):
        PositionEmbedding(0)


def _stack():
    keras.utils.set_random_seed(3)
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    mask = keras.Input((None,), dtype="int32", name="padding_mask")
    embedding = ReversibleEmbedding(20, H, name="token_embedding")
    x = embedding(ids)
    x = x + PositionEmbedding(16)(x) + SinusoidalPositionEncoding()(x)
    x = TransformerEncoderLayer(F, N, name="encoder")(x, padding_mask=mask)
    y = TransformerDecoderLayer(F, N, name="decoder")(x, x, padding_mask=mask,
                                                      memory_padding_mask=mask)  # fmt: skip
    start, end = SpanLogits(name="span")(y)
    begin, finish, score = BestSpan(3)(start, end, mask)
    positions = keras.ops.zeros_like(ids)[:, :2] + keras.ops.array([[1, 2]], "int32")
    mlm = MaskedLMTransform(name="mlm")(y, positions)
    logits = OutputBias(name="bias")(embedding(mlm, reverse=True))
    pooled = FirstTokenPooler(H, name="pooler")(y)
    outputs = {"start": start, "span_start": begin, "span_end": finish, "score": score,
               "logits": logits, "pooled": pooled}  # fmt: skip
    return keras.Model({"token_ids": ids, "padding_mask": mask}, outputs)


def test_model_saving_and_builtin_tflite(tmp_path):
    model = _stack()
    ids = np.array([[2, 5, 7, 9, 3, 0], [2, 4, 3, 0, 0, 0]], "int32")
    inputs = {"token_ids": ids, "padding_mask": (ids > 0).astype("int32")}
    expected = {k: np.asarray(v) for k, v in model(inputs).items()}
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True, compile=False)
    for key, value in loaded(inputs).items():
        np.testing.assert_array_equal(value, expected[key])

    signature = [
        tf.TensorSpec((None, None), tf.int32, name="token_ids"),
        tf.TensorSpec((None, None), tf.int32, name="padding_mask"),
    ]
    flatbuffer = convert_builtins(
        {"serving_default": (lambda token_ids, padding_mask: model(
            {"token_ids": token_ids, "padding_mask": padding_mask}), signature)},
        model,
    )  # fmt: skip
    for batch in (inputs, {k: v[1:, :3] for k, v in inputs.items()}):
        got = run_tflite(flatbuffer, batch)
        reference = {k: np.asarray(v) for k, v in model(batch).items()}
        for key, value in reference.items():
            if value.dtype == np.int32:
                np.testing.assert_array_equal(got[key], value)
            else:
                np.testing.assert_allclose(got[key], value, atol=1e-4)
