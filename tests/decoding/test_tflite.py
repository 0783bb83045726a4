"""In-graph decoding exports to builtin-only TFLite and gives the TF ids on the plain interpreter.

One `ExportArchive` per model with four endpoints:

- `generate(source_ids) -> {target_ids}` (greedy),
- `generate_beam(source_ids) -> {target_ids, scores}` (beam search),
- `encode(source_ids) -> {memory, source_mask, keys, initial_h_0, ...}`,
- `decode_step(token_ids, <state>, memory, source_mask[, keys]) -> {logits, attention, <state>}`,

converted with `supported_ops=[TFLITE_BUILTINS]` (a non-builtin op fails the conversion).
"""

from __future__ import annotations

import functools
import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from kseq.decoding import beam_search, greedy
from kseq.export.tflite_inspect import op_summary
from kseq.models.seq2seq.rnn.graph import RNNSeq2SeqGraph
from kseq.models.seq2seq.rnn.network import build_rnn_seq2seq
from kseq.models.seq2seq.rnn.spec import (
    AttentionSpec,
    RNNDecoderSpec,
    RNNEncoderSpec,
    RNNSeq2SeqSpec,
)

from .models import BOS, reverse_batch, trained_reverse_model

MAX_LENGTH, BEAM, N_BEST = 7, 3, 2
SIGNATURES = ["generate", "generate_beam", "encode", "decode_step"]


def untrained_luong_model():
    """Luong concat attention with input feeding, GRU encoder into a 2-layer GRU decoder."""
    keras.utils.set_random_seed(1)
    spec = RNNSeq2SeqSpec(
        embedding_dim=6,
        encoder=RNNEncoderSpec(cell="lstm", units=5, layers=2, bidirectional=True),
        decoder=RNNDecoderSpec(cell="gru", units=7, layers=2),
        attention=AttentionSpec(type="luong", score="concat", units=4, input_feeding=True),
    )
    model = build_rnn_seq2seq(spec, 10, 12)
    return model, RNNSeq2SeqGraph(model)


def endpoints(graph):
    source_spec = [tf.TensorSpec((None, None), tf.int32, name="source_ids")]
    state_specs = graph.state_specs()
    encoded_specs = {k: v for k, v in graph.encoded_specs().items() if not k.startswith("initial_")}
    step_specs = [
        tf.TensorSpec((None,), tf.int32, name="token_ids"),
        *state_specs.values(),
        *encoded_specs.values(),
    ]

    def generate(source_ids):
        return {"target_ids": greedy(graph, source_ids, MAX_LENGTH)["target_ids"]}

    def generate_beam(source_ids):
        return beam_search(graph, source_ids, MAX_LENGTH, beam_width=BEAM, n_best=N_BEST)

    def encode(source_ids):
        return graph.encode(source_ids)

    def decode_step(token_ids, *tensors):
        state = dict(zip(state_specs, tensors[: len(state_specs)], strict=True))
        encoded = dict(zip(encoded_specs, tensors[len(state_specs) :], strict=True))
        logits, new_state, attention = graph.step(token_ids, state, encoded)
        return {"logits": logits, "attention": attention, **new_state}

    return {
        "generate": (generate, source_spec),
        "generate_beam": (generate_beam, source_spec),
        "encode": (encode, source_spec),
        "decode_step": (decode_step, step_specs),
    }


def convert(model, graph):
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (fn, signature) in endpoints(graph).items():
        archive.add_endpoint(name, fn, input_signature=signature)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "saved_model")
        archive.write_out(path, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(path, signature_keys=SIGNATURES)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter.convert()


@functools.cache
def converted(name):
    model, graph = (
        trained_reverse_model() if name == "trained-bahdanau" else untrained_luong_model()
    )
    return graph, convert(model, graph)


@pytest.fixture(params=["trained-bahdanau", "untrained-luong"])
def exported(request):
    return converted(request.param)


def mixed_sources(batch, seed):
    source, _, _ = reverse_batch(np.random.default_rng(seed), batch)
    source[0, :] = [4, 5, 6, 7, 8]  # one full row: the batch is really 5 wide
    source[-1, 1:] = 0  # and a one-token row
    return source


def test_builtin_ops_only(exported):
    _, model_bytes = exported
    summary = op_summary(model_bytes)
    assert not summary["custom_ops"]
    ops = summary["ops"]
    assert not [op for op in ops if op.lower().startswith("flex")], ops
    assert {"WHILE", "TOPK_V2", "GATHER"} <= set(ops)
    signatures = Interpreter(model_content=model_bytes).get_signature_list()
    assert sorted(signatures) == sorted(SIGNATURES)


@pytest.mark.parametrize("batch", [1, 6])
def test_generate_matches_tf(exported, batch):
    graph, model_bytes = exported
    interpreter = Interpreter(model_content=model_bytes)
    source = mixed_sources(batch, seed=batch) if batch > 1 else np.array([[9, 4, 7]], "int32")

    ids = interpreter.get_signature_runner("generate")(source_ids=source)["target_ids"]
    expected = greedy(graph, source, MAX_LENGTH)["target_ids"].numpy()
    assert ids.shape == (batch, MAX_LENGTH)
    np.testing.assert_array_equal(ids, expected)
    assert np.any(expected != 0)

    beam = interpreter.get_signature_runner("generate_beam")(source_ids=source)
    expected = beam_search(graph, source, MAX_LENGTH, beam_width=BEAM, n_best=N_BEST)
    assert beam["target_ids"].shape == (batch, N_BEST, MAX_LENGTH)
    np.testing.assert_array_equal(beam["target_ids"], expected["target_ids"])
    np.testing.assert_allclose(beam["scores"], expected["scores"], rtol=0, atol=1e-4)


def test_trained_model_reverses_on_the_interpreter():
    _, model_bytes = converted("trained-bahdanau")
    source, _, target_out = reverse_batch(np.random.default_rng(11), 16)
    runner = Interpreter(model_content=model_bytes).get_signature_runner("generate")
    ids = runner(source_ids=source)["target_ids"]
    expected = np.where(target_out == 3, 0, target_out)
    assert (ids[:, :6] == expected).all(1).mean() >= 0.9


@pytest.mark.parametrize("batch", [2, 5])
def test_encode_and_decode_step_match_tf(exported, batch):
    graph, model_bytes = exported
    interpreter = Interpreter(model_content=model_bytes)
    source = mixed_sources(batch, seed=20 + batch)
    encoded = interpreter.get_signature_runner("encode")(source_ids=source)
    expected = graph.encode(source)
    assert set(encoded) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(encoded[key], value.numpy(), rtol=0, atol=1e-5, err_msg=key)

    state = {k: v.numpy() for k, v in graph.initial_state(expected).items()}
    step_encoded = {k: v for k, v in encoded.items() if not k.startswith("initial_")}
    runner = interpreter.get_signature_runner("decode_step")
    tokens = np.full((batch,), BOS, "int32")
    for _ in range(3):  # a few steps, each fed back from the interpreter's own state
        outputs = runner(token_ids=tokens, **state, **step_encoded)
        logits, new_state, attention = graph.step(tf.constant(tokens), state, expected)
        np.testing.assert_allclose(outputs["logits"], logits.numpy(), rtol=0, atol=1e-4)
        np.testing.assert_allclose(outputs["attention"], attention.numpy(), rtol=0, atol=1e-5)
        assert np.all(outputs["attention"][source == 0] == 0.0)
        state = {k: outputs[k] for k in graph.state_names}
        for key, value in new_state.items():
            np.testing.assert_allclose(state[key], value.numpy(), rtol=0, atol=1e-4, err_msg=key)
        tokens = logits.numpy().argmax(-1).astype("int32")
