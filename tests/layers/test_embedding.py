"""`ReversibleEmbedding`, the token table of BERT and the Transformer seq2seq: numpy values both
ways, one constant in TFLite, and `.keras` files of the layers it replaced still load."""

from __future__ import annotations

import json
import math
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from tflite_helpers import constant_shapes, convert_builtins, run_tflite

from kseq.layers.embedding import ReversibleEmbedding, TokenEmbedding

V, D = 11, 6


def _table_and_bias(layer, seed=0):
    rng = np.random.default_rng(seed)
    layer.embeddings.assign(rng.normal(size=(V, D)).astype("float32"))
    if layer.bias is not None:
        layer.bias.assign(rng.normal(size=(V,)).astype("float32"))
    bias = np.zeros(V, "float32") if layer.bias is None else layer.bias.numpy()
    return layer.embeddings.numpy(), bias


@pytest.mark.parametrize("scale, output_bias", [(False, False), (True, True)])
def test_both_directions_equal_numpy(scale, output_bias):
    layer = ReversibleEmbedding(V, D, scale=scale, output_bias=output_bias)
    ids = np.array([[3, 0, 10], [1, 1, 7]], "int32")
    layer(ids)
    table, bias = _table_and_bias(layer)
    rows = np.asarray(layer(ids))
    np.testing.assert_allclose(rows, table[ids] * (math.sqrt(D) if scale else 1.0), rtol=1e-6)
    hidden = np.random.default_rng(1).normal(size=(2, 3, D)).astype("float32")
    for states in (hidden, hidden[:, 0]):  # teacher forcing (B, T, D) and one step (B, D)
        logits = layer(states, reverse=True)
        assert logits.dtype == "float32"
        np.testing.assert_allclose(np.asarray(logits), states @ table.T + bias, atol=1e-5)


def test_reverse_logits_are_float32_under_mixed_precision():
    layer = ReversibleEmbedding(V, D, dtype="mixed_float16")
    hidden = np.ones((2, D), "float16")
    layer(np.zeros((1, 1), "int32"))
    assert layer(np.zeros((1, 1), "int32")).dtype == "float16"
    assert layer(hidden, reverse=True).dtype == "float32"


def test_the_tied_table_is_one_constant_in_tflite():
    """`transpose_b`: the gather and the projection read one (V, D) buffer; an explicit
    transpose would add a folded (D, V) copy."""
    layer = ReversibleEmbedding(V, D, output_bias=True, name="embedding")
    ids = keras.Input((None,), dtype="int32")
    model = keras.Model(ids, layer(layer(ids) * 2.0, reverse=True))
    _table_and_bias(layer)
    spec = [tf.TensorSpec((None, None), tf.int32, name="ids")]
    flatbuffer = convert_builtins({"serving_default": (lambda ids: {"y": model(ids)}, spec)}, model)
    shapes = [shape for shape, _ in constant_shapes(flatbuffer)]
    assert shapes.count((V, D)) == 1 and (D, V) not in shapes, shapes
    feed = np.array([[4, 2, 9]], "int32")
    got = run_tflite(flatbuffer, {"ids": feed})["y"]
    np.testing.assert_allclose(got, np.asarray(model(feed)), atol=1e-5)


def _rewrite_saved_layer(path, old_class: str, old_config: dict | None = None) -> None:
    """The `.keras` file as an earlier kseq wrote it: the embedding saved under `old_class`
    (and, for BERT's, a `keras.layers.Embedding` config)."""
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    for layer in config["config"]["layers"]:
        if layer["config"]["name"] == "embedding":
            layer["class_name"] = old_class
            layer["registered_name"] = f"kseq>{old_class}"
            layer["config"] = old_config or layer["config"]
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


def _saved_model(tmp_path, layer):
    ids = keras.Input((None,), dtype="int32")
    model = keras.Model(ids, layer(layer(ids), reverse=True))
    _table_and_bias(layer, seed=4)
    path = tmp_path / "model.keras"
    model.save(path)
    return model, path


def test_a_bert_run_saved_with_the_embedding_subclass_loads(tmp_path):
    model, path = _saved_model(tmp_path, ReversibleEmbedding(V, D, name="embedding"))
    # What `ReversibleEmbedding(keras.layers.Embedding)` wrote: Embedding's config, one weight.
    old = keras.layers.Embedding(V, D, embeddings_initializer="he_normal", name="embedding")
    _rewrite_saved_layer(path, "ReversibleEmbedding", old.get_config())
    loaded = keras.saving.load_model(path, safe_mode=True)
    layer = loaded.get_layer("embedding")
    assert type(layer) is ReversibleEmbedding and layer.vocab_size == V and not layer.scale
    ids = np.array([[5, 1, 0]], "int32")
    np.testing.assert_array_equal(np.asarray(loaded(ids)), np.asarray(model(ids)))


def test_a_saved_embedding_option_kseq_never_set_is_refused():
    config = keras.layers.Embedding(V, D, mask_zero=True).get_config()
    with pytest.raises(ValueError, match="mask_zero"):
        ReversibleEmbedding.from_config(config)


def test_a_transformer_run_saved_with_token_embedding_loads(tmp_path):
    """The seq2seq Transformer's runs name the layer `TokenEmbedding` (config and weights)."""
    model, path = _saved_model(tmp_path, TokenEmbedding(V, D, scale=True, output_bias=True))
    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    assert config["config"]["layers"][1]["registered_name"] == "kseq>TokenEmbedding"
    loaded = keras.saving.load_model(path, safe_mode=True)
    layer = loaded.layers[1]
    assert isinstance(layer, TokenEmbedding) and layer.scale and layer.output_bias
    ids = np.array([[5, 1, 0]], "int32")
    np.testing.assert_array_equal(np.asarray(loaded(ids)), np.asarray(model(ids)))
