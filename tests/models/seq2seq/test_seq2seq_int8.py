"""int8 for the sequence-to-sequence families: greedy files that keep attention (both LiteRT
APIs), beam search with its bookkeeping in float, sampling refused, and the calibration data the
int8 files are made from: teacher-forced decoder states."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
from helpers import SPECS, run_cli

import kseq
from kseq.errors import KseqError
from kseq.export.static_shapes import StaticShape
from kseq.models.seq2seq import calibration as seq2seq_calibration
from kseq.models.seq2seq.calibration import Seq2SeqCalibration

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


def test_int8_beam_search_keeps_its_bookkeeping_float(beam_run, monkeypatch):
    """The network int8, beam search's scores and ranking float: the file follows Keras's beam.
    All int8 (the bookkeeping quantized too), the same file loses it: the running
    log-probabilities need more than int8 holds."""
    report = kseq.export(beam_run, format="tflite", quantize="int8")
    assert Path(report["path"]).name == "model_int8.tflite"
    types = report["op_input_types"]
    assert "int8" in types["FULLY_CONNECTED"] and types["LOG_SOFTMAX"] == ["float32"]
    assert set(report["parity_compiled_model"]) == set(report["parity"])  # both APIs, same ids
    kept = report["parity"]["generate"]["metric"]["tokens_identical_to_keras"]
    assert kept >= 0.8

    tflite = importlib.import_module("kseq.export.tflite")  # `kseq.export.tflite` is a function
    monkeypatch.setattr(tflite, "quantize_keeping_float", lambda converter, _: converter.convert())
    report = kseq.export(
        beam_run, format="tflite", quantize="int8", output=beam_run / "all_int8.tflite"
    )
    assert report["op_input_types"]["LOG_SOFTMAX"] == ["int8"]
    assert report["parity"]["generate"]["metric"]["tokens_identical_to_keras"] <= kept - 0.5


def test_int8_with_sampling_is_refused_with_the_reason(beam_run):
    """Sampling cuts int8 logits off at a temperature and top-k: refused, naming the way out;
    nothing is written."""
    export_dir = beam_run / "export"
    before = sorted(export_dir.glob("*")) if export_dir.exists() else []
    sampling = ["decode.strategy=sampling"]
    with pytest.raises(KseqError, match="not by sampling.*decode.strategy=beam"):
        kseq.export(beam_run, format="tflite", quantize="int8", overrides=sampling)
    result = run_cli(
        "export", str(beam_run), "--quantize", "int8", "--set", "decode.strategy=sampling"
    )
    assert result.returncode == 2
    assert "--set decode.strategy=beam" in result.stderr
    assert "Traceback" not in result.stderr
    after = sorted(export_dir.glob("*")) if export_dir.exists() else []
    assert after == before


def assert_int8_keeps_attention(report):
    """Full-integer kernels, every signature on both APIs, and the decoder's attention and
    logits close to Keras's (a -1e9 padding mask left the trained date model's attention at
    cosine 0.31 and its exact match at 0.2%)."""
    assert "int8" in report["op_input_types"]["FULLY_CONNECTED"]
    assert report["op_input_types"]["SOFTMAX"] == ["int8"]  # the attention softmax is int8 too
    assert set(report["parity_compiled_model"]) == set(report["parity"])
    step = report["parity"]["decode_step"]["outputs"]
    assert step["attention"]["cosine_similarity"] >= 0.99
    assert step["logits"]["cosine_similarity"] >= 0.99
    metric = report["parity"]["generate"]["metric"]  # the task cost is reported
    assert {"exact_match_export", "token_accuracy_export", "tokens_identical_to_keras"} <= set(
        metric
    )


def test_greedy_int8_rnn_file_keeps_attention(beam_run):
    report = kseq.export(beam_run, format="tflite", quantize="int8", overrides=GREEDY)
    assert Path(report["path"]).name == "model_int8.tflite"
    assert_int8_keeps_attention(report)


def test_greedy_int8_transformer_file_keeps_attention(tmp_path):
    run_dir = kseq.train(
        SPECS / "transformer_seq2seq.yaml", output=tmp_path / "run", overrides=TINY
    )
    assert_int8_keeps_attention(kseq.export(run_dir, format="tflite", quantize="int8"))


def test_static_int8_file_of_a_beam_spec_exports_at_full_length(beam_run):
    """A static file has no `generate` (the app runs the loop), so a beam spec may have one. At
    the spec's full length the unrolled encoder's late steps are reached by few dates: without
    a calibration row spanning the width their int8 ranges were zero and XNNPACK refused the
    file."""
    report = kseq.export(beam_run, format="tflite", quantize="int8", static=StaticShape())
    full = kseq.load(beam_run).spec.data.max_source_length
    assert report["signatures"]["encode"]["inputs"]["source_ids"]["shape"] == [1, full]
    assert Path(report["path"]).name == "model_static_int8.tflite"
    assert set(report["parity"]) == {"encode", "decode_step"}
    step = report["parity"]["decode_step"]["outputs"]
    assert step["attention"]["cosine_similarity"] >= 0.99


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


def test_static_calibration_spans_the_fixed_width():
    pairs_source = [[5, 6], [7], [8, 9, 10]] * 2
    calibration = Seq2SeqCalibration(
        graph=None,
        source_ids=pairs_source,
        target_ids=[[4]] * 6,
        max_source_length=8,
        source_length=8,
    )
    (batch,) = list(calibration._batches())  # six pairs: one batch of six
    sources, _ = batch
    assert sources.shape == (6, 8)
    assert sources[0].tolist() == [5, 6, 0, 0, 0, 0, 0, 0]  # rows as they are, padded
    # the last row: the batch's sources end to end, repeated to the width
    assert sources[-1].tolist() == [5, 6, 7, 8, 9, 10, 5, 6]
