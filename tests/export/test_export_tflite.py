"""TFLite export: builtin ops only, parity on the plain LiteRT interpreter, quantization, errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import export_models
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from kseq.errors import ExportError
from kseq.export import convert, write_saved_model, write_tflite
from kseq.export.tflite import report_path


@pytest.fixture(scope="module")
def autoencoder(tmp_path_factory):
    """The trained autoencoder, its SavedModel and fp32 .tflite (shared: conversion is slow)."""
    model, endpoints = export_models.autoencoder(trained=True)
    root = tmp_path_factory.mktemp("ae")
    write_saved_model(endpoints, root / "sm", track=model)
    fp32 = write_tflite(endpoints, root / "sm", root / "fp32.tflite", "none")
    return model, endpoints, root, fp32


def _run(path: Path, signature: str, **inputs: np.ndarray) -> dict[str, np.ndarray]:
    runner = Interpreter(model_path=str(path)).get_signature_runner(signature)
    return runner(**inputs)


def test_fp32_parity_on_plain_interpreter(autoencoder) -> None:
    model, endpoints, root, report = autoencoder
    path = root / "fp32.tflite"
    assert json.loads(report_path(path).read_text()) == report
    assert report["format"] == "tflite" and report["quantize"] == "none"
    assert report["size_bytes"] == path.stat().st_size
    assert report["ops"] == {"FULLY_CONNECTED": 6, "TANH": 2}  # both signatures, weights shared
    assert report["signatures"]["serving_default"] == {
        "inputs": {"x": {"dtype": "float32", "shape": [None, 96]}},
        "outputs": {"y": {"dtype": "float32", "shape": [None, 96]}},
    }
    for name, out in (("serving_default", "y"), ("encode", "z")):
        entry = report["parity"][name]
        assert entry["batch_sizes"] == [6, 1]
        assert entry["outputs"][out]["max_abs_diff"] <= 1e-4
    assert 0 < report["latency_ms_batch1"] < 100

    # Independently: a fresh interpreter, two batch sizes the gate did not use, against Keras.
    x = np.random.default_rng(5).normal(size=(5, 96)).astype(np.float32)
    for rows in (5, 2):
        got = _run(path, "serving_default", x=x[:rows])["y"]
        np.testing.assert_allclose(got, np.asarray(model(x[:rows])), atol=1e-5)


@pytest.mark.parametrize("builder", [export_models.conv1d, export_models.conv2d])
def test_conv_stacks_fp32(builder, tmp_path: Path) -> None:
    model, endpoints = builder()
    write_saved_model(endpoints, tmp_path / "sm", track=model)
    report = write_tflite(endpoints, tmp_path / "sm", tmp_path / "m.tflite")
    for entry in report["parity"].values():
        for fig in entry["outputs"].values():
            assert fig.get("max_abs_diff", 0.0) <= 1e-4
            assert fig.get("equal_fraction", 1.0) == 1.0
    if builder is export_models.conv1d:  # dynamic time axis: another length than the samples
        x = np.random.default_rng(4).normal(size=(2, 21, 5)).astype(np.float32)
        got = _run(tmp_path / "m.tflite", "serving_default", x=x)["y"]
        np.testing.assert_allclose(got, np.asarray(model(x)), atol=1e-5)
    else:
        assert report["signatures"]["classes"]["outputs"]["label"]["dtype"] == "int32"
        assert "TRANSPOSE_CONV" in report["ops"] and "CONV_2D" in report["ops"]


def test_wrong_reference_fails_and_writes_nothing(autoencoder, tmp_path: Path) -> None:
    _, endpoints, root, _ = autoencoder
    ref = endpoints[1].reference
    bad = export_models.with_reference(endpoints[1], lambda b: {"y": ref(b)["y"] * 1.01})
    path = tmp_path / "m.tflite"
    with pytest.raises(ExportError, match=r"TFLite endpoint 'serving_default' output 'y'"):
        write_tflite([endpoints[0], bad], root / "sm", path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("quantize", ["dynamic", "float16", "int8"])
def test_quantized_smaller_and_close(autoencoder, quantize: str, tmp_path: Path) -> None:
    _, endpoints, root, fp32 = autoencoder
    path = tmp_path / f"{quantize}.tflite"
    report = write_tflite(
        endpoints,
        root / "sm",
        path,
        quantize,
        metric=lambda ref, got: {
            "mse": np.mean((ref[next(iter(ref))] - got[next(iter(got))]) ** 2)
        },
        float32_size_bytes=fp32["size_bytes"],
    )
    ratio = report["size_ratio_vs_float32"]
    assert ratio == path.stat().st_size / fp32["size_bytes"]
    # Not 25%/50%: per-channel scales and zero points cost 24 bytes per output channel per
    # signature, a lot next to the 32-wide bottleneck's fan-in (see the conv test for ~27%).
    assert ratio < {"dynamic": 0.33, "float16": 0.52, "int8": 0.37}[quantize]
    for entry in report["parity"].values():
        (fig,) = entry["outputs"].values()
        assert fig["compare"] == "report"
        assert fig["cosine_similarity"] >= 0.99
        assert 0 < fig["mean_abs_diff"] <= fig["max_abs_diff"] < 0.2
        assert 0 <= entry["metric"]["mse"] < 1e-3
    if quantize == "int8":
        # Full-integer kernels: the matmuls read int8 tensors, float only at the edges.
        assert report["op_input_types"]["FULLY_CONNECTED"] == ["int32", "int8"]
        assert report["ops"]["QUANTIZE"] >= 2 and report["ops"]["DEQUANTIZE"] >= 2
        assert report["signatures"]["encode"]["inputs"]["x"]["dtype"] == "float32"
    if quantize == "float16":
        assert "float16" in report["op_input_types"]["DEQUANTIZE"]


def test_int8_conv_model_under_30_percent(tmp_path: Path) -> None:
    model, endpoints = export_models.conv_autoencoder()
    assert model.count_params() > 50_000
    write_saved_model(endpoints, tmp_path / "sm", track=model)
    fp32 = write_tflite(endpoints, tmp_path / "sm", tmp_path / "fp32.tflite")
    int8 = write_tflite(
        endpoints,
        tmp_path / "sm",
        tmp_path / "int8.tflite",
        "int8",
        float32_size_bytes=fp32["size_bytes"],
    )
    assert int8["size_ratio_vs_float32"] <= 0.30
    assert int8["op_input_types"]["CONV_2D"] == ["int32", "int8"]
    assert int8["op_input_types"]["TRANSPOSE_CONV"] == ["int32", "int8"]
    fig = int8["parity"]["serving_default"]["outputs"]["y"]
    assert fig["cosine_similarity"] >= 0.9, fig


def test_int8_needs_calibration(autoencoder, tmp_path: Path) -> None:
    _, endpoints, root, _ = autoencoder
    empty = [dataclasses.replace(ep, calibration=[]) for ep in endpoints]
    with pytest.raises(ExportError, match="needs calibration batches for endpoint"):
        write_tflite(empty, root / "sm", tmp_path / "m.tflite", "int8")


def test_lstm_names_layer_and_tensorlist_op(tmp_path: Path) -> None:
    model, endpoints = export_models.lstm()
    write_saved_model(endpoints, tmp_path / "sm", track=model)  # fine as a SavedModel
    with pytest.raises(ExportError) as err:
        write_tflite(endpoints, tmp_path / "sm", tmp_path / "m.tflite")
    message = str(err.value)
    assert message.startswith("cannot lower to TFLite builtin ops: layer 'lstm' uses TensorList")
    assert "kseq never enables Flex" in message and "\n" not in message
    assert not (tmp_path / "m.tflite").exists()
    # convert() alone, without the layer list from report.json, still finds the layer.
    (tmp_path / "sm" / "report.json").unlink()
    with pytest.raises(ExportError, match=r"layer 'lstm' uses TensorList\w+"):
        convert(tmp_path / "sm", ["serving_default"])


def test_bad_quantize_and_unwritable_path(autoencoder, tmp_path: Path) -> None:
    _, endpoints, root, _ = autoencoder
    with pytest.raises(ExportError, match="quantize must be one of"):
        write_tflite(endpoints, root / "sm", tmp_path / "m.tflite", "int4")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match=r"cannot write .*file/m\.tflite"):
        write_tflite(endpoints, root / "sm", tmp_path / "file" / "m.tflite")


def test_tokenizer_custom_ops(tmp_path: Path) -> None:
    tft = pytest.importorskip("tensorflow_text")
    import tensorflow as tf

    vocab = ["[UNK]", "the", "cat", "sat", "on", "mat", "##s", "dog"]
    tokenizer = tft.FastWordpieceTokenizer(vocab, token_out_type=tf.int32)

    def tokenize(text):
        return {"ids": tokenizer.tokenize(text).to_tensor()}

    samples = {"text": np.array([b"the cat sat", b"dogs on the mat", b"zebra"], dtype=object)}
    ep = export_models.Endpoint(
        "tokenize",
        tokenize,
        [tf.TensorSpec((None,), tf.string, name="text")],
        reference=lambda b: {"ids": tokenize(tf.constant(b["text"]))["ids"].numpy()},
        samples=samples,
        exact=True,
    )
    expected = [[1, 2, 3, 0, 0], [7, 6, 4, 1, 5], [0, 0, 0, 0, 0]]  # "##s" = 6, "[UNK]" = 0
    assert ep.reference(samples)["ids"].tolist() == expected
    module = tf.Module()
    module.tokenizer = tokenizer
    write_saved_model([ep], tmp_path / "sm", track=module)
    # Without custom ops the tokenizer cannot convert, and the message says why.
    with pytest.raises(ExportError, match=r"FastWordpieceTokenize.*custom ops allowed"):
        write_tflite([ep], tmp_path / "sm", tmp_path / "plain.tflite")
    report = write_tflite([ep], tmp_path / "sm", tmp_path / "tok.tflite", custom_ops=True)
    assert "FastWordpieceTokenizeWithOffsets" in report["requires_custom_ops"]
    assert "tensorflow-text" in report["note"]
    assert report["compiled_model"].startswith("not run") and "parity_compiled_model" not in report
    assert report["parity"]["tokenize"]["outputs"]["ids"]["equal_fraction"] == 1.0
    assert report["signatures"]["tokenize"]["inputs"]["text"] == {
        "dtype": "string",
        "shape": [None],
    }


def test_int8_calibration_batches_must_share_one_shape(autoencoder, tmp_path: Path) -> None:
    """TF's calibrator sizes a signature on its first batch; another shape would run stale."""
    _, endpoints, root, _ = autoencoder
    mixed = [
        dataclasses.replace(ep, calibration=[ep.calibration[0], _first_rows(ep.calibration[0])])
        for ep in endpoints
    ]
    with pytest.raises(ExportError, match="calibration batches of endpoint .* differ in shape"):
        write_tflite(mixed, root / "sm", tmp_path / "m.tflite", "int8")
    assert not (tmp_path / "m.tflite").exists()


def _first_rows(batch: dict) -> dict:
    return {k: v[:1] for k, v in batch.items()}
