"""The BERT family end to end: every example spec trains, saves, exports and predicts."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import yaml
from helpers import FAST, SPECS

import kseq
from kseq.errors import KseqError
from kseq.models.bert.fine_tuning import peak_learning_rate
from kseq.models.bert.network import backbone_of, learning_rate_factors
from kseq.spec.errors import SpecError

TINY = [
    *FAST,
    "data.synthetic.train_size=64",
    "data.synthetic.validation_size=12",
    "export.parity_samples=8",
    "export.calibration_samples=8",
    "train.tensorboard=false",
    "train.verbose=0",
]
RUNS = {
    "classification": ("bert_classification.yaml", ["data.synthetic.task=sentiment_pairs"]),
    "token_classification": ("bert_token_classification.yaml", []),
    "span_qa": ("bert_span_qa.yaml", []),
    "masked_lm": ("bert_masked_lm.yaml", []),
}
PREDICT = {
    "classification": ["A wonderful café!\tThe museum was dull.", "Great.\tSuperb!"],
    "token_classification": ["José García bought 3 apples in Paris ."],
    "span_qa": ["When was Anna Rossi born?\tAnna Rossi was born on May 3, 1999 in Lima ."],
    "masked_lm": ["the [MASK] jumped over the [MASK] every morning."],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bert-runs")
    out = {}

    def get(head):
        if head not in out:
            spec, extra = RUNS[head]
            out[head] = kseq.train(SPECS / spec, output=root / head, overrides=[*TINY, *extra])
        return out[head]

    return get


def _inputs(run, spec, family, model):
    data = family.load_data(spec, run_dir=run)
    return data, {k: v for k, v in data.samples.items()}


@pytest.mark.parametrize("head", list(RUNS))
def test_example_spec_trains_saves_exports_and_predicts(runs, head, tmp_path):
    run = runs(head)
    assert (run / "assets" / "vocab.txt").is_file()
    has_labels = head in ("classification", "token_classification")
    assert (run / "assets" / "labels.json").is_file() == has_labels
    history = json.loads((run / "history.json").read_text())
    assert np.isfinite(history[0]["loss"])

    # .keras safe-mode save/load: identical outputs.
    spec, family, model = kseq.load_run(run)
    data, samples = _inputs(run, spec, family, model)
    expected = {k: np.asarray(v) for k, v in model(samples).items()}
    model.save(tmp_path / "again.keras")
    again = keras.saving.load_model(tmp_path / "again.keras", safe_mode=True, compile=False)
    for key, value in again(samples).items():
        np.testing.assert_array_equal(np.asarray(value), expected[key])

    # Builtin-only TFLite within the fp32 gate, on the plain interpreter.
    report = kseq.export(run, format="tflite")
    assert report["interpreter"].endswith("Interpreter")
    for name, figures in report["parity"]["serving_default"]["outputs"].items():
        if figures["compare"] == "exact":
            assert figures["equal_fraction"] == 1.0, name
        else:
            assert figures["max_abs_diff"] <= 1e-4, name
    assert report["signatures"]["serving_default"]["inputs"]["token_ids"]["shape"] == [None, None]

    metrics = kseq.evaluate(run)
    assert metrics["examples"] > 0 and np.isfinite(metrics["loss"])
    results = kseq.api.predict(run, PREDICT[head])
    assert len(results) == len(PREDICT[head])
    first = results[0]
    if head == "classification":
        assert first["label"] in ("same", "different")
        assert sum(first["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    elif head == "token_classification":
        assert len(first["tags"]) == len(first["tokens"]) == 8
        assert set(first["tags"]) <= set(
            json.loads((run / "assets/labels.json").read_text())["labels"]
        )
    elif head == "span_qa":
        context = PREDICT[head][0].split("\t")[1]
        assert first["answer"] and context[first["start"] : first["end"]] == first["answer"]
        assert first["n_best"][0]["text"] == first["answer"] and first["windows"] == 1
        assert 0 <= metrics["exact_match"] <= metrics["f1"] <= 1
    else:
        assert len(first["predictions"]) == 2 and "perplexity" in metrics
    ids = kseq.api.tokenize(run, ["déjà vu"])[0]
    assert ids[0] == 2 and ids[-1] == 3  # [CLS] ... [SEP]


def test_saved_model_text_endpoint_uses_the_exact_tokenizer(runs):
    report = kseq.export(runs("classification"), format="saved_model", part="text")
    text = report["parity"]["serving_text"]["outputs"]
    assert text["token_ids"]["equal_fraction"] == 1.0
    assert set(report["signatures"]["serving_text"]["inputs"]) == {"text", "text_pair"}


def test_with_tokenizer_tflite_runs_on_the_custom_op_interpreter(runs, tmp_path):
    report = kseq.export(
        runs("span_qa"), format="tflite", output=tmp_path / "qa.tflite", part="with_tokenizer"
    )
    assert report["interpreter"].startswith("ai_edge_litert.interpreter.InterpreterWithCustomOps")
    assert set(report["requires_custom_ops"]) >= {"FastWordpieceTokenizeWithOffsets"}
    outputs = report["parity"]["with_tokenizer"]["outputs"]
    assert outputs["token_ids"]["equal_fraction"] == 1.0  # FastBertTokenizer == Python here
    assert outputs["answer_start"]["equal_fraction"] == 1.0
    assert outputs["start_logits"]["max_abs_diff"] <= 1e-4
    assert set(report["signatures"]["with_tokenizer"]["inputs"]) == {"question", "context"}


def test_fixed_sequence_length_endpoints(runs, tmp_path):
    from kseq.export import write_saved_model, write_tflite

    run = runs("masked_lm")
    spec, family, model = kseq.load_run(run)
    data = family.load_data(spec, run_dir=run)
    endpoints = family.endpoints(model, spec, data, "full", sequence_length=24)
    write_saved_model(endpoints, tmp_path / "sm", track=model)
    report = write_tflite(endpoints, tmp_path / "sm", tmp_path / "fixed.tflite")
    inputs = report["signatures"]["serving_default"]["inputs"]
    assert inputs["token_ids"]["shape"] == [None, 24]
    assert inputs["mask_positions"]["shape"] == [None, spec.model.head.max_predictions]
    assert report["parity"]["serving_default"]["outputs"]["logits"]["max_abs_diff"] <= 1e-4
    with pytest.raises(KseqError, match="sequence-length"):
        family.endpoints(model, spec, data, "full", sequence_length=1000)
    encoder = family.endpoints(model, spec, data, "encoder")
    assert [ep.name for ep in encoder] == ["encode"]


def test_domain_adaptation_starts_from_a_run_freezes_and_decays(runs, tmp_path):
    source = runs("masked_lm")
    _, _, source_model = kseq.load_run(source)
    spec = kseq.load_spec(
        SPECS / "bert_domain_adaptation.yaml",
        [*TINY, f"model.init.from={source}", "model.hidden_size=32", "model.freeze.layers=1"],
    )
    run = kseq.train(spec, output=tmp_path / "adapted")
    adapted_spec, _, model = kseq.load_run(run)
    assert adapted_spec.model.hidden_size == 64  # the architecture comes from init.from
    assert (run / "assets" / "vocab.txt").read_text() == (source / "assets/vocab.txt").read_text()
    for name in ("token_embedding", "position_embedding", "transformer_layer_0"):
        for a, b in zip(model.get_layer(name).weights, source_model.get_layer(name).weights,
                        strict=True):  # fmt: skip
            np.testing.assert_array_equal(a.numpy(), b.numpy())  # frozen: copied, unchanged
    changed = [
        not np.array_equal(a.numpy(), b.numpy())
        for a, b in zip(model.get_layer("transformer_layer_1").weights,
                        source_model.get_layer("transformer_layer_1").weights, strict=True)
    ]  # fmt: skip
    assert any(changed)
    assert not model.get_layer("token_embedding").trainable
    factors = learning_rate_factors(model, 0.8)
    assert factors["mlm_transform"] == 1.0
    assert factors["transformer_layer_1"] == pytest.approx(0.8)
    assert factors["transformer_layer_0"] == pytest.approx(0.64)
    assert factors["token_embedding"] == pytest.approx(0.512)


def test_init_from_keeps_the_users_window(runs, tmp_path, capsys):
    """With init.from the window is the spec's: the model keeps the checkpoint's first position
    rows; the other architecture fields are the checkpoint's; a window longer than the
    checkpoint's table is a located spec error."""
    source = runs("masked_lm")
    source_spec, _, source_model = kseq.load_run(source)
    table = source_spec.model.max_sequence_length  # 64 in the example spec
    spec = kseq.load_spec(
        SPECS / "bert_domain_adaptation.yaml",
        [
            *TINY,
            f"model.init.from={source}",
            f"model.max_sequence_length={table // 2}",
            "model.hidden_size=32",
            "model.freeze.embeddings=true",
        ],
    )
    run = kseq.train(spec, output=tmp_path / "windowed")
    err = capsys.readouterr().err
    assert f"a window of {table // 2} tokens" in err and "fine-tuning recipe" in err
    trained_spec, family, model = kseq.load_run(run)
    assert trained_spec.model.max_sequence_length == table // 2
    # No schedule in the spec: the fine-tuning recipe, recorded in the run's spec.
    optimizer = trained_spec.train.optimizer
    assert optimizer.schedule.type == "warmup_linear" and optimizer.schedule.warmup_steps >= 1
    assert optimizer.learning_rate == peak_learning_rate(source_spec.model.hidden_size)
    assert trained_spec.model.hidden_size == source_spec.model.hidden_size
    rows = model.get_layer("position_embedding").weights[0].numpy()
    source_rows = source_model.get_layer("position_embedding").weights[0].numpy()
    assert rows.shape[0] == table // 2
    np.testing.assert_array_equal(rows, source_rows[: table // 2])
    # The export's window is the spec's too.
    data = family.load_data(trained_spec, run_dir=run)
    with pytest.raises(KseqError, match=f"--sequence-length must be in 4..{table // 2}"):
        family.endpoints(model, trained_spec, data, "full", sequence_length=table)

    with pytest.raises(SpecError) as error:
        kseq.load_spec(
            SPECS / "bert_domain_adaptation.yaml",
            [f"model.init.from={source}", f"model.max_sequence_length={table + 1}"],
        )
    message = str(error.value)
    assert "model.max_sequence_length" in message and f"<= {table}" in message


def test_init_from_writes_a_spec_that_fine_tunes(runs, tmp_path):
    """`kseq init --task classification --from RUN` trains unedited: the checkpoint's width and
    first position rows, the recipe's rate and a tenth of the steps warming up."""
    from kseq.init import init_spec

    source = runs("masked_lm")
    source_spec, _, source_model = kseq.load_run(source)
    data = tmp_path / "reviews.tsv"
    data.write_text("".join(f"word{i % 7} word{i % 5}\t{'ab'[i % 2]}\n" for i in range(64)))
    text = init_spec(str(data), task="classification", pretrained=str(source))
    spec = kseq.load_spec(yaml.safe_load(text), [*FAST, "train.epochs=2"])
    run = kseq.train(spec, output=tmp_path / "fine-tuned")
    trained_spec, _, model = kseq.load_run(run)
    assert trained_spec.model.hidden_size == source_spec.model.hidden_size
    schedule = trained_spec.train.optimizer.schedule
    assert (schedule.warmup_steps, schedule.decay_steps) == (round(0.1 * 4) or 1, 3)
    assert trained_spec.train.optimizer.learning_rate == peak_learning_rate(
        source_spec.model.hidden_size
    )
    window = trained_spec.model.max_sequence_length
    assert window == 32  # the data's few words, at least 32
    rows = model.get_layer("position_embedding").weights[0].numpy()
    source_rows = source_model.get_layer("position_embedding").weights[0].numpy()
    # Started from the checkpoint's rows: 4 Adam steps of at most 1e-4 move them by < 1e-3.
    assert rows.shape[0] == window
    assert np.abs(rows - source_rows[:window]).max() < 1e-3


def test_layerwise_decay_scales_each_update():
    from kseq.models.bert.optim import with_layer_factors

    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    x = keras.layers.Dense(2, name="low", use_bias=False)(inputs)
    outputs = keras.layers.Dense(1, name="top", use_bias=False)(x)
    model = keras.Model(inputs, outputs)
    optimizer = with_layer_factors(keras.optimizers.Adam(0.1), {"low": 0.25})
    before = [w.numpy().copy() for w in model.weights]
    grads = [np.ones(w.shape, "float32") for w in model.weights]
    optimizer.apply(grads, model.trainable_variables)
    low, top = (np.abs(w.numpy() - b) for w, b in zip(model.weights, before, strict=True))
    # Adam's first step moves every weight by the learning rate (times the layer factor).
    np.testing.assert_allclose(top, 0.1, rtol=1e-3)
    np.testing.assert_allclose(low, 0.025, rtol=1e-3)


def test_backbone_is_padding_invariant(runs):
    _, _, model = kseq.load_run(runs("token_classification"))
    encoder = backbone_of(model)
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 50, (2, 7)).astype("int32")
    inputs = {
        "token_ids": ids,
        "segment_ids": np.zeros_like(ids),
        "padding_mask": np.ones_like(ids),
    }
    base = np.asarray(encoder(inputs)["sequence_output"])
    padded = {k: np.pad(v, [(0, 0), (0, 5)], constant_values=0) for k, v in inputs.items()}
    padded["token_ids"][:, 7:] = 9  # garbage ids under the padding
    got = np.asarray(encoder(padded)["sequence_output"])[:, :7]
    np.testing.assert_allclose(got, base, atol=1e-5)


def test_spec_errors_are_located():
    from kseq.spec.errors import SpecError

    with pytest.raises(SpecError, match="num_heads.*does not divide hidden_size"):
        kseq.load_spec(SPECS / "bert_classification.yaml", ["model.num_heads=5"])
    with pytest.raises(SpecError, match="data.synthetic.task.*not a task for a classification"):
        kseq.load_spec(SPECS / "bert_classification.yaml", ["data.synthetic.task=qa"])
    with pytest.raises(SpecError, match="random_token_rate"):
        kseq.load_spec(SPECS / "bert_masked_lm.yaml", ["model.head.random_token_rate=0.5"])
    with pytest.raises(SpecError, match="sequence_length"):
        kseq.load_spec(SPECS / "bert_masked_lm.yaml", ["data.sequence_length=512"])
    spec = kseq.load_spec(
        SPECS / "bert_classification.yaml", ["model.head.type=none", "data.synthetic.task=auto"]
    )
    with pytest.raises(KseqError, match="no training objective"):
        kseq.train(spec)
    dumped = kseq.load_spec({"model": {"type": "bert", "init": {"from": "x"}}})
    assert kseq.dump_spec(dumped).count("from: x") == 1
