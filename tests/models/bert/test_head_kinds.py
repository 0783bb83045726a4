"""BERT head kinds: one registry, in step with the spec's head variants, and each kind's
declarations true of the model it builds."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from helpers import FAST, SPECS

import kseq
from kseq.models.bert import heads
from kseq.models.bert import spec as bert_spec
from kseq.models.bert.heads import bert_head, bert_heads, head_of_model
from kseq.models.bert.network import BertConfig, build_model
from kseq.models.bert.spec import HeadSpec

ROOT = Path(__file__).resolve().parents[3]
CONFIG = BertConfig(vocab_size=40, hidden_size=8, num_layers=1, num_heads=2, intermediate_size=12)


def test_every_spec_head_has_a_kind_and_back():
    assert bert_heads.names() == HeadSpec.variants.names()


@pytest.mark.parametrize("name", bert_heads.names())
def test_a_kind_describes_the_model_it_builds(name):
    kind = bert_head(name)
    model = build_model(CONFIG, name, num_labels=3)
    assert sorted(model.output) == sorted(kind.outputs)  # a dict of outputs by name
    assert ("mask_positions" in model.input) == kind.takes_mask_positions
    layers = {layer.name for layer in model.layers}
    assert ("pooler" in layers) == kind.uses_pooler
    assert kind.layer is None or kind.layer in layers
    assert head_of_model(model).name == name
    assert kind.synthetic_tasks and all(t.startswith(".") for t in kind.file_types)


def test_unknown_head_is_named_with_the_choices():
    with pytest.raises(ValueError, match="unknown head type 'spam_qa'.*span_qa"):
        bert_head("spam_qa")


def test_no_module_of_the_family_compares_head_names():
    """The family asks the kinds: no `head == "..."` comparison in any of its modules (the
    Hugging Face import included: each kind declares its checkpoint tensors)."""
    names = set(bert_heads.names())
    for path in sorted((ROOT / "kseq" / "models" / "bert").glob("*.py")):
        module = path.name
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                constants = [
                    c.value
                    for c in ast.walk(node)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)
                ]
                assert not names & set(constants), f"{module}:{node.lineno} compares head names"


class MeanPooledClassification(heads.Classification):
    """A test kind: a label from the mean of the real tokens' vectors (no pooler)."""

    name = "mean_pooled"
    layer = "mean_pooled_classifier"
    uses_pooler = False

    def build_outputs(self, encoder, config, num_labels, dropout, init):
        import keras

        pooled = keras.layers.GlobalAveragePooling1D(name="mean_pool")(encoder["sequence"])
        logits = keras.layers.Dense(num_labels, kernel_initializer=init(), name=self.layer)(pooled)
        return {"logits": logits}


@dataclasses.dataclass
class MeanPooledSpec(bert_spec.ClassificationHeadSpec):
    type: str = "mean_pooled"


MeanPooledSpec.type_name = "mean_pooled"  # what `@variant` sets; the test registers by hand


def test_a_head_registered_in_a_test_trains_exports_and_predicts(monkeypatch, tmp_path):
    """A new head is its kind and its spec variant: nothing else changes."""
    monkeypatch.setitem(bert_heads._items, "mean_pooled", MeanPooledClassification)
    monkeypatch.setitem(bert_spec.HeadSpec.variants._items, "mean_pooled", MeanPooledSpec)
    overrides = [
        *FAST,
        "model.head.type=mean_pooled",
        "data.synthetic.task=sentiment",
        "data.synthetic.train_size=64",
        "data.synthetic.validation_size=16",
        "export.parity_samples=8",
        "train.tensorboard=false",
    ]
    spec = kseq.load_spec(SPECS / "bert_classification.yaml", overrides)
    run = kseq.train(spec, tmp_path / "run")
    _, _, model = kseq.load_run(run)
    assert type(head_of_model(model)) is MeanPooledClassification
    assert "pooler" not in {layer.name for layer in model.layers}
    metrics = kseq.evaluate(run)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    report = kseq.export(run, format="tflite")
    assert report["parity"]["serving_default"]["outputs"]["logits"]["max_abs_diff"] < 1e-4
    (row,) = kseq.predict(run, ["The lamp is wonderful and bright."])
    assert set(row["probabilities"]) == {"negative", "positive"}
