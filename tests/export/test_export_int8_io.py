"""`--io int8`: a full-integer file whose float inputs and outputs are int8 too, for all-int8
accelerators. Checked on the flatbuffer's own tensor types and by running the file the way an
app would: quantize with the file's scale and zero point, run, read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from helpers import FAST, SPECS, run_cli

import kseq
from kseq.decoding.app_loop import greedy_app_loop
from kseq.errors import KseqError
from kseq.export.int8_io import Int8Io
from kseq.export.static_shapes import StaticShape
from kseq.export.summary import format_report
from kseq.models.seq2seq.metrics import positional_token_accuracy


class FakeRunner:
    def __init__(self, inputs, outputs):
        self._inputs, self._outputs = inputs, outputs

    def get_input_details(self):
        return self._inputs

    def get_output_details(self):
        return self._outputs


def test_int8_io_quantizes_and_reads_back_with_the_files_scale():
    runner = FakeRunner(
        {
            "x": {"dtype": np.int8, "quantization": (0.5, -3)},
            "ids": {"dtype": np.int32, "quantization": (0.0, 0)},
        },
        {"y": {"dtype": np.int8, "quantization": (0.25, 10)}},
    )
    io = Int8Io(runner)
    batch = io.encode({"x": np.array([1.2, -0.8, 100.0, -100.0]), "ids": np.array([7])})
    # round(1.2 / 0.5) - 3 = -1; round(-1.6) - 3 = -5; clipped at 127 and -128
    assert batch["x"].tolist() == [-1, -5, 127, -128] and batch["x"].dtype == np.int8
    assert batch["ids"].tolist() == [7]  # integer inputs pass through
    out = io.decode({"y": np.array([10, 14, -128], np.int8)})
    np.testing.assert_allclose(out["y"], [0.0, 1.0, -34.5])
    assert io.describe()["outputs"] == {"y": {"scale": 0.25, "zero_point": 10}}
    assert io.describe()["inputs"] == {"x": {"scale": 0.5, "zero_point": -3}}


def cosine(a, b):
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory) -> Path:
    return kseq.train(
        SPECS / "autoencoder_dense.yaml",
        output=tmp_path_factory.mktemp("io") / "run",
        overrides=[*FAST, "data.synthetic.samples=96"],
    )


def test_autoencoder_file_takes_and_gives_int8(ae_run):
    report = kseq.export(ae_run, format="tflite", quantize="int8", io="int8")
    assert Path(report["path"]).name == "model_int8_int8io.tflite"
    assert report["io"] == "int8"
    assert "  int8, int8 I/O  " in format_report(report).splitlines()[1]
    runner = Interpreter(model_path=report["path"]).get_signature_runner("serving_default")
    ((name, detail),) = runner.get_input_details().items()
    ((out_name, out_detail),) = runner.get_output_details().items()
    assert detail["dtype"] == np.int8 and out_detail["dtype"] == np.int8
    scale, zero_point = detail["quantization"]
    out_scale, out_zero = out_detail["quantization"]
    assert report["io_quantization"]["serving_default"] == {
        "inputs": {name: {"scale": scale, "zero_point": zero_point}},
        "outputs": {out_name: {"scale": out_scale, "zero_point": out_zero}},
    }
    # As an app: quantize by hand with the file's figures, run, read back, compare with Keras.
    spec, family, model = kseq.load_run(ae_run)
    rows = family.load_data(spec, run_dir=ae_run).samples["inputs"][:16].astype(np.float32)
    q = np.clip(np.round(rows / scale) + zero_point, -128, 127).astype(np.int8)
    got = (runner(**{name: q})[out_name].astype(np.float32) - out_zero) * out_scale
    want = np.asarray(model(rows, training=False))
    assert cosine(got, want) >= 0.98
    outputs = report["parity"]["serving_default"]["outputs"]
    assert outputs[out_name]["cosine_similarity"] >= 0.98  # the gate read the outputs back
    assert set(report["parity_compiled_model"]) == {"serving_default"}


def test_token_ids_stay_int32_and_logits_become_int8(tmp_path):
    run_dir = kseq.train(
        SPECS / "bert_classification.yaml",
        output=tmp_path / "run",
        overrides=[
            *FAST,
            "export.parity_samples=4",
            "export.calibration_samples=8",
            "train.tensorboard=false",
            "train.verbose=0",
        ],
    )
    report = kseq.export(run_dir, format="tflite", quantize="int8", io="int8")
    signature = report["signatures"]["serving_default"]
    assert {d["dtype"] for d in signature["inputs"].values()} == {"int32"}
    assert {d["dtype"] for d in signature["outputs"].values()} == {"int8"}
    assert report["io_quantization"]["serving_default"]["inputs"] == {}
    metric = report["parity"]["serving_default"]["metric"]
    assert metric  # the task agreement is computed on the outputs read back as float


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--io", "int8"], "--io int8 needs --format tflite --quantize int8"),
        (["--io", "int8", "--quantize", "dynamic"], "received --format tflite --quantize dynamic"),
        (["--io", "int8", "--format", "saved_model"], "needs --format tflite"),
    ],
)
def test_int8_io_without_int8_kernels_is_a_user_error(ae_run, args, message):
    result = run_cli("export", str(ae_run), *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(KseqError, match="--io: expected one of float, int8"):
        kseq.export(ae_run, format="tflite", quantize="int8", io="int16")


def test_seq2seq_int8_io_needs_a_static_file(tmp_path):
    """CompiledModel cannot shrink an int8 output's batch (measured), so a dynamic seq2seq file
    with int8 I/O is refused; the static file passes the gate on both APIs."""
    run_dir = kseq.train(
        SPECS / "rnn_seq2seq_bahdanau.yaml",
        output=tmp_path / "run",
        overrides=[
            "train.epochs=1",
            "train.steps_per_epoch=6",
            "train.batch_size=16",
            "data.synthetic.train_size=300",
            "data.synthetic.validation_size=12",
            "export.parity_samples=6",
            "export.calibration_samples=32",
        ],
    )
    result = run_cli("export", str(run_dir), "--quantize", "int8", "--io", "int8")
    assert result.returncode == 2 and "--io int8 needs --static" in result.stderr
    report = kseq.export(
        run_dir, format="tflite", quantize="int8", io="int8", static=StaticShape(sequence_length=24)
    )
    inputs = report["signatures"]["decode_step"]["inputs"]
    assert inputs["state_h_0"]["dtype"] == "int8" and inputs["token_ids"]["dtype"] == "int32"
    assert set(report["parity_compiled_model"]) == {"encode", "decode_step"}
    logits = report["parity"]["decode_step"]["outputs"]["logits"]
    assert logits["cosine_similarity"] >= 0.99  # read back from int8
    # The report's app loop carries each state from int8 out to int8 in, as an app does.
    interpreter = Interpreter(model_path=report["path"])

    def signature(name):  # quantized by hand with the file's own figures
        runner = interpreter.get_signature_runner(name)
        ins, outs = runner.get_input_details(), runner.get_output_details()

        def call(**inputs):
            for key, detail in ins.items():
                if detail["dtype"] == np.int8:
                    scale, zero = detail["quantization"]
                    q = np.round(inputs[key] / scale) + zero
                    inputs[key] = np.clip(q, -128, 127).astype(np.int8)
            out = runner(**inputs)
            return {
                key: (value.astype(np.float32) - outs[key]["quantization"][1])
                * outs[key]["quantization"][0]
                if outs[key]["dtype"] == np.int8
                else value
                for key, value in out.items()
            }

        return call

    spec, family, _ = kseq.load_run(run_dir)
    data = family.load_data(spec, run_dir=run_dir)
    sources = np.zeros((6, 24), np.int32)
    held_out = data.samples["source_ids"][:6, :24]
    sources[:, : held_out.shape[1]] = held_out
    ids = greedy_app_loop(
        signature("encode"), signature("decode_step"), sources, spec.data.max_target_length, 1
    )
    truth = [t for _, t in data.info.validation_ids[:6]]
    rows = [[t for t in row if t] for row in ids.tolist()]
    app_loop = report["app_loop"]
    assert app_loop["rows"] == 6
    assert app_loop["token_accuracy_export"] == pytest.approx(
        positional_token_accuracy(rows, truth), abs=1e-12
    )
    assert app_loop["token_accuracy_export"] > 0  # the loop emits the right tokens somewhere
