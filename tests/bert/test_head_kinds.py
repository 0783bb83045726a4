"""BERT head kinds: one registry, in step with the spec's head variants, and each kind's
declarations true of the model it builds."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from kseq.models.bert.head_kinds import bert_head, bert_heads, head_of_model
from kseq.models.bert.network import BertConfig, build_model
from kseq.models.bert.spec import HeadSpec

ROOT = Path(__file__).resolve().parents[2]
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


def test_network_and_spec_no_longer_compare_head_names():
    """The modules that ask the kinds hold no `head == "..."` comparison (the rest of the
    family moves in later slices)."""
    names = set(bert_heads.names())
    for module in ("network.py", "spec.py", "head_kinds.py"):
        tree = ast.parse((ROOT / "kseq" / "models" / "bert" / module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                constants = [
                    c.value
                    for c in ast.walk(node)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)
                ]
                assert not names & set(constants), f"{module}:{node.lineno} compares head names"
