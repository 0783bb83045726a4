"""The app-side loops over `encode` + `decode_step` (the README's, and `kseq.decoding.app_loop`
that the export report runs) give `generate`'s ids: greedy, and beam search with its scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from helpers import SPECS, TINY_DATES, readme_app_loop

import kseq
from kseq import decoding
from kseq.decoding.app_loop import beam_app_loop
from kseq.export.parity import GATE_CHUNK_ROWS
from kseq.export.static_shapes import StaticShape
from kseq.export.summary import format_report
from kseq.models.seq2seq.app_loop_check import _in_chunks
from kseq.models.seq2seq.metrics import positional_token_accuracy

ROOT = Path(__file__).resolve().parents[3]
TINY = TINY_DATES
TEXTS = ["3/3/99", "Wednesday, the third of March, nineteen ninety-nine", "1999年3月3日"]


@pytest.mark.parametrize("spec_name", ["rnn_seq2seq_bahdanau", "transformer_seq2seq"])
def test_readme_loop_gives_generate_and_keras_ids(spec_name, tmp_path):
    spec = kseq.load_spec(SPECS / f"{spec_name}.yaml", TINY)
    run_dir = kseq.train(spec, output=tmp_path / "run")
    report = kseq.export(run_dir, format="tflite")
    _, family, _ = kseq.load_run(run_dir)
    rows = family.tokenize(run_dir, TEXTS)
    source = np.zeros((len(rows), max(map(len, rows))), np.int32)
    for row, ids in enumerate(rows):
        source[row, : len(ids)] = ids
    max_length = kseq.load(run_dir).spec.data.max_target_length  # auto, resolved

    ids = readme_app_loop()(report["path"], source, max_length)

    generate = Interpreter(model_path=report["path"]).get_signature_runner("generate")
    np.testing.assert_array_equal(ids, generate(source_ids=source)["target_ids"])
    expected = [r["output_ids"] for r in kseq.predict(run_dir, TEXTS)]
    assert [[t for t in row if t] for row in ids.tolist()] == expected
    assert sum(map(len, expected)) > 0  # the model emits tokens, so the comparison has content


def test_code_points_in_text_out_without_a_tokenizer(tmp_path):
    spec = kseq.load_spec(SPECS / "default.yaml", TINY)
    run_dir = kseq.train(spec, output=tmp_path / "run")
    report = kseq.export(run_dir, format="tflite")
    texts = TEXTS
    points = np.zeros((len(texts), max(map(len, texts))), np.int32)
    for row, text in enumerate(texts):
        points[row, : len(text)] = [ord(c) for c in text]

    runner = Interpreter(model_path=report["path"]).get_signature_runner("generate_codepoints")
    out = runner(codepoints=points)["target_codepoints"]

    assert out.shape == (len(texts), kseq.load(run_dir).spec.data.max_target_length)
    got = ["".join(chr(c) for c in row if c) for row in out.tolist()]
    expected = [r["output"] for r in kseq.predict(run_dir, texts)]
    assert got == [text.replace("<unk>", "\ufffd") for text in expected]
    assert any(got)


@pytest.fixture(scope="module")
def beam_run(tmp_path_factory):
    """The default spec (beam search, width 4) trained a few steps, its dynamic file, and held-out
    sources padded to the longest."""
    spec = kseq.load_spec(SPECS / "default.yaml", [*TINY, "decode.length_penalty=0.8"])
    run_dir = kseq.train(spec, output=tmp_path_factory.mktemp("beam") / "run")
    report = kseq.export(run_dir, format="tflite")
    # The report ran both loops over this float file: Keras's ids on every row.
    assert report["app_loop"]["sequences_identical_to_keras"] == 1.0
    assert report["app_loop"]["beam"]["sequences_identical_to_keras"] == 1.0
    spec, family, model = kseq.load_run(run_dir)
    data = family.load_data(spec, run_dir=run_dir)
    sources = data.samples["source_ids"][:12]
    return run_dir, report["path"], np.asarray(sources, np.int32)


def signatures_on_compiled_model(path):
    """`encode` / `decode_step` as callables on LiteRT's CompiledModel, outputs shaped as the
    Interpreter gives them (a static file: fixed)."""
    from kseq.export.compiled_model import load_compiled_model, run_compiled

    interpreter = Interpreter(model_path=str(path))
    compiled = load_compiled_model(Path(path).read_bytes())

    def signature(name):
        details = interpreter.get_signature_runner(name).get_output_details()
        like = {k: np.zeros(d["shape"], d["dtype"]) for k, d in details.items()}
        return lambda **inputs: run_compiled(compiled, name, inputs, like)

    return signature("encode"), signature("decode_step")


def test_beam_loops_give_generates_beam_and_keras_scores(beam_run):
    run_dir, path, sources = beam_run
    spec, family, model = kseq.load_run(run_dir)
    steps, width = spec.data.max_target_length, spec.decode.beam_width
    generate = Interpreter(model_path=path).get_signature_runner("generate")
    expected = generate(source_ids=sources)["target_ids"]  # the best beam, in the file

    readme_ids, readme_scores = readme_app_loop("beam_decode")(path, sources, steps, width, 0.8)
    np.testing.assert_array_equal(readme_ids, expected)

    runners = Interpreter(model_path=path)
    ids, scores = beam_app_loop(
        runners.get_signature_runner("encode"),
        runners.get_signature_runner("decode_step"),
        sources,
        steps,
        width,
        0.8,
        n_best=width,
    )
    np.testing.assert_array_equal(ids[:, 0], expected)
    np.testing.assert_allclose(scores[:, 0], readme_scores, rtol=1e-6)
    # Every hypothesis and score of the n-best list, as Keras's in-graph beam search gives them.
    keras = decoding.beam_search(
        family.graph(model), tf.constant(sources), steps, width, 0.8, n_best=width
    )
    np.testing.assert_array_equal(ids, keras["target_ids"].numpy())
    np.testing.assert_allclose(scores, keras["scores"].numpy(), rtol=1e-5)
    # The lists have content to compare: distinct hypotheses per source, best first.
    assert all(len({tuple(h) for h in row.tolist()}) == width for row in ids)
    assert (np.diff(scores, axis=1) <= 0).all() and (np.diff(scores, axis=1) < 0).any()


def test_beam_loop_on_a_static_file_of_batch_beam_width_on_both_apis(beam_run, tmp_path):
    run_dir, path, sources = beam_run
    spec = kseq.load(run_dir).spec
    steps, width = spec.data.max_target_length, spec.decode.beam_width
    length = spec.data.max_source_length
    padded = np.zeros((len(sources), length), np.int32)
    padded[:, : sources.shape[1]] = sources
    expected = Interpreter(model_path=path).get_signature_runner("generate")(source_ids=padded)

    report = kseq.export(run_dir, format="tflite", static=StaticShape(batch_size=width))
    interpreter = Interpreter(model_path=report["path"])
    on_interpreter = (
        interpreter.get_signature_runner("encode"),
        interpreter.get_signature_runner("decode_step"),
    )
    for encode, decode_step in (on_interpreter, signatures_on_compiled_model(report["path"])):
        ids, _ = beam_app_loop(encode, decode_step, padded, steps, width, 0.8, batch_size=width)
        np.testing.assert_array_equal(ids[:, 0], expected["target_ids"])
    # The report scored both loops on this file, beside Keras's decoding of the same rows.
    app_loop = report["app_loop"]
    assert app_loop["sequences_identical_to_keras"] == 1.0
    assert app_loop["beam"]["sequences_identical_to_keras"] == 1.0
    assert app_loop["beam"]["beam_width"] == width
    # A batch that holds no whole beams: greedy only, and the report says why.
    report = kseq.export(run_dir, format="tflite", static=StaticShape(batch_size=3))
    assert report["app_loop"]["beam"].startswith("not run: a batch of 3 holds no 4 beams")


@pytest.mark.parametrize("quantize", ["float16", "int8"])
def test_readme_loop_on_quantized_files_is_the_loop_the_report_scores(quantize, tmp_path):
    """float16: the README's loop gives `generate`'s ids. int8: it may not (the state is
    requantized between calls, as the README says), and the report scores that very loop: its
    figures are the README loop's on the same rows, every one: 70 of them, which the report
    decodes in calls of `GATE_CHUNK_ROWS` and the README loop in one."""
    held_out = "data.synthetic.validation_size=70"
    spec = kseq.load_spec(SPECS / "rnn_seq2seq_bahdanau.yaml", [*TINY, held_out])
    run_dir = kseq.train(spec, output=tmp_path / "run")
    report = kseq.export(run_dir, format="tflite", quantize=quantize)
    spec, family, model = kseq.load_run(run_dir)
    data = family.load_data(spec, run_dir=run_dir)
    sources = np.asarray(data.samples["source_ids"], np.int32)  # the gate's rows
    steps = spec.data.max_target_length

    ids = readme_app_loop()(report["path"], sources, steps)

    rows = [[t for t in row if t] for row in ids.tolist()]
    truth = [t for _, t in data.info.validation_ids[: len(rows)]]
    app_loop = report["app_loop"]
    assert app_loop["rows"] == len(rows) == 70 > GATE_CHUNK_ROWS
    assert app_loop["token_accuracy_export"] == pytest.approx(
        positional_token_accuracy(rows, truth), abs=1e-12
    )
    generate = Interpreter(model_path=report["path"]).get_signature_runner("generate")
    if quantize == "float16":
        np.testing.assert_array_equal(ids, generate(source_ids=sources)["target_ids"])
    assert "greedy app loop" in format_report(report).splitlines()[1]


def test_the_report_decodes_held_out_rows_in_bounded_calls():
    """All 6,246 CMUdict test words in one call held 24 GB in a Transformer's decoding; the
    check calls on `GATE_CHUNK_ROWS` rows (a multiple of a static file's batch), rows in order,
    whatever width each call's ids have."""
    sources = np.arange(150)[:, None] * np.ones((1, 3), np.int32)
    calls = []

    def decode(rows):
        calls.append(len(rows))
        return rows[:, : len(calls)]  # each call stops at another width

    rows = _in_chunks(decode, sources, None)
    assert calls == [GATE_CHUNK_ROWS, GATE_CHUNK_ROWS, 150 - 2 * GATE_CHUNK_ROWS]
    assert [int(r[0]) for r in rows] == list(range(150))
    assert [len(r) for r in rows] == [1] * 64 + [2] * 64 + [3] * 22  # GATE_CHUNK_ROWS is 64

    calls.clear()
    _in_chunks(decode, sources, 5)
    assert calls == [60, 60, 30]
    calls.clear()
    _in_chunks(decode, sources, 100)
    assert calls == [100, 50]
