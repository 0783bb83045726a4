"""Converter-error parsing and the report summary, on recorded converter output (no conversion)."""

from __future__ import annotations

from types import SimpleNamespace

from kseq.export.converter_errors import describe_conversion_error
from kseq.export.summary import format_report

# Lines as TF 2.21's converter prints them (the exception text when no structured errors exist).
_TEXT = (
    '<unknown>:0: error: loc(callsite(fused["MatrixInverse:", "functional_1/solver_1/MatrixInverse'
    '@__inference_<lambda>_18"] at callsite(fused["PartitionedCall:", "PartitionedCall@__inference_'
    "signature_wrapper_<lambda>_24\"]))): 'tf.MatrixInverse' op is neither a custom op nor a "
    "flex op\n"
    "<unknown>:0: error: failed while converting: 'main'\n"
)


def _structured(op: str, message: str, *calls: str) -> SimpleNamespace:
    location = SimpleNamespace(call=[SimpleNamespace(name=c) for c in calls])
    return SimpleNamespace(
        operator=SimpleNamespace(name=op), error_message=message, location=location
    )


def test_text_only_error_names_op_and_layer() -> None:
    message = describe_conversion_error(RuntimeError(_TEXT), ["serving_default"], None)
    assert message == (
        "cannot lower to TFLite builtin ops: layer 'solver' uses MatrixInverse "
        "(no builtin kernel); "
        "kseq never enables Flex — use an exportable layer"
    )


def test_structured_errors_use_known_layer_names_innermost_first() -> None:
    error = RuntimeError("conversion failed")
    error.errors = [
        _structured("tf.Const", "Lowering tensor list ops is failed."),
        _structured(
            "tf.TensorListReserve",
            "failed to legalize operation 'tf.TensorListReserve' that was marked illegal",
            "model_1/encoder_1/my_gru_1/TensorArrayV2_1@__inference_x_1",
            "StatefulPartitionedCall@__inference_signature_wrapper_2",
        ),
        _structured(
            "tf.TensorListStack",
            "failed to legalize operation 'tf.TensorListStack'",
            "model_1/lstm_1_1/TensorArrayV2Stack@__inference_x_1",
        ),
    ]
    names = ["model", "encoder", "my_gru", "lstm", "lstm_1"]
    message = describe_conversion_error(error, ["serving_default"], names)
    assert "layer 'my_gru' uses TensorListReserve; layer 'lstm_1' uses TensorListStack" in message
    assert "Const" not in message


def test_other_failures_report_the_first_error_line() -> None:
    error = RuntimeError("x")
    error.errors = [_structured("tfl.fully_connected", "quantization parameters are invalid")]
    message = describe_conversion_error(error, ["encode", "decode"], [])
    assert (
        message == "TFLite conversion of encode, decode failed: quantization parameters are invalid"
    )


def test_format_report_one_line_per_endpoint() -> None:
    report = {
        "format": "tflite",
        "quantize": "int8",
        "size_bytes": 84_900,
        "size_ratio_vs_float32": 0.284,
        "latency_ms_batch1": 0.133,
        "ops": {"CONV_2D": 4, "QUANTIZE": 1},
        "parity": {
            "serving_default": {
                "batch_sizes": [4, 1],
                "outputs": {
                    "y": {
                        "compare": "report",
                        "max_abs_diff": 0.0027,
                        "mean_abs_diff": 0.0004,
                        "cosine_similarity": 0.999634,
                    }
                },
                "metric": {"mse": 0.01},
            },
            "classes": {
                "batch_sizes": [4, 1],
                "outputs": {"label": {"compare": "exact", "equal_fraction": 1.0}},
            },
        },
    }
    assert format_report(report).splitlines() == [
        "tflite (int8): 82.9 KiB = 28% of fp32, 0.133 ms/row, ops CONV_2D×4 QUANTIZE×1",
        "  serving_default [batch 4/1]: y max|diff| 0.0027, cos 0.999634; mse 0.01",
        "  classes [batch 4/1]: label equal 100.00%",
    ]
    report["parity_compiled_model"] = {"serving_default": {}, "classes": {}}
    report["latency_ms_batch1_compiled_model"] = 0.2
    # int8 outputs are compared, not gated: "run"; a float32 file passes the same gate: "pass".
    assert format_report(report).splitlines()[-1] == (
        "  also on CompiledModel (CPU): serving_default, classes run, 0.2 ms/row"
    )
    report["quantize"] = "none"
    assert format_report(report).splitlines()[-1].endswith("classes pass, 0.2 ms/row")
