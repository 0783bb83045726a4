"""ExportableLSTM / ExportableGRU / ExportableBidirectional against the Keras layers."""

import keras
import numpy as np
import pytest

from kseq.layers.rnn import ExportableBidirectional, ExportableGRU, ExportableLSTM

# A different size for every dimension, so a transposed axis cannot go unnoticed.
B, T, D, U = 3, 7, 5, 4
LENGTHS = np.array([7, 3, 1])


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, T, D)).astype("float32")
    mask = np.arange(T)[None, :] < LENGTHS[:, None]  # (B, T), right padding
    return x, mask


def _states(n, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(B, U)).astype("float32") for _ in range(n)]


def _randomize(layer, seed=2):
    """Non-default weights (incl. biases) so every weight takes part in the comparison."""
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.get_weights()]
    )


def _pair(kind, **kwargs):
    """A Keras layer and its exportable twin holding the same weights."""
    keras_cls, our_cls = {
        "lstm": (keras.layers.LSTM, ExportableLSTM),
        "gru": (keras.layers.GRU, ExportableGRU),
    }[kind]
    reference = keras_cls(U, use_cudnn=False, **kwargs)  # same kernel on GPU machines
    ours = our_cls(U, **kwargs)
    x, _ = _inputs()
    reference(x)
    ours(x)
    _randomize(reference)
    ours.set_weights(reference.get_weights())
    return reference, ours


def _assert_all_close(actual, expected, atol=1e-5):
    actual = actual if isinstance(actual, list | tuple) else [actual]
    expected = expected if isinstance(expected, list | tuple) else [expected]
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=0, atol=atol)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_matches_keras(kind, masked, go_backwards, return_sequences):
    reference, ours = _pair(
        kind, return_sequences=return_sequences, return_state=True, go_backwards=go_backwards
    )
    x, mask = _inputs()
    mask = mask if masked else None
    _assert_all_close(ours(x, mask=mask), reference(x, mask=mask))


@pytest.mark.parametrize("kind,n_states", [("lstm", 2), ("gru", 1)])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_matches_keras_with_initial_state(kind, n_states, go_backwards):
    reference, ours = _pair(
        kind, return_sequences=True, return_state=True, go_backwards=go_backwards
    )
    x, mask = _inputs()
    states = _states(n_states)
    # Keras repeats the previous *output* at padded steps, zero before the first real one;
    # with a non-zero initial state and leading padding (the backward pass) that differs from h.
    _assert_all_close(
        ours(x, initial_state=states, mask=mask), reference(x, initial_state=states, mask=mask)
    )


def test_gru_reset_before_matches_keras():
    reference, ours = _pair("gru", reset_after=False, return_sequences=True, return_state=True)
    x, mask = _inputs()
    assert ours.bias.shape == (3 * U,)
    _assert_all_close(ours(x, mask=mask), reference(x, mask=mask))


def test_zero_output_for_mask_matches_keras():
    reference, ours = _pair("lstm", return_sequences=True, zero_output_for_mask=True)
    x, mask = _inputs()
    out = ours(x, mask=mask)
    _assert_all_close(out, reference(x, mask=mask))
    assert np.all(np.asarray(out)[~mask] == 0.0)


def test_padded_steps_repeat_carried_state():
    _, ours = _pair("lstm", return_sequences=True, return_state=True)
    x, mask = _inputs()
    outputs, h, _ = (np.asarray(t) for t in ours(x, mask=mask))
    for row, length in enumerate(LENGTHS):
        np.testing.assert_array_equal(
            outputs[row, length:], np.broadcast_to(h[row], (T - length, U))
        )


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_matches_keras(kind, return_sequences):
    keras_cls = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[kind]
    reference = keras.layers.Bidirectional(
        keras_cls(U, return_sequences=return_sequences, return_state=True, use_cudnn=False)
    )
    ours = ExportableBidirectional(
        U, rnn_type=kind, return_sequences=return_sequences, return_state=True
    )
    x, mask = _inputs()
    reference(x)
    ours(x)
    _randomize(reference)
    ours.set_weights(reference.get_weights())
    _assert_all_close(ours(x, mask=mask), reference(x, mask=mask))
    _assert_all_close(ours(x), reference(x))
    n = 2 if kind == "lstm" else 1
    states = _states(2 * n)
    _assert_all_close(
        ours(x, initial_state=states, mask=mask), reference(x, initial_state=states, mask=mask)
    )


@pytest.mark.parametrize("merge_mode", ["sum", "ave", "mul"])
def test_bidirectional_merge_modes_match_keras(merge_mode):
    reference = keras.layers.Bidirectional(
        keras.layers.GRU(U, return_sequences=True, use_cudnn=False), merge_mode=merge_mode
    )
    ours = ExportableBidirectional(U, rnn_type="gru", merge_mode=merge_mode)
    x, mask = _inputs()
    reference(x)
    ours(x)
    ours.set_weights(reference.get_weights())
    _assert_all_close(ours(x, mask=mask), reference(x, mask=mask))


def _pad(x, extra, seed):
    """Right-pads (B, T, D) with `extra` steps of garbage, which the mask must hide."""
    garbage = np.random.default_rng(seed).normal(size=(x.shape[0], extra, x.shape[2])) * 10
    return np.concatenate([x, garbage.astype("float32")], axis=1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ExportableLSTM(U, return_sequences=True, return_state=True),
        lambda: ExportableGRU(U, return_sequences=True, return_state=True),
        lambda: ExportableLSTM(U, return_sequences=True, return_state=True, go_backwards=True),
        lambda: ExportableBidirectional(U, rnn_type="lstm", return_state=True),
        lambda: ExportableBidirectional(U, rnn_type="gru", return_state=True),
    ],
    ids=["lstm", "gru", "lstm_backward", "bi_lstm", "bi_gru"],
)
def test_padding_invariance(make):
    layer = make()
    x, mask = _inputs()
    results = []
    for extra in (0, 2, 5):
        padded = _pad(x, extra, seed=extra)
        padded_mask = np.pad(mask, [(0, 0), (0, extra)])
        outputs, *states = (np.asarray(t) for t in layer(padded, mask=padded_mask))
        if getattr(layer, "go_backwards", False):
            outputs = outputs[:, ::-1]  # processing order -> time order
        results.append((outputs, states))
    base_outputs, base_states = results[0]
    for outputs, states in results[1:]:
        for row, length in enumerate(LENGTHS):
            np.testing.assert_allclose(
                outputs[row, :length], base_outputs[row, :length], rtol=0, atol=1e-6
            )
        for s, base in zip(states, base_states, strict=True):
            np.testing.assert_allclose(s, base, rtol=0, atol=1e-6)


def test_backward_pass_starts_at_last_real_token():
    """The backward final state equals a backward pass over the unpadded sequence."""
    layer = ExportableLSTM(U, return_state=True, go_backwards=True)
    x, mask = _inputs()
    _, h, c = layer(x, mask=mask)
    for row, length in enumerate(LENGTHS):
        _, h_row, c_row = layer(x[row : row + 1, :length])
        np.testing.assert_allclose(h[row], h_row[0], rtol=0, atol=1e-6)
        np.testing.assert_allclose(c[row], c_row[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_step_matches_full_sequence(kind):
    _, ours = _pair(kind, return_sequences=True, return_state=True)
    x, mask = _inputs()
    expected_outputs, *expected_states = ours(x, mask=mask)
    states = ours.get_initial_state(B)
    outputs = []
    for t in range(T):
        output, states = ours.step(x[:, t], states, mask=mask[:, t])
        outputs.append(np.asarray(output))
    _assert_all_close(states, expected_states, atol=1e-6)
    # The step API returns the carried h at padded steps, as the full layer does.
    _assert_all_close(np.stack(outputs, 1), expected_outputs, atol=1e-6)


def test_embedding_mask_is_used_and_propagated():
    tokens = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(11, D, mask_zero=True)(tokens)
    lstm = ExportableLSTM(U, return_sequences=True, return_state=True)
    outputs, h, c = lstm(embedded)
    assert outputs._keras_mask is not None
    model = keras.Model(tokens, [outputs, h, c])
    ids = np.array([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5]], dtype="int32")
    vectors = model.layers[1](ids)
    _assert_all_close(model(ids), lstm(vectors, mask=ids != 0), atol=0)
    assert lstm.compute_mask(vectors, ids != 0)[1:] == [None, None]
    assert ExportableLSTM(U).compute_mask(vectors, ids != 0) is None


def test_embedding_mask_is_used_with_initial_state():
    """Keras' own LSTM drops the upstream mask when `initial_state` is passed; ours keeps it."""
    tokens = keras.Input((None,), dtype="int32")
    h0, c0 = keras.Input((U,)), keras.Input((U,))
    embedding = keras.layers.Embedding(11, D, mask_zero=True)
    lstm = ExportableLSTM(U, return_state=True)
    model = keras.Model([tokens, h0, c0], lstm(embedding(tokens), initial_state=[h0, c0]))
    ids = np.array([[3, 4, 0, 0], [1, 2, 3, 4]], dtype="int32")
    states = [s[:2] for s in _states(2)]
    expected = lstm(embedding(ids), initial_state=states, mask=ids != 0)
    _assert_all_close(model([ids, *states]), expected, atol=0)


def test_dropout_only_in_training_and_gradients_flow():
    import tensorflow as tf

    layer = ExportableBidirectional(U, rnn_type="lstm", dropout=0.5, recurrent_dropout=0.5, seed=3)
    x, mask = _inputs()
    inference = np.asarray(layer(x, mask=mask))
    np.testing.assert_array_equal(np.asarray(layer(x, mask=mask, training=False)), inference)
    with tf.GradientTape() as tape:
        trained = layer(x, mask=mask, training=True)
        loss = tf.reduce_sum(trained**2)
    assert not np.allclose(np.asarray(trained), inference)
    grads = tape.gradient(loss, layer.trainable_variables)
    assert all(g is not None and np.any(np.asarray(g) != 0) for g in grads)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="units"):
        ExportableLSTM(0)
    with pytest.raises(ValueError, match="dropout"):
        ExportableGRU(U, dropout=1.0)
    with pytest.raises(ValueError, match="rnn_type"):
        ExportableBidirectional(U, rnn_type="rnn")
    with pytest.raises(ValueError, match="merge_mode"):
        ExportableBidirectional(U, merge_mode="max")
    x, _ = _inputs()
    with pytest.raises(ValueError, match="built"):
        ExportableLSTM(U).step(x[:, 0], _states(2))
    with pytest.raises(ValueError, match="initial state"):
        ExportableLSTM(U)(x, initial_state=_states(1))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_unrolled_steps_match_keras_and_trace_no_loop(kind, go_backwards, return_sequences):
    """`--static` traces the recurrence step by step: Keras's numbers, and no While op."""
    import tensorflow as tf

    from kseq.layers.rnn import unrolled_time_loops

    reference, ours = _pair(
        kind, return_sequences=return_sequences, return_state=True, go_backwards=go_backwards
    )
    x, mask = _inputs()
    with unrolled_time_loops():
        _assert_all_close(ours(x, mask=mask), reference(x, mask=mask))
        traced = tf.function(lambda v, m: ours(v, mask=m)).get_concrete_function(
            tf.TensorSpec((B, T, D)), tf.TensorSpec((B, T), tf.bool)
        )
    assert "While" not in {op.type for op in traced.graph.get_operations()}
    looped = tf.function(lambda v, m: ours(v, mask=m)).get_concrete_function(
        tf.TensorSpec((B, T, D)), tf.TensorSpec((B, T), tf.bool)
    )
    assert "While" in {op.type for op in looped.graph.get_operations()}  # the default path


def test_unrolled_bidirectional_matches_keras():
    from kseq.layers.rnn import unrolled_time_loops

    reference = keras.layers.Bidirectional(
        keras.layers.LSTM(U, return_sequences=True, return_state=True, use_cudnn=False)
    )
    ours = ExportableBidirectional(U, rnn_type="lstm", return_sequences=True, return_state=True)
    x, mask = _inputs()
    reference(x)
    ours(x)
    _randomize(reference)
    ours.set_weights(reference.get_weights())
    with unrolled_time_loops():
        _assert_all_close(ours(x, mask=mask), reference(x, mask=mask))
