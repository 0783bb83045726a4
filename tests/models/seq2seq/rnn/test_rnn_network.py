"""The RNN encoder-decoder: teacher forcing == step-by-step decoding, masking, numpy parity, saving.

Every dimension differs (embedding 6, encoder units 5, decoder units 7, attention 4, source
vocabulary 11, target vocabulary 13, source length 5, target length 4, batch 3) so a transposed
weight or a wrong axis cannot pass by accident.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from kseq.decoding import greedy
from kseq.models.seq2seq.rnn.graph import RNNSeq2SeqGraph
from kseq.models.seq2seq.rnn.layers import RNNDecoder, RNNEncoder
from kseq.models.seq2seq.rnn.network import build_rnn_seq2seq
from kseq.models.seq2seq.rnn.spec import (
    AttentionSpec,
    RNNDecoderSpec,
    RNNEncoderSpec,
    RNNSeq2SeqSpec,
)

SOURCE_VOCAB, TARGET_VOCAB, EMBED = 11, 13, 6

# name -> (attention, score, input_feeding,
#          (encoder cell, units, layers, bidirectional), (decoder cell, units, layers))
CONFIGS = {
    "none-lstm-bi-2x2": ("none", "general", False, ("lstm", 5, 2, True), ("lstm", 7, 2)),
    "none-gru-identity-bridge": ("none", "general", False, ("gru", 7, 1, False), ("gru", 7, 1)),
    "bahdanau-lstm-bi-2x2": ("bahdanau", "general", False, ("lstm", 5, 2, True), ("lstm", 7, 2)),
    "bahdanau-gru-to-lstm": ("bahdanau", "general", False, ("gru", 5, 1, False), ("lstm", 7, 2)),
    "luong-dot-feeding": ("luong", "dot", True, ("lstm", 4, 2, True), ("lstm", 8, 2)),
    "luong-dot-no-feeding": ("luong", "dot", False, ("gru", 7, 1, False), ("gru", 7, 1)),
    "luong-general-feeding-2x2": ("luong", "general", True, ("lstm", 5, 2, True), ("lstm", 7, 2)),
    "luong-general-no-feeding-gru": ("luong", "general", False, ("gru", 5, 2, True), ("gru", 7, 2)),
    "luong-concat-feeding": ("luong", "concat", True, ("lstm", 5, 1, False), ("lstm", 7, 1)),
    "luong-concat-no-feeding-lstm-to-gru": (
        "luong",
        "concat",
        False,
        ("lstm", 5, 1, True),
        ("gru", 7, 2),
    ),
}

SOURCE = np.array([[4, 5, 6, 7, 8], [9, 4, 10, 0, 0], [5, 0, 0, 0, 0]], "int32")  # (3, 5)
TARGET_IN = np.array([[2, 6, 7, 8], [2, 11, 0, 0], [2, 12, 4, 0]], "int32")  # (3, 4)


def make_spec(config, dropout=0.0, shared=False):
    attention, score, feeding, (ecell, eunits, elayers, bidi), (dcell, dunits, dlayers) = config
    return RNNSeq2SeqSpec(
        embedding_dim=EMBED,
        shared_embeddings=shared,
        encoder=RNNEncoderSpec(
            cell=ecell, units=eunits, layers=elayers, bidirectional=bidi, dropout=dropout
        ),
        decoder=RNNDecoderSpec(cell=dcell, units=dunits, layers=dlayers, dropout=dropout),
        attention=AttentionSpec(type=attention, score=score, units=4, input_feeding=feeding),
    )


def build(config, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    return build_rnn_seq2seq(make_spec(config, **kwargs), SOURCE_VOCAB, TARGET_VOCAB)


@pytest.fixture(scope="module", params=list(CONFIGS))
def built(request):
    config = CONFIGS[request.param]
    model = build(config)
    return config, model, RNNSeq2SeqGraph(model)


def step_by_step(graph, source, target_in):
    """Logits (B, T, V) and attention (B, T, S) from `graph.step`, one target position at a time."""
    encoded = graph.encode(source)
    state = graph.initial_state(encoded)
    logits, attention = [], []
    for t in range(target_in.shape[1]):
        step_logits, state, weights = graph.step(tf.constant(target_in[:, t]), state, encoded)
        logits.append(step_logits.numpy())
        attention.append(weights.numpy())
    return np.stack(logits, 1), np.stack(attention, 1)


def test_model_interface(built):
    _, model, _ = built
    assert [i.name for i in model.inputs] == ["source", "target_in"]
    names = {layer.name for layer in model.layers}
    assert {"source_embedding", "target_embedding", "encoder", "decoder"} <= names
    assert model.get_layer("source_embedding").mask_zero
    logits = model({"source": SOURCE, "target_in": TARGET_IN})
    assert logits.shape == (3, 4, TARGET_VOCAB)
    assert logits.dtype == "float32"


def test_teacher_forcing_matches_step_by_step(built):
    config, model, graph = built
    logits = model({"source": SOURCE, "target_in": TARGET_IN}).numpy()
    step_logits, step_attention = step_by_step(graph, SOURCE, TARGET_IN)
    np.testing.assert_allclose(step_logits, logits, rtol=0, atol=1e-5)

    forced_logits, forced_attention = graph.teacher_forced(SOURCE, TARGET_IN)
    np.testing.assert_allclose(forced_logits.numpy(), logits, rtol=0, atol=1e-6)
    np.testing.assert_allclose(forced_attention.numpy(), step_attention, rtol=0, atol=1e-6)

    padded = np.broadcast_to((SOURCE == 0)[:, None, :], step_attention.shape)
    for attention in (step_attention, forced_attention.numpy()):
        assert np.all(attention[padded] == 0.0)  # exactly zero, not just small
        if config[0] == "none":
            assert np.all(attention == 0.0)
        else:
            np.testing.assert_allclose(attention.sum(-1), 1.0, rtol=0, atol=1e-6)


def test_padding_invariance(built):
    _, model, graph = built
    extra = np.pad(SOURCE, [(0, 0), (0, 3)])  # 3 more padding columns
    logits = model({"source": SOURCE, "target_in": TARGET_IN}).numpy()
    padded_logits = model({"source": extra, "target_in": TARGET_IN}).numpy()
    np.testing.assert_allclose(padded_logits, logits, rtol=0, atol=1e-6)

    short = greedy(graph, SOURCE, max_length=6)
    long = greedy(graph, extra, max_length=6)
    np.testing.assert_array_equal(long["target_ids"], short["target_ids"])
    np.testing.assert_allclose(long["attention"][..., :5], short["attention"], rtol=0, atol=1e-6)
    assert np.all(long["attention"].numpy()[..., 5:] == 0.0)

    # A row decodes the same alone as in a batch with longer rows.
    alone = greedy(graph, SOURCE[2:, :2], max_length=6)["target_ids"]
    np.testing.assert_array_equal(alone, short["target_ids"][2:])


def test_empty_source_row(built):
    # An all-padding source (an empty line) gives finite logits and all-zero attention.
    _, _, graph = built
    source = SOURCE.copy()
    source[1] = 0
    logits, attention = graph.teacher_forced(source, TARGET_IN)
    assert np.all(np.isfinite(logits.numpy()))
    assert np.all(attention.numpy()[1] == 0.0)
    result = greedy(graph, source, max_length=4)
    assert np.all(result["attention"].numpy()[1] == 0.0)


def test_config_round_trip(built):
    _, model, _ = built
    for name in ("encoder", "decoder"):
        layer = model.get_layer(name)
        config = layer.get_config()
        clone = layer.__class__.from_config(config)
        assert clone.get_config() == config
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    inputs = {"source": SOURCE, "target_in": TARGET_IN}
    np.testing.assert_array_equal(clone(inputs).numpy(), model(inputs).numpy())


@pytest.mark.parametrize("name", ["bahdanau-lstm-bi-2x2", "luong-general-feeding-2x2"])
def test_keras_save_load(tmp_path, name):
    model = build(CONFIGS[name], seed=3)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    inputs = {"source": SOURCE, "target_in": TARGET_IN}
    np.testing.assert_array_equal(loaded(inputs).numpy(), model(inputs).numpy())
    ids = greedy(RNNSeq2SeqGraph(model), SOURCE, 5)["target_ids"]
    np.testing.assert_array_equal(greedy(RNNSeq2SeqGraph(loaded), SOURCE, 5)["target_ids"], ids)


def test_shared_embeddings():
    keras.utils.set_random_seed(0)
    spec = make_spec(CONFIGS["bahdanau-gru-to-lstm"], shared=True)
    model = build_rnn_seq2seq(spec, TARGET_VOCAB, TARGET_VOCAB)
    names = [layer.name for layer in model.layers]
    assert "source_embedding" in names and "target_embedding" not in names
    graph = RNNSeq2SeqGraph(model)
    assert graph.target_embedding is graph.source_embedding
    logits = model({"source": SOURCE, "target_in": TARGET_IN}).numpy()
    np.testing.assert_allclose(step_by_step(graph, SOURCE, TARGET_IN)[0], logits, atol=1e-5)
    with pytest.raises(ValueError, match="shared_embeddings"):
        build_rnn_seq2seq(spec, SOURCE_VOCAB, TARGET_VOCAB)


def test_bridge():
    # Same cell, units and direction: the decoder starts from the encoder's final states.
    model = build(CONFIGS["none-gru-identity-bridge"])
    encoder = model.get_layer("encoder")
    assert not encoder.projects and not encoder.bridge_layers
    embedded = model.get_layer("source_embedding")(SOURCE)
    memory, states = encoder(embedded, mask=SOURCE != 0)
    lengths = (SOURCE != 0).sum(1)
    last = memory.numpy()[np.arange(3), lengths - 1]  # top output at each row's last token
    np.testing.assert_allclose(states[0].numpy(), last, rtol=0, atol=1e-7)
    assert np.all(memory.numpy()[SOURCE == 0] == 0.0)

    # Bidirectional GRU encoder (2 layers) into a 2-layer LSTM decoder: projected h and c.
    model = build(CONFIGS["luong-general-no-feeding-gru"])
    encoder = model.get_layer("encoder")
    assert encoder.projects
    assert [d.name for d in encoder.bridge_layers] == ["bridge_0_h", "bridge_1_h"]
    model = build(CONFIGS["luong-concat-no-feeding-lstm-to-gru"])  # 1 encoder layer, 2 decoder
    _, states = model.get_layer("encoder")(model.get_layer("source_embedding")(SOURCE))
    assert len(states) == 2 and all(s.shape == (3, 7) for s in states)


def test_training_with_dropout():
    model = build(CONFIGS["luong-general-feeding-2x2"], dropout=0.3)
    inputs = {"source": SOURCE, "target_in": TARGET_IN}
    inference = model(inputs).numpy()
    np.testing.assert_array_equal(model(inputs, training=False).numpy(), inference)
    assert not np.allclose(model(inputs, training=True).numpy(), inference)

    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    targets = np.roll(TARGET_IN, -1, axis=1)
    history = model.fit(inputs, targets, batch_size=3, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    changed = [not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True)]
    assert sum(changed) >= len(changed) - 1  # every weight gets a gradient (seed state aside)


@pytest.mark.parametrize(
    "name,jit",
    [("bahdanau-gru-to-lstm", False), ("luong-concat-feeding", False), ("luong-dot-feeding", True)],
)
def test_xla_support_declared(name, jit):
    # Additive scores inside the while loop have a gradient XLA cannot compile: Keras must
    # fall back to jit_compile=False instead of failing on a GPU (where "auto" means XLA).
    model = build(CONFIGS[name])
    assert model.get_layer("decoder").supports_jit is jit
    if not jit:
        with pytest.warns(UserWarning, match="jit_compile"):
            model.compile(optimizer="adam", loss="mse", jit_compile=True)
        assert model.jit_compile is False


def test_invalid_arguments():
    with pytest.raises(ValueError, match="attention"):
        RNNDecoder(10, attention="multihead")
    with pytest.raises(ValueError, match="units"):
        RNNDecoder(10, units=0)
    with pytest.raises(ValueError, match="decoder_cell"):
        RNNEncoder(decoder_cell="rnn")
    with pytest.raises(ValueError, match="dropout"):
        RNNEncoder(dropout=1.0)


# -- numpy reference of one decoder step ----------------------------------------------------------


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax_masked(scores, mask):
    scores = np.where(mask, scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    return weights / weights.sum(-1, keepdims=True)


def _lstm_cell(layer, x, h, c):
    kernel, recurrent, bias = (w.numpy() for w in layer.weights)
    z = x @ kernel + h @ recurrent + bias
    zi, zf, zc, zo = np.split(z, 4, axis=-1)
    c = _sigmoid(zf) * c + _sigmoid(zi) * np.tanh(zc)
    h = _sigmoid(zo) * np.tanh(c)
    return h, c


def _numpy_step(decoder, embedded, state, memory, mask):
    """One step of a stacked LSTM decoder with bahdanau or luong-general attention."""
    layers = decoder.rnn_layers
    rnn, extra = state[: 2 * len(layers)], state[2 * len(layers) :]
    attention = decoder.attention_layer
    if decoder.attention == "bahdanau":
        w1, w2, v = (
            attention.key_dense.kernel,
            attention.query_dense.kernel,
            attention.score_dense,
        )
        query = rnn[-2] @ w2.numpy()  # s_{t-1} (B, A)
        keys = memory @ w1.numpy()  # (B, S, A)
        scores = (np.tanh(keys + query[:, None, :]) @ v.kernel.numpy())[..., 0]  # (B, S)
        weights = _softmax_masked(scores, mask)
        context = np.einsum("bs,bsh->bh", weights, memory)
        x = np.concatenate([embedded, context], -1)
    else:
        x = np.concatenate([embedded, extra[0]], -1) if extra else embedded
    new_state = []
    for index, layer in enumerate(layers):
        x, c = _lstm_cell(layer, x, rnn[2 * index], rnn[2 * index + 1])
        new_state += [x, c]
    if decoder.attention == "bahdanau":
        features = np.concatenate([x, context], -1)
    else:
        keys = memory @ attention.key_dense.kernel.numpy()  # W h_i (B, S, U)
        weights = _softmax_masked(np.einsum("bu,bsu->bs", x, keys), mask)
        context = np.einsum("bs,bsh->bh", weights, memory)
        w_c = decoder.attentional_state.combine_dense.kernel.numpy()  # (H + U, U)
        features = np.tanh(np.concatenate([context, x], -1) @ w_c)
        new_state.append(features)
    projection = decoder.output_projection
    logits = features @ projection.kernel.numpy() + projection.bias.numpy()
    return logits, new_state, weights


@pytest.mark.parametrize("name", ["bahdanau-lstm-bi-2x2", "luong-general-feeding-2x2"])
def test_step_matches_numpy_reference(name):
    model = build(CONFIGS[name], seed=5)
    graph = RNNSeq2SeqGraph(model)
    decoder = graph.decoder
    encoded = graph.encode(SOURCE)
    state = graph.initial_state(encoded)
    # Move away from the initial state first (h̃ is zero before the first step).
    _, state, _ = graph.step(tf.constant([2, 2, 2]), state, encoded)
    tokens = np.array([6, 11, 4], "int32")
    logits, new_state, weights = graph.step(tf.constant(tokens), state, encoded)

    embedded = model.get_layer("target_embedding").embeddings.numpy()[tokens]
    ref_logits, ref_state, ref_weights = _numpy_step(
        decoder,
        embedded,
        [state[n].numpy() for n in graph.state_names],
        encoded["memory"].numpy(),
        SOURCE != 0,
    )
    np.testing.assert_allclose(logits.numpy(), ref_logits, rtol=0, atol=1e-5)
    np.testing.assert_allclose(weights.numpy(), ref_weights, rtol=0, atol=1e-6)
    for name_, ref in zip(graph.state_names, ref_state, strict=True):
        np.testing.assert_allclose(new_state[name_].numpy(), ref, rtol=0, atol=1e-5, err_msg=name_)
