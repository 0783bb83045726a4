"""`kseq.export.selective_int8`: int8 files with named scopes kept float, on TensorFlow's
converter internals (checked on TF 2.21: this test fails first when they change)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from kseq.errors import ExportError
from kseq.export.selective_int8 import nodes_in_scopes, quantize_keeping_float
from kseq.export.tflite_inspect import op_summary


class Looped(tf.Module):
    """A dense layer, then a loop whose body scales by a float factor under `keep_me`."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(0)
        self.w = tf.Variable(rng.normal(size=(8, 8)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec((None, 8), tf.float32, name="x")])
    def serve(self, x):
        h = tf.nn.relu(tf.matmul(x, self.w))

        def body(i, h):
            with tf.name_scope("keep_me"):
                return i + 1, tf.nn.log_softmax(h) * 1.5

        _, h = tf.while_loop(lambda i, h: i < 3, body, (tf.constant(0), h))
        return {"y": h}


def converter_for(module, tmp_path):
    tf.saved_model.save(module, str(tmp_path), signatures={"serve": module.serve})
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path), signature_keys=["serve"])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(1)
    converter.representative_dataset = lambda: (
        ("serve", {"x": rng.normal(size=(4, 8)).astype(np.float32)}) for _ in range(8)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter


def test_the_scope_stays_float_inside_the_loop_and_the_rest_is_int8(tmp_path):
    assert tf.__version__.startswith("2.21"), "the internals this module uses: recheck them"
    module = Looped()
    model = quantize_keeping_float(converter_for(module, tmp_path), ["keep_me"])
    types = op_summary(model)["op_input_types"]
    assert "int8" in types["FULLY_CONNECTED"] or "int8" in types.get("BATCH_MATMUL", [])
    assert types["LOG_SOFTMAX"] == ["float32"]  # inside the WHILE body, kept float
    assert nodes_in_scopes(model, ["keep_me"])  # the names survive quantization

    # Closer to the float function than the same model all int8.
    all_int8 = converter_for(module, tmp_path / "all").convert()
    assert op_summary(all_int8)["op_input_types"]["LOG_SOFTMAX"] == ["int8"]
    x = np.random.default_rng(2).normal(size=(16, 8)).astype(np.float32)
    want = module.serve(tf.constant(x))["y"].numpy()
    errors = [
        np.abs(Interpreter(model_content=m).get_signature_runner("serve")(x=x)["y"] - want).mean()
        for m in (model, all_int8)
    ]
    assert errors[0] < errors[1] / 2, errors


def test_a_scope_the_model_lacks_is_an_export_error(tmp_path):
    with pytest.raises(ExportError, match="no op of the model is under no_such_scope"):
        quantize_keeping_float(converter_for(Looped(), tmp_path), ["no_such_scope"])
