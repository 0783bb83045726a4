"""RNN seq2seq on the one path: example specs train, predict, evaluate and export in the gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from helpers import SPECS, run_cli

import kseq
from kseq.models.family import family_for

TINY = [
    "train.epochs=1",
    "train.steps_per_epoch=3",
    "train.batch_size=16",
    "data.synthetic.train_size=300",
    "data.synthetic.validation_size=12",
    "export.parity_samples=12",
]
RNN_SPECS = [*sorted(SPECS.glob("rnn_seq2seq_*.yaml")), SPECS / "default.yaml"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny trained Bahdanau run shared by the prediction and CLI tests."""
    spec = kseq.load_spec(SPECS / "rnn_seq2seq_bahdanau.yaml", TINY)
    return kseq.train(spec, output=tmp_path_factory.mktemp("s2s") / "run")


@pytest.mark.parametrize("spec_path", RNN_SPECS, ids=lambda p: p.stem)
def test_example_spec_trains_and_exports_within_the_gate(spec_path, tmp_path):
    spec = kseq.load_spec(spec_path, TINY)
    run_dir = kseq.train(spec, output=tmp_path / "run")
    assert (run_dir / "assets" / "source_tokenizer" / "vocab.txt").is_file()
    report = kseq.export(run_dir, format="tflite")
    generate = report["parity"]["generate"]
    assert generate["outputs"]["target_ids"]["equal_fraction"] == 1.0
    assert generate["metric"]["sequences_identical_to_keras"] == 1.0
    assert sorted(generate["batch_sizes"]) == [1, 12]
    # char on both sides: code points in and out too; every signature also on CompiledModel.
    assert set(report["signatures"]) == {"generate", "encode", "decode_step", "generate_codepoints"}
    for name in ("generate", "generate_codepoints"):
        outputs = report["parity_compiled_model"][name]["outputs"]
        assert all(f["equal_fraction"] == 1.0 for f in outputs.values())
    assert "WHILE" in report["ops"]
    assert not any(op.startswith("Flex") for op in report["ops"])


def test_tflite_generate_matches_keras_decoding_for_mixed_lengths(trained):
    spec, family, model = kseq.load_run(trained)
    report = kseq.export(trained, format="tflite")
    texts = ["3/3/99", "Wednesday, the third of March, nineteen ninety-nine", "1999年3月3日"]
    expected = [r["output_ids"] for r in kseq.predict(trained, texts)]
    ids = family.tokenize(trained, texts)
    batch = np.zeros((3, max(map(len, ids))), np.int32)
    for row, seq in enumerate(ids):
        batch[row, : len(seq)] = seq
    runner = Interpreter(model_path=report["path"]).get_signature_runner("generate")
    out = runner(source_ids=batch)["target_ids"]
    assert out.shape == (3, kseq.load(trained).spec.data.max_target_length)  # auto, resolved
    for row, want in zip(out, expected, strict=True):
        got = row.tolist()
        got = got[: got.index(3)] if 3 in got else [t for t in got if t]
        assert got == want


def test_saved_model_translate_is_strings_in_strings_out(trained):
    import tensorflow as tf

    report = kseq.export(trained, format="saved_model")
    assert report["parity"]["translate"]["outputs"]["translation"]["equal_fraction"] == 1.0
    loaded = tf.saved_model.load(report["path"])
    texts = ["March 3, 1999", "1999年3月3日"]
    out = loaded.signatures["translate"](text=tf.constant(texts))["translation"].numpy()
    assert [o.decode() for o in out] == [r["output"] for r in kseq.predict(trained, texts)]


def test_predict_evaluate_and_beam(trained):
    rows = kseq.predict(trained, ["3rd of March 1999", ""])
    assert {"input", "output", "source_ids", "output_ids"} <= set(rows[0])
    assert rows[1]["source_ids"] == []
    tokenizer = family_for(kseq.load_run(trained)[0]).load_tokenizers(trained).target
    assert rows[0]["output"] == tokenizer.decode(rows[0]["output_ids"])
    metrics = kseq.evaluate(trained)
    assert set(metrics) >= {"loss", "token_accuracy", "exact_match", "bleu"}
    assert 0.0 <= metrics["exact_match"] <= 1.0
    beam = kseq.predict(trained, ["3rd of March 1999"], "beam", beam_width=3, n_best=2)[0]
    scores = [item["score"] for item in beam["n_best"]]
    assert len(scores) == 2 and scores[0] >= scores[1]


def test_evaluate_metrics_on_hand_made_references(trained, tmp_path):
    """References built from the model's own outputs: two kept, one with a character changed, one
    with a character added, so exact match and token error rate are known before evaluating."""
    sources = ["3rd of March 1999", "1999年3月3日", "May 5, 2001", "12/24/1987"]
    outputs = [row["output"] for row in kseq.predict(trained, sources)]
    assert all(outputs)
    changed = ("1" if outputs[2][0] != "1" else "2") + outputs[2][1:]
    references = [outputs[0], outputs[1], changed, outputs[3] + "0"]
    data = tmp_path / "pairs.tsv"
    data.write_text("".join(f"{s}\t{t}\n" for s, t in zip(sources, references, strict=True)))
    metrics = kseq.evaluate(trained, data=str(data))
    assert metrics["examples"] == 4
    assert metrics["exact_match"] == 0.5
    # char tokenizer: one substitution + one deletion over every reference character
    assert metrics["token_error_rate"] == pytest.approx(2 / sum(map(len, references)))


def test_cli_predict_tokenize_and_plot(trained, tmp_path):
    result = run_cli("predict", str(trained), "--format", "json", stdin="3/3/99\n1999年3月3日\n")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["input"] for line in lines] == ["3/3/99", "1999年3月3日"]
    result = run_cli("predict", str(trained), "--format", "tsv", stdin="3/3/99\n1999年3月3日\n")
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert rows == [[line["input"], line["output"]] for line in lines]
    result = run_cli("tokenize", str(trained), "3/3/99", "年")
    assert result.returncode == 0, result.stderr
    ids = family_for(kseq.load_run(trained)[0]).tokenize(trained, ["3/3/99", "年"])
    assert result.stdout.splitlines() == [" ".join(map(str, row)) for row in ids]
    png = tmp_path / "attention.png"
    result = run_cli("plot-attention", str(trained), "3 March 1999", "--output", str(png))
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_predict_warns_of_unknown_input_and_prints_the_n_best(trained):
    result = run_cli("predict", str(trained), "3/3/99", "⟁3 ⟁/99☃")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "kseq: warning: input 2 ('⟁3 ⟁/99☃'): '⟁', '☃' not in the source vocabulary "
        "(read as unknown)"
    ]
    beams = run_cli(
        "predict", str(trained), "3/3/99", "4 May 2001", "--strategy", "beam", "--n-best", "3"
    )
    assert beams.returncode == 0, beams.stderr
    expected = kseq.predict(trained, ["3/3/99", "4 May 2001"], "beam", n_best=3)
    lines = beams.stdout.splitlines()
    assert len(lines) == 2  # one line per input
    for line, want in zip(lines, expected, strict=True):
        hypotheses = line.split("\t")
        assert len(hypotheses) == 3
        assert hypotheses == [f"{h['output']} ({h['score']:.3f})" for h in want["n_best"]]
        assert hypotheses[0].startswith(want["output"] + " (")


def test_user_tsv_files_with_set_overrides(tmp_path):
    pairs = [(f"{d} March 2001", f"2001-03-{d:02d}") for d in range(1, 29)]
    (tmp_path / "train.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in pairs[:24]))
    (tmp_path / "valid.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in pairs[24:]))
    overrides = [
        *TINY,
        f"data.train={tmp_path / 'train.tsv'}",
        f"data.validation={tmp_path / 'valid.tsv'}",
    ]
    spec = kseq.load_spec(SPECS / "rnn_seq2seq_luong_general.yaml", overrides)
    data = family_for(spec).load_data(spec)
    assert [s for s, _ in data.info.validation_pairs] == [s for s, _ in pairs[24:]]
    run_dir = kseq.train(spec, output=tmp_path / "run")
    assert kseq.evaluate(run_dir)["examples"] == 4


def test_bad_lines_are_located_and_policy_applies(tmp_path):
    (tmp_path / "bad.tsv").write_text("one\tuno\nno tab here\ntwo\tdos\n")
    spec = kseq.load_spec(
        SPECS / "rnn_seq2seq_none.yaml", [f"data.train={tmp_path / 'bad.tsv'}", *TINY]
    )
    with pytest.raises(kseq.KseqError, match=r"bad.tsv:2: "):
        family_for(spec).load_data(spec)


def test_padding_invariant_decoding(trained):
    spec, family, model = kseq.load_run(trained)
    ids = family.tokenize(trained, ["3 March 1999"])[0]
    alone = family.decode_ids(model, spec, [ids])[0]["target_ids"]
    longer = family.tokenize(trained, ["Wednesday, the third of March, nineteen ninety-nine"])[0]
    together = family.decode_ids(model, spec, [ids, longer])[0]["target_ids"]
    np.testing.assert_array_equal(alone, together)


def test_spec_errors_for_seq2seq(tmp_path):
    with pytest.raises(kseq.KseqError, match="model.attention.score: dot scores need"):
        kseq.load_spec(
            {
                "model": {
                    "type": "rnn_seq2seq",
                    "encoder": {"units": 32, "bidirectional": True},
                    "decoder": {"units": 48},
                    "attention": {"type": "luong", "score": "dot"},
                }
            }
        )
    with pytest.raises(kseq.KseqError, match="decode.beam_width: out of range"):
        kseq.load_spec({"model": {"type": "rnn_seq2seq"}, "decode": {"beam_width": 0}})
    assert Path(SPECS / "rnn_seq2seq_none.yaml").is_file()


def test_attention_weights_as_an_extra_model_output(trained):
    spec, family, model = kseq.load_run(trained)
    both = family.attention_model(model)
    source = np.array([[9, 8, 7, 0, 0], [5, 6, 7, 8, 9]], np.int32)
    target_in = np.array([[2, 5, 6], [2, 7, 8]], np.int32)
    out = both({"source": source, "target_in": target_in})
    logits = model({"source": source, "target_in": target_in})
    np.testing.assert_array_equal(np.asarray(out["logits"]), np.asarray(logits))
    weights = np.asarray(out["attention"])
    assert weights.shape == (2, 3, 5)
    assert np.all(weights[0, :, 3:] == 0.0)  # padded source positions get exactly zero
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
