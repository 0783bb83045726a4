"""Attention kinds of the recurrent decoder: what each declares is what the decoder does, and a
new kind registered in a test runs through the spec, the model, the decoding graph and export
checks without any other file knowing its name."""

from __future__ import annotations

import numpy as np
import pytest
import test_rnn_network as net
from keras import ops

import kseq
from kseq.models.seq2seq.rnn import attention_kinds as kinds
from kseq.models.seq2seq.rnn.graph import RNNSeq2SeqGraph


def spec_file(tmp_path, attention):
    path = tmp_path / "spec.yaml"
    path.write_text(f"model:\n  type: rnn_seq2seq\n  attention:\n    type: {attention}\n")
    return path


@pytest.mark.parametrize("name", list(net.CONFIGS))
def test_declarations_match_the_built_decoder(name):
    config = net.CONFIGS[name]
    model = net.build(config)
    decoder = model.get_layer("decoder")
    kind = decoder.attention_kind
    memory_dim = model.get_layer("encoder").output_units
    widened = net.EMBED + kind.input_width(decoder.units, memory_dim)
    assert decoder.rnn_layers[0].kernel.shape[0] == widened
    assert decoder.output_projection.kernel.shape[0] == kind.feature_width(
        decoder.units, memory_dim
    )
    graph = RNNSeq2SeqGraph(model)
    encoded = graph.encode(net.SOURCE)
    width = kind.key_width(decoder.units, memory_dim)
    assert ("keys" in encoded) is (width is not None)
    if width is not None:
        assert encoded["keys"].shape[-1] == width
    extra = kind.extra_state_names()
    assert graph.state_names[len(graph.state_names) - len(extra) :] == extra
    assert len(graph.initial_state(encoded)) == len(graph.state_names)
    assert decoder.supports_jit is kind.supports_xla
    _, attention = graph.teacher_forced(net.SOURCE, net.TARGET_IN)
    assert bool(np.any(np.asarray(attention) != 0)) is kind.attends


def test_unknown_kind_in_a_spec_is_located(tmp_path):
    with pytest.raises(kseq.KseqError) as error:
        kseq.load_spec(spec_file(tmp_path, "bahdanu"))
    message = str(error.value)
    assert "spec.yaml:4" in message and "model.attention.type" in message
    assert "did you mean 'bahdanau'" in message and "bahdanau, luong, none" in message


class MeanAttention(kinds.DecoderAttention):
    """A test kind: the plain mean of the real memory positions, taken after the step."""

    name = "mean"

    def feature_width(self, units, memory_dim):
        return units + memory_dim

    def after_step(self, decoder, top, extra, context, weights, memory, mask, keys):
        mask = ops.cast(mask, memory.dtype)  # (B, S)
        count = ops.maximum(ops.sum(mask, axis=-1, keepdims=True), 1.0)
        weights = mask / count  # (B, S)
        context = ops.sum(memory * ops.expand_dims(weights, -1), axis=1)  # (B, H)
        return ops.concatenate([top, context], axis=-1), [], weights


@pytest.fixture
def mean_kind(monkeypatch):
    monkeypatch.setitem(
        kinds.decoder_attentions._items, "mean", MeanAttention
    )  # undone after the test


def test_a_new_kind_plugs_in_through_the_registry(mean_kind, tmp_path):
    assert kseq.load_spec(spec_file(tmp_path, "mean")).model.attention.type == "mean"
    config = ("mean", "general", False, ("lstm", 5, 1, True), ("lstm", 7, 1))
    model = net.build(config)
    logits = model({"source": net.SOURCE, "target_in": net.TARGET_IN}).numpy()
    graph = RNNSeq2SeqGraph(model)
    step_logits, step_attention = net.step_by_step(graph, net.SOURCE, net.TARGET_IN)
    np.testing.assert_allclose(step_logits, logits, rtol=0, atol=1e-5)
    real = (net.SOURCE != 0).astype("float32")
    expected = real / real.sum(-1, keepdims=True)  # (B, S), the same at every step
    np.testing.assert_allclose(step_attention, np.repeat(expected[:, None], 4, 1), atol=1e-7)
