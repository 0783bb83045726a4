"""LayerNormalization without NEG: Keras's values, and an int8 file that keeps it in int8."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tflite_helpers import convert_builtins, op_names, run_tflite

from kseq.export.tflite_inspect import op_summary
from kseq.layers.layer_norm import LayerNormalization


def numpy_layer_norm(x, gamma, beta, epsilon, axes=(-1,)):
    mean = x.mean(axis=axes, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


@pytest.mark.parametrize("epsilon", [1e-12, 1e-3])
def test_matches_numpy_and_keras(epsilon):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(2, 5, 8)) * 3 + 1).astype("float32")
    ours = LayerNormalization(epsilon=epsilon)
    reference = keras.layers.LayerNormalization(epsilon=epsilon)
    ours.build(x.shape)
    reference.build(x.shape)
    weights = [rng.normal(size=8).astype("float32"), rng.normal(size=8).astype("float32")]
    ours.set_weights(weights)
    reference.set_weights(weights)
    want = numpy_layer_norm(x.astype("float64"), *weights, epsilon)
    np.testing.assert_allclose(np.asarray(ours(x)), want, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(reference(x)), atol=1e-5)


def test_other_axes_no_scale_or_center_and_mixed_precision():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    layer = LayerNormalization(axis=1, center=False)
    layer.build(x.shape)
    gamma = rng.normal(size=3).astype("float32")
    layer.set_weights([gamma])
    want = numpy_layer_norm(x, gamma[None, :, None], 0.0, layer.epsilon, axes=(1,))
    np.testing.assert_allclose(np.asarray(layer(x)), want, atol=1e-5)
    half = LayerNormalization(dtype="mixed_float16")
    out = half(x)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    np.testing.assert_allclose(
        np.asarray(out, np.float32), numpy_layer_norm(x, 1, 0, 1e-3), atol=2e-3
    )


def test_serializes_with_its_config():
    layer = LayerNormalization(epsilon=1e-6, name="norm")
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(copy) is LayerNormalization and copy.epsilon == 1e-6


def float_ops(flatbuffer):
    """Ops with a float32 input, QUANTIZE (the float input's own edge) aside."""
    types = op_summary(flatbuffer)["op_input_types"]
    return {op for op, kinds in types.items() if "float32" in kinds and op != "QUANTIZE"}


def normalize_with(layer):
    return lambda x: {"y": layer(x)}


def test_int8_file_keeps_layer_norm_in_int8():
    """Keras's form leaves a float NEG island in an int8 file; this one is int8 kernels only
    from the input's QUANTIZE to the output's DEQUANTIZE, and close to Keras."""
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(16, 6, 8)) * 2).astype("float32")
    signature = [tf.TensorSpec((None, 6, 8), tf.float32, name="x")]
    floats = {}
    for layer in (LayerNormalization(), keras.layers.LayerNormalization()):
        layer.build(x.shape)
        layer.set_weights([np.linspace(0.5, 1.5, 8, dtype="float32"), np.full(8, 0.1, "float32")])
        fn = tf.function(normalize_with(layer))
        flatbuffer = convert_builtins(
            {"norm": (fn, signature)}, layer, int8_calibration={"norm": [{"x": x}]}
        )
        floats[type(layer)] = float_ops(flatbuffer)
        if type(layer) is LayerNormalization:
            assert "NEG" not in op_names(flatbuffer)
            got = run_tflite(flatbuffer, {"x": x}, "norm")["y"]
            np.testing.assert_allclose(got, np.asarray(layer(x)), atol=0.1)
    assert floats[LayerNormalization] == set()
    assert "NEG" in floats[keras.layers.LayerNormalization]  # what this layer avoids


def test_training_runs_exactly_keras_computation():
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(4, 8)) * 3).astype("float32")
    ours, reference = LayerNormalization(), keras.layers.LayerNormalization()
    for layer in (ours, reference):
        layer.build(x.shape)
        layer.set_weights([np.linspace(0.5, 1.5, 8, dtype="float32"), np.full(8, 0.1, "float32")])
    np.testing.assert_array_equal(
        np.asarray(ours(x, training=True)), np.asarray(reference(x, training=True))
    )
