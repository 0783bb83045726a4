"""int8 files with chosen ops kept in float: calibrate, then quantize with those ops denylisted.

This is what `tf.lite.experimental.QuantizationDebugger(...).get_nondebug_quantized_model()`
does with `QuantizationDebugOptions(denylisted_nodes=...)`, without the debugger's instrumented
model, which it builds and loads on construction. It takes two TensorFlow internals, checked on
TF 2.21 (`tests/export/test_selective_int8.py`): the converter's calibrate-only flag and
`tensorflow.lite.python.convert.mlir_quantize`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kseq.errors import ExportError

__all__ = ["nodes_in_scopes", "quantize_keeping_float"]


def nodes_in_scopes(model: bytes, scopes: Sequence[str]) -> list[str]:
    """Names of the tensors (the ops that make them) under any of the TF name `scopes`, in every
    subgraph of a .tflite flatbuffer (a WHILE body included)."""
    from ai_edge_litert import schema_py_generated as schema

    flat = schema.ModelT.InitFromPackedBuf(model, 0)
    names = []
    for graph in flat.subgraphs:
        for tensor in graph.tensors:
            name = tensor.name.decode()
            if any(f"/{scope}/" in f"/{name}" for scope in scopes):
                names.append(name)
    return names


def quantize_keeping_float(converter: Any, scopes: Sequence[str]) -> bytes:
    """Full-integer quantization by a converter set up for it (representative dataset, int8
    ops), except the ops under `scopes`, which stay float between DEQUANTIZE and QUANTIZE."""
    import tensorflow as tf
    from tensorflow.lite.python import convert as lite_convert

    converter._experimental_calibrate_only = True  # noqa: SLF001 - see the module docstring
    calibrated = converter.convert()
    names = nodes_in_scopes(calibrated, scopes)
    if not names:
        raise ExportError(
            f"int8: no op of the model is under {', '.join(scopes)}, the scope(s) to keep in "
            "float; the decoder's ops were renamed"
        )
    return lite_convert.mlir_quantize(
        calibrated,
        input_data_type=converter.inference_input_type or tf.float32,
        output_data_type=converter.inference_output_type or tf.float32,
        denylisted_nodes=names,
    )
