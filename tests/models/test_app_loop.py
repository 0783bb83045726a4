"""The README's app-side greedy loop over `encode` + `decode_step` gives `generate`'s ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from helpers import SPECS, readme_app_loop

import kseq

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "train.epochs=1",
    "train.steps_per_epoch=6",
    "train.batch_size=16",
    "data.synthetic.train_size=300",
    "data.synthetic.validation_size=12",
    "export.parity_samples=12",
]
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
