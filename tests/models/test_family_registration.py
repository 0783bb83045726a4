"""Each model family is registered once, by its spec class, which names its `Family` class."""

from __future__ import annotations

import pytest

import kseq
from kseq.models.family import Family, family_for
from kseq.spec.common import ModelSpec

TYPES = ModelSpec.variants.names()


def test_every_family_is_registered():
    assert TYPES == ["autoencoder", "bert", "rnn_seq2seq", "transformer_seq2seq"]


@pytest.mark.parametrize("model_type", TYPES)
def test_the_spec_names_its_family(model_type):
    spec = kseq.load_spec({"model": {"type": model_type}})
    family = family_for(spec)
    assert isinstance(family, Family) and type(family) is not Family
    module, name = type(spec.model).family.split(":")
    assert (type(family).__module__, type(family).__name__) == (module, name)
    assert family_for(spec) is not family  # a new instance each time: families keep no state
