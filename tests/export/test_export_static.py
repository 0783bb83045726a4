"""`--static` exports: fixed shapes and no control flow, read from the flatbuffer itself, and the
files run on the real LiteRT runtime with Keras's numbers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter
from helpers import FAST, SPECS, readme_app_loop, run_cli

import kseq
from kseq.export.static_shapes import StaticShape
from kseq.export.summary import format_report
from kseq.models.seq2seq.metrics import positional_token_accuracy

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "WHILE",
    "IF",
    "SHAPE",
    "FILL",
    "REDUCE_PROD",
    "ONE_HOT",
    "RANGE",
    "UNSORTED_SEGMENT_PROD",
    "TOPK_V2",
    "CUSTOM",
}
SEQ2SEQ_TINY = [
    "train.epochs=1",
    "train.steps_per_epoch=8",
    "train.batch_size=16",
    "data.synthetic.train_size=300",
    "data.synthetic.validation_size=12",
    "export.parity_samples=6",
    "export.calibration_samples=32",
]
BERT_TINY = [
    *FAST,
    "export.parity_samples=4",
    "export.calibration_samples=8",
    "train.tensorboard=false",
    "train.verbose=0",
]
_OPS = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def flatbuffer_facts(path: str) -> tuple[set[str], list[str], dict[str, list[list[int]]]]:
    """(op names, tensors with a dynamic dimension, input shapes per signature), read with the
    flatbuffer's object API (not the exporter's reader)."""
    model = schema.ModelT.InitFromPackedBuf(Path(path).read_bytes(), 0)
    ops, dynamic = set(), []
    for graph in model.subgraphs:
        for op in graph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            ops.add(_OPS[max(code.builtinCode, code.deprecatedBuiltinCode)])
        for tensor in graph.tensors:
            signature = tensor.shapeSignature if tensor.shapeSignature is not None else []
            if any(int(d) < 0 for d in signature):
                dynamic.append(tensor.name.decode())
    inputs = {}
    for signature in model.signatureDefs:
        graph = model.subgraphs[signature.subgraphIndex]
        inputs[signature.signatureKey.decode()] = [
            [int(d) for d in graph.tensors[t.tensorIndex].shape] for t in signature.inputs
        ]
    return ops, dynamic, inputs


def assert_static(report: dict, batch_size: int) -> dict[str, list[list[int]]]:
    ops, dynamic, inputs = flatbuffer_facts(report["path"])
    assert not ops & FORBIDDEN, ops & FORBIDDEN
    assert dynamic == []
    assert all(shape[0] == batch_size for shapes in inputs.values() for shape in shapes), inputs
    assert report["static_profile"]["ops_outside_allowlist"] == []
    assert report["static_profile"]["dynamic_tensors"] == 0
    assert set(report["parity_compiled_model"]) == set(inputs)  # every signature, both APIs
    assert report["latency_batch_size"] == batch_size
    return inputs


def test_static_autoencoder_at_batch_2_matches_keras(tmp_path):
    run_dir = kseq.train(
        SPECS / "autoencoder_conv1d.yaml",
        output=tmp_path / "run",
        overrides=[*FAST, "data.synthetic.samples=96"],
    )
    report = kseq.export(run_dir, format="tflite", static=StaticShape(batch_size=2))
    assert Path(report["path"]).name == "model_static.tflite"
    inputs = assert_static(report, 2)
    assert inputs == {"serving_default": [[2, 64, 2]]}

    spec, family, model = kseq.load_run(run_dir)
    rows = family.load_data(spec, run_dir=run_dir).samples["inputs"][:2].astype(np.float32)
    runner = Interpreter(model_path=report["path"]).get_signature_runner("serving_default")
    np.testing.assert_allclose(
        runner(inputs=rows)["reconstruction"], np.asarray(model(rows)), atol=1e-4
    )


@pytest.mark.parametrize(
    ("spec_name", "batch"),
    [("rnn_seq2seq_bahdanau", 1), ("rnn_seq2seq_none", 2), ("transformer_seq2seq", 1)],
)
def test_static_seq2seq_is_loop_free_and_the_app_loop_gives_keras_ids(spec_name, batch, tmp_path):
    run_dir = kseq.train(
        SPECS / f"{spec_name}.yaml", output=tmp_path / "run", overrides=SEQ2SEQ_TINY
    )
    spec, family, model = kseq.load_run(run_dir)
    length, steps = 40, spec.data.max_target_length  # the longest training target
    rows = 5  # not a multiple of batch 2: the report's loop fills its last batch
    report = kseq.export(
        run_dir,
        format="tflite",
        static=StaticShape(batch_size=batch, sequence_length=length, target_length=steps),
        overrides=[f"export.parity_samples={rows}"],
    )
    inputs = assert_static(report, batch)
    assert set(inputs) == {"encode", "decode_step"}  # generate is a loop: the app runs it
    assert inputs["encode"] == [[batch, length]]

    data = family.load_data(spec, run_dir=run_dir)
    sources = data.samples["source_ids"][:rows, :length]
    padded = np.zeros((rows + 1, length), np.int32)  # one more row: whole batches of 1 or 2
    padded[:rows, : sources.shape[1]] = sources
    padded[rows] = padded[0]
    greedy_decode = readme_app_loop()
    ids = np.concatenate(
        [
            greedy_decode(report["path"], padded[i : i + batch], steps)
            for i in range(0, rows + 1, batch)
        ]
    )[:rows]
    expected = [
        family.best_ids(r)[:steps]
        for r in family.decode_ids(model, spec, padded[:rows].tolist(), "greedy")
    ]
    got = [[t for t in row if t] for row in ids.tolist()]
    assert got == expected
    assert sum(map(len, expected)) > 0

    # The report scores the same loop on the same rows against the true targets.
    truth = [t for _, t in data.info.validation_ids[:rows]]
    app_loop = report["app_loop"]
    assert app_loop["rows"] == rows
    assert app_loop["sequences_identical_to_keras"] == 1.0
    matches = [a == b for a, b in zip(got, truth, strict=True)]
    assert app_loop["exact_match_export"] == np.mean(matches)
    assert app_loop["token_accuracy_export"] == pytest.approx(
        positional_token_accuracy(got, truth), abs=1e-12
    )
    assert app_loop["token_accuracy_keras"] == app_loop["token_accuracy_export"]
    assert ", greedy app loop" in format_report(report).splitlines()[1]


def test_static_bert_classifier_fixes_batch_and_length(tmp_path):
    run_dir = kseq.train(
        SPECS / "bert_classification.yaml",
        output=tmp_path / "run",
        overrides=[*BERT_TINY, "data.synthetic.task=sentiment_pairs"],
    )
    report = kseq.export(
        run_dir, format="tflite", static=StaticShape(batch_size=2, sequence_length=16)
    )
    inputs = assert_static(report, 2)
    assert all(shape == [2, 16] for shape in inputs["serving_default"])


def test_static_masked_lm_has_no_one_hot(tmp_path):
    run_dir = kseq.train(
        SPECS / "bert_masked_lm.yaml", output=tmp_path / "run", overrides=BERT_TINY
    )
    report = kseq.export(run_dir, format="tflite", static=StaticShape(sequence_length=16))
    inputs = assert_static(report, 1)
    assert all(shape[0] == 1 for shape in inputs["serving_default"])
    assert any(shape == [1, 16] for shape in inputs["serving_default"])


def test_static_variational_encoder_part_gives_the_mean(tmp_path):
    run_dir = kseq.train(
        SPECS / "autoencoder_variational.yaml",
        output=tmp_path / "run",
        overrides=[*FAST, "data.synthetic.samples=96"],
    )
    report = kseq.export(run_dir, format="tflite", part="encoder", static=StaticShape())
    assert Path(report["path"]).name == "encoder_static.tflite"
    assert_static(report, 1)
    spec, family, model = kseq.load_run(run_dir)
    row = family.load_data(spec, run_dir=run_dir).samples["inputs"][:1].astype(np.float32)
    runner = Interpreter(model_path=report["path"]).get_signature_runner("encode")
    mean = np.asarray(model.get_layer("encoder")(row, training=False)[0])
    np.testing.assert_allclose(runner(inputs=row)["embedding"], mean, atol=1e-4)


def test_static_combines_with_quantization(tmp_path):
    run_dir = kseq.train(
        SPECS / "rnn_seq2seq_bahdanau.yaml", output=tmp_path / "run", overrides=SEQ2SEQ_TINY
    )
    report = kseq.export(
        run_dir, format="tflite", quantize="dynamic", static=StaticShape(sequence_length=24)
    )
    assert Path(report["path"]).name == "model_static_dynamic.tflite"
    assert_static(report, 1)
    assert "int8" in report["op_input_types"]["FULLY_CONNECTED"]  # int8 weights
    logits = report["parity"]["decode_step"]["outputs"]["logits"]
    assert logits["cosine_similarity"] >= 0.99

    ae_run = kseq.train(
        SPECS / "autoencoder_conv1d.yaml",
        output=tmp_path / "ae",
        overrides=[*FAST, "data.synthetic.samples=96"],
    )
    report = kseq.export(ae_run, format="tflite", quantize="int8", static=StaticShape())
    assert Path(report["path"]).name == "model_static_int8.tflite"
    assert_static(report, 1)
    assert report["op_input_types"]["CONV_2D"] == ["int32", "int8"]  # full-integer kernels


@pytest.fixture(scope="module")
def dense_run(tmp_path_factory) -> Path:
    return kseq.train(
        SPECS / "autoencoder_dense.yaml",
        output=tmp_path_factory.mktemp("static") / "run",
        overrides=[*FAST, "data.synthetic.samples=64"],
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "2"], "--static export only"),
        (["--static", "--format", "saved_model"], "TFLite exports only"),
        (["--static", "--batch-size", "0"], "--batch-size must be in 1..256"),
        (["--static", "--target-length", "5"], "--target-length: autoencoder exports have no"),
    ],
)
def test_static_flag_errors_exit_2(args, message, dense_run):
    run_dir = dense_run
    result = run_cli("export", str(run_dir), *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not list((run_dir / "export").glob("*static*"))


def test_fixed_batch_regroups_calibration_and_gates_in_batches_of_that_size():
    import export_models

    from kseq.errors import ExportError
    from kseq.export.parity import gate_batches
    from kseq.export.static_shapes import with_fixed_batch

    _, endpoints = export_models.autoencoder(trained=False)
    ep = with_fixed_batch(endpoints[0], 5)  # 6 sample rows, 4 x 16 calibration rows
    assert ep.input_signature[0].shape.as_list() == [5, 96]
    batches = ep.calibration_batches()
    assert [b["x"].shape for b in batches] == [(5, 96)] * 12  # 64 rows -> 12 full batches
    np.testing.assert_array_equal(batches[1]["x"], endpoints[0].calibration[0]["x"][5:10])
    first, second = gate_batches(ep)
    samples = endpoints[0].samples["x"]
    np.testing.assert_array_equal(first["x"], samples[:5])
    np.testing.assert_array_equal(second["x"], np.concatenate([samples[5:], samples[:4]]))

    dynamic = dataclasses.replace(endpoints[0], input_signature=[tf.TensorSpec((None, None))])
    with pytest.raises(ExportError, match="still has a dynamic dimension"):
        with_fixed_batch(dynamic, 1)


def test_the_profile_finds_loops_and_dynamic_shapes():
    from tflite_helpers import convert_builtins

    from kseq.errors import ExportError
    from kseq.export.static_shapes import check_static, static_profile

    layer = keras.layers.Dense(3, name="proj")
    layer.build((None, 4))

    def looped(x):
        _, y = tf.while_loop(
            lambda i, y: i < 3, lambda i, y: (i + 1, layer(y) @ tf.ones((3, 4))), (0, x)
        )
        return {"y": y}

    model = convert_builtins(
        {"serving_default": (looped, [tf.TensorSpec((None, 4), tf.float32, name="x")])}, layer
    )
    profile = static_profile(model)
    assert "WHILE" in [o["op"] for o in profile["ops_outside_allowlist"]]
    assert profile["dynamic_tensors"]  # the batch is -1
    with pytest.raises(ExportError, match="WHILE"):
        check_static(profile)
    with pytest.raises(ExportError, match="dynamic shape"):
        check_static({**profile, "ops_outside_allowlist": []})
