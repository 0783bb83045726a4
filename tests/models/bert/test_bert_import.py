"""`import_hf_bert`: a tiny random HF checkpoint must compute exactly what BERT computes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from bert_helpers import (
    HF_CONFIG,
    VOCAB,
    numpy_bert,
    numpy_mlm,
    random_hf_tensors,
    write_hf_checkpoint,
)

import kseq
from kseq.errors import KseqError
from kseq.importers import import_hf_bert
from kseq.models.bert.network import backbone_of


def _batch(seed=0, batch=3, length=9):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, HF_CONFIG["vocab_size"], (batch, length)).astype(np.int32)
    ids[:, 0] = 2
    segments = np.zeros_like(ids)
    segments[:, 5:] = 1
    mask = np.ones_like(ids)
    mask[1, 6:] = 0  # a padded row
    mask[2, 4:] = 0
    ids[mask == 0] = 0
    return ids, segments, mask


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    tensors = random_hf_tensors(HF_CONFIG, seed=3)
    directory = write_hf_checkpoint(tmp_path_factory.mktemp("hf") / "tiny-bert", tensors=tensors)
    return directory, tensors


def test_backbone_matches_a_numpy_bert_within_1e_5(checkpoint, tmp_path):
    directory, tensors = checkpoint
    run = import_hf_bert(directory, tmp_path / "run", head="none")
    spec, _, model = kseq.load_run(run)
    assert spec.model.layer_norm_epsilon == HF_CONFIG["layer_norm_eps"]
    assert spec.model.activation == "gelu" and spec.model.head.type == "none"
    ids, segments, mask = _batch()
    got = model({"token_ids": ids, "segment_ids": segments, "padding_mask": mask})
    sequence, pooled = numpy_bert(tensors, HF_CONFIG, ids, segments, mask)
    real = mask.astype(bool)
    diff = np.abs(np.asarray(got["sequence_output"]) - sequence)[real]
    assert diff.max() <= 1e-5, diff.max()
    np.testing.assert_allclose(got["pooled_output"], pooled, atol=1e-5)
    assert np.abs(sequence).max() > 0.5  # not a trivially small signal
    report = json.loads((run / "import.json").read_text())
    assert report["head"] == "none" and report["tensors_ignored"] == [
        k.removeprefix("bert.")
        for k in sorted(tensors)
        if k.startswith("cls.") and k != "cls.predictions.decoder.weight"
    ]


def test_masked_lm_head_is_imported_and_tied(checkpoint, tmp_path):
    directory, tensors = checkpoint
    run = import_hf_bert(directory, tmp_path / "run")  # auto: the checkpoint has cls.*
    spec, _, model = kseq.load_run(run)
    assert spec.model.head.type == "masked_lm"
    ids, segments, mask = _batch(seed=1)
    positions = np.array([[1, 3], [2, 5], [1, 1]], np.int32)
    inputs = {"token_ids": ids, "segment_ids": segments, "padding_mask": mask}
    got = model({**inputs, "mask_positions": positions})["logits"]
    sequence, _ = numpy_bert(tensors, HF_CONFIG, ids, segments, mask)
    expected = numpy_mlm(tensors, HF_CONFIG, sequence, positions)
    np.testing.assert_allclose(got, expected, atol=1e-5 * max(1.0, np.abs(expected).max()))
    backbone = backbone_of(model)(inputs)["sequence_output"]
    np.testing.assert_allclose(np.asarray(backbone)[mask > 0], sequence[mask > 0], atol=1e-5)


def test_tokenizer_options_and_vocab_are_kept(tmp_path):
    directory = write_hf_checkpoint(tmp_path / "cased", lowercase=False)
    run = import_hf_bert(directory, tmp_path / "run")
    spec = kseq.load_spec(run / "spec.yaml")
    assert spec.data.tokenizer.lowercase is False
    assert (run / "assets" / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1] == VOCAB
    assert kseq.api.tokenize(run, ["café Café"]) == [[2, 7, 1, 3]]  # cased: accents kept


def test_bad_checkpoints_fail_cleanly_and_write_nothing(tmp_path):
    tensors = random_hf_tensors(HF_CONFIG, mlm=False)
    del tensors["bert.encoder.layer.1.output.dense.bias"]
    directory = write_hf_checkpoint(tmp_path / "broken", tensors=tensors)
    with pytest.raises(KseqError, match=r"missing tensor\(s\) encoder.layer.1.output.dense.bias"):
        import_hf_bert(directory, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run")]  # no staging left

    config = {**HF_CONFIG, "hidden_act": "swish"}
    with pytest.raises(KseqError, match="hidden_act 'swish' is not supported"):
        import_hf_bert(write_hf_checkpoint(tmp_path / "act", config=config), tmp_path / "run")
    with pytest.raises(KseqError, match="has no masked_lm head"):
        import_hf_bert(write_hf_checkpoint(tmp_path / "plain", tensors=tensors | {
            "bert.encoder.layer.1.output.dense.bias": np.zeros(12, np.float32)
        }), tmp_path / "run", head="masked_lm")  # fmt: skip
    with pytest.raises(KseqError, match="no model.safetensors"):
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "config.json").write_text("{}")
        import_hf_bert(tmp_path / "empty", tmp_path / "run")


def test_imported_encoder_exports_to_builtin_tflite(checkpoint, tmp_path):
    directory, _ = checkpoint
    run = import_hf_bert(directory, tmp_path / "run", head="none")
    report = kseq.export(run, format="tflite", overrides=["export.parity_samples=4"])
    outputs = report["parity"]["serving_default"]["outputs"]
    assert outputs["sequence_output"]["max_abs_diff"] <= 1e-4
    assert report["signatures"]["serving_default"]["inputs"]["token_ids"]["shape"] == [None, None]


def test_cli_import_then_export_fixed_length(tmp_path):
    from helpers import run_cli

    directory = write_hf_checkpoint(tmp_path / "hf", tensors=random_hf_tensors(HF_CONFIG, seed=5))
    run_dir = tmp_path / "imported"
    result = run_cli("import", "hf-bert", str(directory), "--output", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert (run_dir / "model.keras").is_file() and (run_dir / "spec.yaml").is_file()
    result = run_cli("import", "hf-bort", str(directory), "--output", str(tmp_path / "x"))
    assert result.returncode == 2 and "did you mean 'hf-bert'?" in result.stderr
    report = kseq.export(run_dir, format="tflite", sequence_length=16)
    inputs = report["signatures"]["serving_default"]["inputs"]
    for name in ("token_ids", "segment_ids", "padding_mask"):
        assert inputs[name]["shape"] == [None, 16], inputs
    with pytest.raises(KseqError, match="no sequence axis"):
        kseq.export(
            kseq.train(
                kseq.load_spec(
                    {"model": {"type": "autoencoder"}, "data": {"synthetic": {"samples": 16}}},
                    ["train.epochs=1"],
                ),
                output=tmp_path / "ae",
            ),
            sequence_length=8,
        )
