"""`.keras` save/load of a model built from the recurrent and attention layers (configs:
`test_layer_configs.py`)."""

import keras
import numpy as np

from kseq.layers.rnn import ExportableBidirectional, ExportableGRU, ExportableLSTM
from kseq.models.seq2seq.rnn.attention import (
    BahdanauAttention,
    LuongAttention,
    LuongAttentionalState,
)


def _model():
    keras.utils.set_random_seed(1)
    source = keras.Input((None,), dtype="int32", name="source")
    target = keras.Input((None,), dtype="int32", name="target")
    embedding = keras.layers.Embedding(11, 5, mask_zero=True)
    encoded, h_f, c_f, h_b, c_b = ExportableBidirectional(3, return_state=True)(embedding(source))
    h = keras.layers.Concatenate()([h_f, h_b])  # (B, 6)
    c = keras.layers.Concatenate()([c_f, c_b])
    decoded, _ = ExportableGRU(6, return_sequences=True, return_state=True)(
        embedding(target), initial_state=h
    )
    decoded = ExportableLSTM(6, return_sequences=True)(decoded, initial_state=[h, c])
    context, weights = LuongAttention("general")(decoded, encoded)
    bahdanau_context, _ = BahdanauAttention(4)(h, encoded)
    attentional = LuongAttentionalState(5)(context, decoded)
    return keras.Model(
        {"source": source, "target": target},
        {"attentional": attentional, "weights": weights, "bahdanau": bahdanau_context},
    )


def test_keras_file_round_trip(tmp_path):
    model = _model()
    rng = np.random.default_rng(0)
    inputs = {
        "source": np.array([[1, 2, 3, 0], [4, 5, 6, 7], [8, 0, 0, 0]], "int32"),
        "target": rng.integers(1, 11, size=(3, 5)).astype("int32"),
    }
    expected = model(inputs)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    actual = restored(inputs)
    for key in expected:
        np.testing.assert_array_equal(
            np.asarray(actual[key]), np.asarray(expected[key]), err_msg=key
        )
    assert [w.path for w in restored.weights] == [w.path for w in model.weights]
