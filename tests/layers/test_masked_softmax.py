"""The masked softmax without a large constant: its float values, MultiHeadAttention with it,
and what it is for, attention weights that survive full-integer (int8) quantization."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops
from tflite_helpers import convert_builtins, run_tflite

from kseq.layers.masked_softmax import MaskedMultiHeadAttention, masked_softmax
from kseq.models.seq2seq.rnn.attention import BahdanauAttention


def numpy_masked_softmax(scores, mask):
    shifted = np.where(mask, scores, -np.inf)
    top = shifted.max(-1, keepdims=True)
    exps = np.where(mask, np.exp(shifted - np.where(np.isfinite(top), top, 0)), 0.0)
    total = exps.sum(-1, keepdims=True)
    return np.divide(exps, total, out=np.zeros_like(exps), where=total > 0)


@pytest.mark.parametrize("scale", [1.0, 40.0, 1e3])
def test_matches_numpy_including_empty_rows_and_wide_scores(scale):
    rng = np.random.default_rng(0)
    scores = (rng.normal(size=(3, 4, 9)) * scale).astype("float32")
    mask = rng.random((3, 4, 9)) > 0.4
    mask[0, 0] = False  # nothing visible: zeros, not uniform or NaN
    mask[1, 1] = [True] + [False] * 8  # one visible: weight 1
    got = np.asarray(masked_softmax(scores, mask))
    np.testing.assert_allclose(got, numpy_masked_softmax(scores, mask), atol=1e-6)
    assert np.all(got[0, 0] == 0) and got[1, 1, 0] == pytest.approx(1.0)
    assert np.all(got[~mask] == 0)


def test_mask_broadcasts_over_rows():
    scores = np.arange(12, dtype="float32").reshape(2, 2, 3)
    mask = np.array([[[True, False, True]], [[False, True, True]]])  # (2, 1, 3)
    got = np.asarray(masked_softmax(scores, mask))
    np.testing.assert_allclose(
        got, numpy_masked_softmax(scores, np.broadcast_to(mask, scores.shape)), atol=1e-6
    )


def paired_attentions(**kwargs):
    rng = np.random.default_rng(1)
    query = rng.normal(size=(3, 5, 8)).astype("float32")
    value = rng.normal(size=(3, 7, 8)).astype("float32")
    reference = keras.layers.MultiHeadAttention(2, 4, **kwargs)
    ours = MaskedMultiHeadAttention(2, 4, **kwargs)
    reference(query, value)
    ours(query, value)
    ours.set_weights(reference.get_weights())
    return reference, ours, query, value


def test_multi_head_attention_equals_keras_where_a_key_is_visible():
    reference, ours, query, value = paired_attentions()
    mask = np.random.default_rng(2).random((3, 5, 7)) > 0.5
    mask[:, :, 0] = True
    mask[2, 3] = False  # this query sees nothing
    want, want_scores = reference(query, value, attention_mask=mask, return_attention_scores=True)
    got, got_scores = ours(query, value, attention_mask=mask, return_attention_scores=True)
    visible = mask.any(-1)  # (B, T)
    np.testing.assert_allclose(np.asarray(got)[visible], np.asarray(want)[visible], atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(got_scores).transpose(0, 2, 1, 3)[visible],
        np.asarray(want_scores).transpose(0, 2, 1, 3)[visible],
        atol=1e-6,
    )
    # Keras attends uniformly there; here nothing is attended: the output is the output bias.
    np.testing.assert_allclose(np.asarray(got)[2, 3], np.asarray(ours.output_dense.bias))
    assert np.all(np.asarray(got_scores)[2, :, 3] == 0)


def test_causal_and_unmasked_attention_equal_keras():
    reference, ours, query, _ = paired_attentions()
    for kwargs in ({"use_causal_mask": True}, {}):
        np.testing.assert_allclose(
            np.asarray(ours(query, query, **kwargs)),
            np.asarray(reference(query, query, **kwargs)),
            atol=1e-5,
        )


def test_serializes_and_rejects_several_attention_axes():
    _, ours, query, value = paired_attentions()
    copy = MaskedMultiHeadAttention.from_config(ours.get_config())
    copy(query, value)
    copy.set_weights(ours.get_weights())
    np.testing.assert_allclose(np.asarray(copy(query, value)), np.asarray(ours(query, value)))
    assert keras.saving.get_registered_name(MaskedMultiHeadAttention) == (
        "kseq>MaskedMultiHeadAttention"
    )
    with pytest.raises(ValueError, match="one axis"):
        MaskedMultiHeadAttention(2, 4, attention_axes=(1, 2))


def cosine(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def large_constant_masked_softmax(scores, mask):
    """The usual form, for contrast: -1e9 written into masked scores."""
    return ops.softmax(ops.where(mask, scores, -1e9), axis=-1) * ops.cast(mask, scores.dtype)


@pytest.mark.parametrize(
    "softmax, survives", [(masked_softmax, True), (large_constant_masked_softmax, False)]
)
def test_attention_weights_survive_int8(softmax, survives):
    """Bahdanau weights over a half-padded source, int8 file vs Keras: ours keep cosine > 0.99;
    with the -1e9 form the same conversion flattens them (so the check can tell them apart)."""
    keras.utils.set_random_seed(0)
    attention = BahdanauAttention(16)
    rng = np.random.default_rng(3)
    values = rng.normal(size=(8, 12, 6)).astype("float32") * 2
    query = rng.normal(size=(8, 10)).astype("float32") * 2
    lengths = rng.integers(3, 13, size=8)
    mask = np.arange(12)[None] < lengths[:, None]
    attention(query, values, mask)

    def weights_fn(query, values, mask):
        scores = attention._scores(ops.expand_dims(query, 1), attention.precompute_keys(values))
        return {"weights": softmax(scores, ops.expand_dims(mask > 0, 1))[:, 0]}

    signature = [
        tf.TensorSpec((None, 10), tf.float32, name="query"),
        tf.TensorSpec((None, 12, 6), tf.float32, name="values"),
        tf.TensorSpec((None, 12), tf.float32, name="mask"),
    ]
    inputs = {"query": query, "values": values, "mask": mask.astype("float32")}
    flatbuffer = convert_builtins(
        {"weights": (tf.function(weights_fn), signature)},
        attention,
        int8_calibration={"weights": [inputs]},
    )
    got = run_tflite(flatbuffer, inputs, "weights")["weights"]
    want = np.asarray(weights_fn(**inputs)["weights"])
    assert (cosine(got, want) > 0.99) == survives, cosine(got, want)


def test_training_runs_exactly_keras_computation():
    """In training the layer is Keras's, to the bit, so models train as they did."""
    reference, ours, query, value = paired_attentions()
    mask = np.random.default_rng(4).random((3, 5, 7)) > 0.5
    mask[:, :, 0] = True
    np.testing.assert_array_equal(
        np.asarray(ours(query, value, attention_mask=mask, training=True)),
        np.asarray(reference(query, value, attention_mask=mask, training=True)),
    )


def test_source_attention_trains_with_its_old_form_and_infers_int8_safe():
    """Training keeps the large-constant form bit for bit; inference gives the same weights."""
    keras.utils.set_random_seed(1)
    attention = BahdanauAttention(6)
    rng = np.random.default_rng(6)
    values = rng.normal(size=(2, 5, 4)).astype("float32")
    query = rng.normal(size=(2, 3)).astype("float32")
    mask = np.array([[True] * 5, [True, True, False, False, False]])
    _, trained = attention(query, values, mask, training=True)
    _, inferred = attention(query, values, mask)
    scores = attention._scores(ops.expand_dims(query, 1), attention.precompute_keys(values))
    old_form = large_constant_masked_softmax(scores, ops.expand_dims(mask, 1))[:, 0]
    np.testing.assert_array_equal(np.asarray(trained), np.asarray(old_form))
    np.testing.assert_allclose(np.asarray(inferred), np.asarray(trained), atol=1e-6)
    assert np.all(np.asarray(inferred)[1, 2:] == 0)
