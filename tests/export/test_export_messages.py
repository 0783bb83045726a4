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


def test_format_report_is_a_table_row_with_words_and_the_task_score() -> None:
    report = {
        "format": "tflite",
        "quantize": "int8",
        "path": "/runs/x/export/model_int8.tflite",
        "size_bytes": 84_900,
        "size_ratio_vs_float32": 0.284,
        "latency_ms_batch1": 0.133,
        "ops": {"CONV_2D": 4, "QUANTIZE": 1, "ADD": 2, "MUL": 2, "TANH": 1, "RELU": 3, "SUB": 1},
        "parity": {
            "serving_default": {
                "batch_sizes": [40, 1],
                "outputs": {
                    "y": {
                        "compare": "report",
                        "max_abs_diff": 0.0027,
                        "mean_abs_diff": 0.0004,
                        "cosine_similarity": 0.999634,
                    }
                },
                "metric": {"reconstruction_mse_keras": 0.0102, "reconstruction_mse_export": 0.0107},
            },
            "classes": {
                "batch_sizes": [40, 1],
                "outputs": {"label": {"compare": "exact", "equal_fraction": 0.975}},
            },
        },
    }
    header, row, path, ops = format_report(report).splitlines()
    assert header.split() == (
        [
            "artifact",
            "format",
            "precision",
            "static",
            "size",
            "batch-1",
            "latency",
            "parity",
            "task",
            "score",
            "(Keras)",
        ]
    )
    cells = [cell for cell in row.split("  ") if cell]
    assert [c.strip() for c in cells] == [
        "model_int8.tflite",
        "TFLite",
        "int8",
        "no",
        "82.9 KiB",
        "0.133 ms",
        "measured: 97.5% of integer outputs as Keras's on 40 rows, max |diff| 0.003, cosine 0.9996",
        "reconstruction mse 0.0107 (0.0102)",
    ]
    assert path == "model_int8.tflite: /runs/x/export/model_int8.tflite"
    assert ops == (
        "  ops: CONV_2D×4, RELU×3, ADD×2, MUL×2, QUANTIZE×1, SUB×1, and 1 more kind in its report"
    )
    # A float32 file passes the gate; identical ids are said in words, on both APIs.
    report |= {"quantize": "none", "parity_compiled_model": {"serving_default": {}}}
    report["parity"]["classes"]["outputs"]["label"]["equal_fraction"] = 1.0
    report["parity"]["serving_default"]["outputs"]["y"] = {
        "compare": "tolerance",
        "max_abs_diff": 3e-7,
        "atol": 1e-4,
        "cosine_similarity": 1.0,
    }
    row = format_report(report).splitlines()[1]
    assert (
        "pass: identical to Keras on 40 rows, max |diff| 3e-07 (gate 0.0001), both LiteRT APIs"
        in row
    )
    assert "  float32  " in row


def test_format_reports_puts_every_artifact_in_one_table() -> None:
    from kseq.export.summary import format_reports

    saved = {"format": "saved_model", "path": "/r/export/model_saved_model", "size_bytes": 2048}
    tflite = {
        "format": "tflite",
        "quantize": "none",
        "path": "/r/export/model.tflite",
        "size_bytes": 1024,
        "static_profile": {},
        "latency_batch_size": 4,
    }
    lines = format_reports([saved, tflite]).splitlines()
    assert lines[1].split()[:5] == ["model_saved_model", "SavedModel", "float32", "no", "2.0"]
    assert lines[2].split()[:6] == ["model.tflite", "TFLite", "float32", "yes", "(batch", "4)"]


def test_a_static_files_task_score_comes_from_its_app_loop() -> None:
    report = {
        "format": "tflite",
        "quantize": "int8",
        "path": "/r/export/model_static_int8.tflite",
        "size_bytes": 1024,
        "static_profile": {},
        "parity": {"encode": {"batch_sizes": [1]}, "decode_step": {"batch_sizes": [1]}},
        "app_loop": {
            "strategy": "greedy",
            "rows": 20,
            "exact_match_export": 0.9,
            "exact_match_keras": 0.95,
            "sequences_identical_to_keras": 0.9,
        },
    }
    row = format_report(report).splitlines()[1]
    assert row.endswith("exact match 90.0% (95.0%), greedy app loop")
    report["app_loop"]["beam"] = {"exact_match_export": 0.85, "exact_match_keras": 0.97}
    row = format_report(report).splitlines()[1]
    assert row.endswith("greedy app loop; exact match 85.0% (97.0%), beam app loop")
    report["app_loop"]["beam"] = "not run: a batch of 1 holds no 4 beams"
    assert format_report(report).splitlines()[1].endswith("(95.0%), greedy app loop")
    del report["app_loop"]
    assert format_report(report).splitlines()[1].endswith("-")
