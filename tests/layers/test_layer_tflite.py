"""The layers convert to TFLite with builtin ops only and match Keras on the plain interpreter."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tflite_helpers import convert_builtins, op_names, run_tflite

from kseq.layers.rnn import ExportableBidirectional, ExportableGRU, ExportableLSTM
from kseq.models.seq2seq.rnn.attention import (
    BahdanauAttention,
    LuongAttention,
    LuongAttentionalState,
)

VOCAB, D, U, A, G = 13, 5, 4, 6, 3  # vocab, embedding, LSTM units, attention size, GRU units


class Seq2Seq:
    """A tiny attention encoder-decoder: a functional model plus encode/decode-step endpoints."""

    def __init__(self):
        keras.utils.set_random_seed(0)
        self.embedding = keras.layers.Embedding(VOCAB, D, mask_zero=True)
        self.encoder = ExportableLSTM(U, return_sequences=True, return_state=True)
        self.bidirectional = ExportableBidirectional(G, rnn_type="gru", return_state=True)
        self.summary = ExportableGRU(G, go_backwards=True)  # last output only: no buffer
        self.bahdanau = BahdanauAttention(A)
        self.decoder = ExportableLSTM(U, return_sequences=True)
        self.luong = LuongAttention("concat", units=A)
        self.attentional = LuongAttentionalState(D)

        source = keras.Input((None,), dtype="int32", name="source")
        target = keras.Input((None,), dtype="int32", name="target")
        encoded, h, c = self.encoder(self.embedding(source))  # (B, S, U), (B, U) x2
        bi_outputs, *bi_states = self.bidirectional(self.embedding(source))
        bahdanau_context, bahdanau_weights = self.bahdanau(h, encoded)
        decoded = self.decoder(self.embedding(target), initial_state=[h, c])  # (B, T, U)
        luong_context, luong_weights = self.luong(decoded, encoded)
        outputs = {
            "encoded": encoded,
            "h": h,
            "c": c,
            "bi_outputs": bi_outputs,
            "bi_h_backward": bi_states[1],
            "summary": self.summary(self.embedding(source)),
            "bahdanau_context": bahdanau_context,
            "bahdanau_weights": bahdanau_weights,
            "luong_weights": luong_weights,
            "attentional": self.attentional(luong_context, decoded),
        }
        self.model = keras.Model({"source": source, "target": target}, outputs)

    def forward(self, source, target):
        return self.model({"source": source, "target": target})

    def encode(self, source):
        encoded, h, c = self.encoder(self.embedding(source))
        return {"encoded": encoded, "h": h, "c": c, "keys": self.luong.precompute_keys(encoded)}

    def decode_step(self, token, h, c, encoded, keys, source_mask):
        output, (h, c) = self.decoder.step(self.embedding(token), [h, c])  # (B, U)
        context, weights = self.luong(output, encoded, source_mask, keys=keys)  # (B, U), (B, S)
        return {
            "h": h,
            "c": c,
            "weights": weights,
            "attentional": self.attentional(context, output),
        }


def _spec(shape, dtype, name):
    return tf.TensorSpec(shape, dtype, name=name)


@pytest.fixture(scope="module")
def converted():
    net = Seq2Seq()
    ids = [_spec((None, None), tf.int32, n) for n in ("source", "target")]
    step_inputs = [
        _spec((None,), tf.int32, "token"),
        _spec((None, U), tf.float32, "h"),
        _spec((None, U), tf.float32, "c"),
        _spec((None, None, U), tf.float32, "encoded"),
        _spec((None, None, A), tf.float32, "keys"),
        _spec((None, None), tf.bool, "source_mask"),
    ]
    endpoints = {
        "forward": (net.forward, ids),
        "encode": (net.encode, ids[:1]),
        "decode_step": (net.decode_step, step_inputs),
    }
    return net, convert_builtins(endpoints, net.model)


def _tokens(batch, length, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, size=(batch, length)).astype("int32")
    lengths = rng.integers(1, length + 1, size=batch)
    lengths[0] = length  # one full row so the padded length is really `length`
    ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
    return ids


def _assert_matches(actual, expected, atol=1e-5):
    assert set(actual) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(actual[key], np.asarray(value), rtol=0, atol=atol, err_msg=key)


def test_builtin_ops_only(converted):
    _, model_bytes = converted
    ops = op_names(model_bytes)
    assert "WHILE" in ops
    assert not any(op.lower().startswith("flex") or op == "CUSTOM" for op in ops), ops


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("source_len,target_len", [(3, 2), (8, 5)])
def test_forward_matches_keras(converted, batch, source_len, target_len):
    net, model_bytes = converted
    source = _tokens(batch, source_len, seed=source_len)
    target = _tokens(batch, target_len, seed=target_len + 100)
    actual = run_tflite(model_bytes, {"source": source, "target": target}, "forward")
    _assert_matches(actual, net.forward(source, target))
    # Exact zeros at padded source positions survive conversion.
    assert np.all(actual["bahdanau_weights"][source == 0] == 0.0)


@pytest.mark.parametrize("batch,source_len", [(1, 3), (4, 8)])
def test_encode_and_decode_step_match_keras(converted, batch, source_len):
    net, model_bytes = converted
    source = _tokens(batch, source_len, seed=7)
    encoded = run_tflite(model_bytes, {"source": source}, "encode")
    _assert_matches(encoded, net.encode(source))
    step_inputs = {
        "token": np.full((batch,), 2, "int32"),
        "h": encoded["h"],
        "c": encoded["c"],
        "encoded": encoded["encoded"],
        "keys": encoded["keys"],
        "source_mask": source != 0,
    }
    actual = run_tflite(model_bytes, step_inputs, "decode_step")
    _assert_matches(actual, net.decode_step(**step_inputs))
    assert np.all(actual["weights"][source == 0] == 0.0)
