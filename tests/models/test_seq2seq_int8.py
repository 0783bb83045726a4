"""Full-integer int8 export of the sequence-to-sequence families, on the real LiteRT runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter
from helpers import SPECS, run_cli

import kseq
from kseq.errors import KseqError
from kseq.export.compiled_model import close_compiled_model, load_compiled_model, run_compiled
from kseq.export.tflite_inspect import op_summary
from kseq.models import seq2seq_calibration
from kseq.models.seq2seq_calibration import Seq2SeqCalibration
from kseq.models.seq2seq_family import strip_ids
from kseq.models.seq2seq_metrics import positional_token_accuracy

TINY = [
    "train.epochs=1",
    "train.steps_per_epoch=8",
    "train.batch_size=16",
    "data.synthetic.train_size=300",
    "data.synthetic.validation_size=24",
    "export.parity_samples=12",
    "export.calibration_samples=32",
]
GREEDY = ["decode.strategy=greedy"]


@pytest.fixture(scope="module")
def beam_run(tmp_path_factory) -> Path:
    """The default spec (beam search) trained a few steps."""
    spec = kseq.load_spec(SPECS / "default.yaml", TINY)
    return kseq.train(spec, output=tmp_path_factory.mktemp("int8") / "run")


def _float_constants(path: str) -> list[str]:
    """Names of float32 constant tensors over 1 KiB (weights left unquantized)."""
    model = schema.ModelT.InitFromPackedBuf(Path(path).read_bytes(), 0)
    return [
        tensor.name.decode()
        for graph in model.subgraphs
        for tensor in graph.tensors
        if tensor.type == schema.TensorType.FLOAT32
        and model.buffers[tensor.buffer].data is not None
        and len(model.buffers[tensor.buffer].data) > 1024
    ]


def _float_weight_ops(path: str) -> dict[str, list[str]]:
    """Ops of the flatbuffer that multiply by weights and are still fed a float tensor."""
    types = op_summary(Path(path).read_bytes())["op_input_types"]
    heavy = ("FULLY_CONNECTED", "BATCH_MATMUL", "CONV_2D")
    return {op: t for op, t in types.items() if op in heavy and "float32" in t}


def _check_int8_file(run_dir: Path, report: dict, overrides: list[str]) -> None:
    spec, family, model = kseq.load_run(run_dir, overrides)
    data = family.load_data(spec, run_dir=run_dir)
    sources = data.samples["source_ids"]
    truth = [t for _, t in data.info["validation_ids"]]

    assert report["quantize"] == "int8"
    # Every weight is int8. (A tiny model's file is not a quarter of fp32: the graph itself and
    # the int32 code-point table of `generate_codepoints` weigh as much as its weights.)
    assert _float_constants(report["path"]) == []
    assert report["size_bytes"] < report["float32_size_bytes"]
    assert _float_weight_ops(report["path"]) == {}  # every weight product runs in int8

    # The file's ids, independently of the gate: the plain Interpreter on the held-out sources.
    interpreter = Interpreter(model_path=report["path"])
    ids = interpreter.get_signature_runner("generate")(source_ids=sources)["target_ids"]
    keras_ids = [family.best_ids(r) for r in family.decode_ids(model, spec, sources.tolist())]
    export_ids = [strip_ids(row) for row in ids]
    metric = report["parity"]["generate"]["metric"]
    assert metric["exact_match_export"] == pytest.approx(
        np.mean([a == b for a, b in zip(export_ids, truth, strict=True)])
    )
    assert metric["tokens_identical_to_keras"] == pytest.approx(
        positional_token_accuracy(export_ids, keras_ids)
    )
    assert metric["tokens_identical_to_keras"] >= 0.5  # quantized, not broken

    # The same ids on CompiledModel.
    compiled = load_compiled_model(Path(report["path"]).read_bytes())
    try:
        got = run_compiled(compiled, "generate", {"source_ids": sources}, {"target_ids": ids})
    finally:
        close_compiled_model(compiled)
    np.testing.assert_array_equal(got["target_ids"], ids)

    step = report["parity"]["decode_step"]["outputs"]
    assert step["logits"]["compare"] == "report"
    assert step["logits"]["cosine_similarity"] >= 0.99


def test_int8_rnn_generate_matches_its_report_on_both_apis(beam_run):
    report = kseq.export(beam_run, format="tflite", quantize="int8", overrides=GREEDY)
    _check_int8_file(beam_run, report, GREEDY)


def test_int8_transformer_generate_matches_its_report_on_both_apis(tmp_path):
    spec = kseq.load_spec(SPECS / "transformer_seq2seq.yaml", TINY)
    run_dir = kseq.train(spec, output=tmp_path / "run")
    report = kseq.export(run_dir, format="tflite", quantize="int8")
    _check_int8_file(run_dir, report, [])


def test_int8_of_a_beam_spec_is_refused_with_the_way_out(beam_run):
    export_dir = beam_run / "export"
    before = (
        {p.name: p.stat().st_mtime_ns for p in export_dir.glob("*")} if export_dir.exists() else {}
    )
    with pytest.raises(KseqError, match="decodes greedily only.*decode.strategy=greedy"):
        kseq.export(beam_run, format="tflite", quantize="int8")
    result = run_cli("export", str(beam_run), "--format", "tflite", "--quantize", "int8")
    assert result.returncode == 2
    assert "decode.strategy=greedy" in result.stderr
    assert "Traceback" not in result.stderr
    after = (
        {p.name: p.stat().st_mtime_ns for p in export_dir.glob("*")} if export_dir.exists() else {}
    )
    assert after == before  # nothing written or replaced


def test_decode_step_calibration_holds_teacher_forced_states(beam_run, monkeypatch):
    """Each calibration step's inputs give the logits of the full teacher-forced model at that
    position: they are the states the decoder really has, not made-up tensors."""
    monkeypatch.setattr(seq2seq_calibration, "MAX_STEP_BATCHES", 10_000)  # keep every position
    spec, family, model = kseq.load_run(beam_run)
    data = family.load_data(spec, run_dir=beam_run)
    graph = family.graph(model)
    calibration = Seq2SeqCalibration(
        graph,
        data.calibration["source_ids"],
        data.calibration["target_ids"],
        spec.data.max_source_length,
    )
    steps = iter(calibration.steps())
    shapes = set()
    for sources, targets in calibration._batches():
        target_in = np.concatenate([np.full((len(targets), 1), 2, np.int32), targets], 1)
        logits = np.asarray(model({"source": sources, "target_in": target_in}, training=False))
        lengths = (targets > 0).sum(axis=1)
        for position in range(target_in.shape[1]):
            step = next(steps)
            shapes.add(tuple(sorted((k, v.shape) for k, v in step.items())))
            state = {k[6:]: v for k, v in step.items() if k.startswith("state_")}
            encoded = {k[8:]: v for k, v in step.items() if k.startswith("encoded_")}
            step_logits, _, _ = graph.step(step["token_ids"], state, encoded)
            live = lengths >= position  # rows still inside their reference (its end included)
            np.testing.assert_allclose(
                np.asarray(step_logits)[live], logits[live, position], atol=1e-4
            )
    assert next(steps, None) is None
    assert len(shapes) == 1  # one shape for every batch, as TF's calibrator needs


def test_decode_step_calibration_keeps_an_even_spread_of_positions(beam_run, monkeypatch):
    monkeypatch.setattr(seq2seq_calibration, "MAX_STEP_BATCHES", 5)
    spec, family, model = kseq.load_run(beam_run)
    data = family.load_data(spec, run_dir=beam_run)
    calibration = Seq2SeqCalibration(
        family.graph(model),
        data.calibration["source_ids"],
        data.calibration["target_ids"],
        spec.data.max_source_length,
    )
    steps = calibration.steps()
    assert len(steps) == 5
    assert steps[0]["token_ids"].tolist() == [2] * len(steps[0]["token_ids"])  # bos first
    assert calibration.steps() is steps  # made once
