"""Builtin-only TFLite conversion and interpreter runs for layer tests.

Self-contained on purpose (the project exporter lives elsewhere): an `ExportArchive` with one
endpoint is written as a SavedModel, converted with builtin ops only (a non-builtin op fails
the conversion instead of pulling in Flex), and run on the plain LiteRT interpreter, which has
no Flex delegate.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile

import keras
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter


def convert_builtins(endpoints, variables, int8_calibration=None):
    """Converts TF-traceable endpoints to one TFLite flatbuffer with builtin ops only.

    Args:
        endpoints: dict signature name -> `(fn, input_signature)`; `fn` takes the inputs as
            keyword tensors named like the `tf.TensorSpec`s and returns a dict of tensors.
        variables: Keras model/layer whose variables the endpoints read (tracked by the
            archive).
        int8_calibration: optional dict signature name -> list of input dicts; quantizes
            the model to int8 (int8 builtins only, float inputs and outputs).

    Returns:
        The `.tflite` model as bytes.
    """
    archive = keras.export.ExportArchive()
    archive.track(variables)
    for name, (fn, input_signature) in endpoints.items():
        archive.add_endpoint(name, fn, input_signature=input_signature)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "saved_model")
        archive.write_out(path, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(path, signature_keys=list(endpoints))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if int8_calibration is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: (
                (name, batch) for name, batches in int8_calibration.items() for batch in batches
            )
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter.convert()


def run_tflite(model_bytes, inputs, name="serving_default"):
    """Runs one signature of a TFLite model on the plain interpreter.

    Args:
        model_bytes: flatbuffer from `convert_builtins`.
        inputs: dict name -> numpy array (shapes may differ between calls: the runner resizes).

    Returns:
        dict name -> numpy array.
    """
    interpreter = Interpreter(model_content=model_bytes)
    runner = interpreter.get_signature_runner(name)
    return runner(**inputs)


def op_names(model_bytes):
    """Names of the operators in all subgraphs of a TFLite model (while bodies included)."""
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        tf.lite.experimental.Analyzer.analyze(model_content=model_bytes)
    # Lines look like "  Op#3 FULLY_CONNECTED(T#1, T#2) -> [T#5]".
    return set(re.findall(r"Op#\d+ (\w+)\(", report.getvalue()))


def constant_shapes(model_bytes):
    """`(shape, type name)` of every constant buffer of a TFLite model, once per buffer."""
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0))
    names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    seen = {}
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            if model.buffers[tensor.buffer].data is not None and tensor.shape is not None:
                shape = tuple(int(n) for n in np.asarray(tensor.shape))
                seen.setdefault(tensor.buffer, (shape, names[tensor.type]))
    return list(seen.values())


def gather_param_ranks(model_bytes):
    """Rank of the params tensor of every GATHER in a TFLite model, all subgraphs."""
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0))
    gather = {
        i
        for i, code in enumerate(model.operatorCodes)
        if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.GATHER
    }
    return [
        len(np.asarray(subgraph.tensors[op.inputs[0]].shape))
        for subgraph in model.subgraphs
        for op in subgraph.operators
        if op.opcodeIndex in gather
    ]
