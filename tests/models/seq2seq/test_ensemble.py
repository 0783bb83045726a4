"""`kseq ensemble`: members of one spec as one model that averages their next-token
log-probabilities, checked against numpy, decoded, exported and refused when members differ."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml
from ai_edge_litert.interpreter import Interpreter
from helpers import FAST, SPECS, TINY_DATES, run_cli

import kseq
from kseq.models.family import family_for
from kseq.models.seq2seq.ensemble import EnsembleGraph, ensemble_model, members
from kseq.models.seq2seq.pairs import pad_ids
from kseq.tokenizers.special_tokens import BOS_ID

TINY = TINY_DATES
TEXTS = ["3/3/99", "Wednesday, the third of March, nineteen ninety-nine", "12 Oct 2001"]


def log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _members(spec_name: str, count: int = 3):
    specs = [
        kseq.load_spec(SPECS / f"{spec_name}.yaml", [*TINY, f"train.seed={seed}"])
        for seed in range(1, count + 1)
    ]
    return family_for(specs[0]), [kseq.build(spec) for spec in specs]


@pytest.mark.parametrize("spec_name", ["rnn_seq2seq_bahdanau", "transformer_seq2seq"])
def test_each_step_is_the_mean_of_the_members_log_probabilities(spec_name):
    family, models = _members(spec_name)
    graph = family.graph(ensemble_model(models))
    assert isinstance(graph, EnsembleGraph) and len(graph.graphs) == 3
    alone = [family.network_graph(model) for model in models]
    source = tf.constant([[5, 6, 7, 8, 0], [9, 10, 11, 0, 0]], tf.int32)

    encoded = graph.encode(source)
    state = graph.initial_state(encoded)
    own_encoded = [g.encode(source) for g in alone]
    own_state = [g.initial_state(e) for g, e in zip(alone, own_encoded, strict=True)]
    tokens = tf.constant([BOS_ID, BOS_ID], tf.int32)
    for _ in range(4):
        logits, state, attention = graph.step(tokens, state, encoded)
        member_logits, member_attention = [], []
        for index, g in enumerate(alone):
            step_logits, own_state[index], step_attention = g.step(
                tokens, own_state[index], own_encoded[index]
            )
            member_logits.append(np.asarray(step_logits, np.float64))
            member_attention.append(np.asarray(step_attention))
        # The members disagree, so the mean is not any one of them.
        assert np.abs(member_logits[0] - member_logits[1]).max() > 1e-3
        expected = np.mean([log_softmax(x) for x in member_logits], axis=0)
        np.testing.assert_allclose(np.asarray(logits), expected, atol=2e-5)
        np.testing.assert_allclose(
            np.asarray(attention), np.mean(member_attention, axis=0), atol=1e-6
        )
        tokens = tf.constant(expected.argmax(axis=-1).astype(np.int32))


def test_the_model_averages_teacher_forced_log_probabilities():
    family, models = _members("rnn_seq2seq_bahdanau", count=2)
    model = ensemble_model(models)
    assert members(model) == [model.get_layer("member_0"), model.get_layer("member_1")]
    inputs = {
        "source": np.array([[5, 6, 7, 0], [8, 9, 0, 0]], np.int32),
        "target_in": np.array([[BOS_ID, 5, 6], [BOS_ID, 7, 0]], np.int32),
    }
    expected = np.mean(
        [log_softmax(np.asarray(m(inputs, training=False), np.float64)) for m in models], axis=0
    )
    np.testing.assert_allclose(np.asarray(model(inputs, training=False)), expected, atol=2e-5)
    graph = family.graph(model)  # the decoders' view gives the same teacher-forced numbers
    logits, _ = graph.teacher_forced(
        tf.constant(inputs["source"]), tf.constant(inputs["target_in"])
    )
    np.testing.assert_allclose(np.asarray(logits), expected, atol=2e-5)
    assert graph.vocab_size == models[0].output.shape[-1]
    assert members(models[0]) == []  # a single model is not an ensemble


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny runs of one spec with different seeds, and their ensemble."""
    folder = tmp_path_factory.mktemp("ensemble")
    spec = SPECS / "rnn_seq2seq_bahdanau.yaml"
    dirs = [kseq.train(spec, folder / f"seed{s}", [*TINY, f"train.seed={s}"]) for s in (1, 2)]
    result = run_cli("ensemble", *map(str, dirs), "--output", str(folder / "both"))
    assert result.returncode == 0, result.stderr
    assert f"kseq: ensemble of 2 runs written to {folder / 'both'}" in result.stdout
    return folder, dirs, folder / "both"


def test_the_ensemble_run_holds_the_members_weights_and_loads_in_plain_keras(runs):
    _, dirs, both = runs
    model = keras.saving.load_model(both / "model.keras", safe_mode=True)
    for member, run_dir in zip(members(model), dirs, strict=True):
        alone = kseq.load(run_dir).model
        for a, b in zip(member.get_weights(), alone.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    metrics = kseq.evaluate(both)
    assert metrics["examples"] == 12 and 0.0 <= metrics["exact_match"] <= 1.0


def test_predict_decodes_the_averaged_steps_and_the_tflite_gives_kerass_ids(runs):
    _, _, both = runs
    spec, family, model = kseq.load_run(both)
    predicted = kseq.predict(both, TEXTS)
    # Greedy decoding by hand over the members' own graphs, averaged in numpy.
    alone = [family.network_graph(m) for m in members(model)]
    source = pad_ids([row["source_ids"] for row in predicted])
    encoded = [g.encode(tf.constant(source)) for g in alone]
    state = [g.initial_state(e) for g, e in zip(alone, encoded, strict=True)]
    tokens = np.full(len(TEXTS), BOS_ID, np.int32)
    rows, done = [[] for _ in TEXTS], np.zeros(len(TEXTS), bool)
    for _ in range(spec.data.max_target_length):
        logits = []
        for index, g in enumerate(alone):
            step, state[index], _ = g.step(tf.constant(tokens), state[index], encoded[index])
            logits.append(log_softmax(np.asarray(step, np.float64)))
        scores = np.mean(logits, axis=0)
        scores[:, [0, BOS_ID]] = -np.inf  # padding and bos are never emitted
        tokens = scores.argmax(axis=-1).astype(np.int32)
        for row, token in enumerate(tokens):
            if not done[row]:
                done[row] = token == 3  # eos
                if not done[row]:
                    rows[row].append(int(token))
    assert [p["output_ids"] for p in predicted] == rows
    assert sum(map(len, rows)) > 0

    report = kseq.export(both, format="tflite")
    interpreter = Interpreter(model_path=report["path"])
    # The decoding loop inside; the app-loop signatures stay in the SavedModel (see
    # `seq2seq_endpoints`: CompiledModel cannot resize the members' encoders side by side).
    assert set(interpreter.get_signature_list()) == {"generate", "generate_codepoints"}
    assert report["parity_compiled_model"]["generate"]["batch_sizes"] == [12, 1]
    ids = interpreter.get_signature_runner("generate")(source_ids=source)["target_ids"]
    assert [[t for t in row if t] for row in ids.tolist()] == rows
    saved = kseq.export(both, format="saved_model")
    assert {"generate", "encode", "decode_step"} <= set(saved["parity"])


def test_members_of_different_models_or_kinds_are_refused(runs, tmp_path):
    folder, dirs, both = runs
    wider = tmp_path / "wider"
    shutil.copytree(dirs[1], wider)
    spec = yaml.safe_load((wider / "spec.yaml").read_text())
    spec["model"]["attention"]["units"] += 1
    (wider / "spec.yaml").write_text(yaml.safe_dump(spec))
    result = run_cli("ensemble", str(dirs[0]), str(wider), "--output", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert "model.attention.units is" in result.stderr and "share one spec's model" in result.stderr

    result = run_cli("ensemble", str(dirs[0]), "--output", str(tmp_path / "out"))
    assert result.returncode == 2 and "give 2 to 16 member RUN_DIRs, got 1" in result.stderr

    result = run_cli("ensemble", str(both), str(dirs[0]), "--output", str(tmp_path / "out"))
    assert result.returncode == 2 and "already an ensemble" in result.stderr

    autoencoder = kseq.train(SPECS / "autoencoder_dense.yaml", tmp_path / "ae", FAST)
    result = run_cli("ensemble", str(autoencoder), str(dirs[0]), "--output", str(tmp_path / "o"))
    assert result.returncode == 2 and "combines sequence-to-sequence runs" in result.stderr

    result = run_cli("ensemble", *map(str, dirs), "--output", str(both))
    assert result.returncode == 2 and "--overwrite" in result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "o").exists()


def test_a_static_file_holds_the_app_loop_signatures(runs):
    from kseq.export.static_shapes import StaticShape

    _, _, both = runs
    report = kseq.export(both, format="tflite", static=StaticShape(1, 16, 8))
    assert set(report["parity"]) == {"encode", "decode_step"}
    assert set(report["parity_compiled_model"]) == {"encode", "decode_step"}


def test_set_changes_the_ensembles_spec(runs, tmp_path):
    _, dirs, _ = runs
    out = tmp_path / "beam"
    result = run_cli(
        *["ensemble", *map(str, dirs), "--output", str(out)], "--set", "decode.strategy=beam"
    )
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load((out / "spec.yaml").read_text())["decode"]["strategy"] == "beam"
    record = json.loads((out / "ensemble.json").read_text())
    assert [m["run_dir"] for m in record["members"]] == [str(d.resolve()) for d in dirs]
    assert [m["seed"] for m in record["members"]] == [1, 2]
