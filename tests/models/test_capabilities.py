"""Each family has the optional capabilities its methods give it, and only those."""

from __future__ import annotations

import pytest
from helpers import SPECS

from kseq.errors import KseqError
from kseq.models.autoencoder.family import AutoencoderFamily
from kseq.models.bert.family import BertFamily
from kseq.models.capabilities import DrawsAttention, Predicts, Tokenizes, require
from kseq.models.seq2seq.rnn.family import RNNSeq2SeqFamily
from kseq.models.seq2seq.transformer.family import TransformerSeq2SeqFamily
from kseq.spec.load import load_spec

EXPECTED = {
    RNNSeq2SeqFamily: {Predicts, Tokenizes, DrawsAttention},
    TransformerSeq2SeqFamily: {Predicts, Tokenizes, DrawsAttention},
    BertFamily: {Predicts, Tokenizes},
    AutoencoderFamily: set(),
}


@pytest.mark.parametrize("family", list(EXPECTED), ids=lambda f: f.__name__)
def test_capabilities_follow_the_methods(family):
    found = {c for c in (Predicts, Tokenizes, DrawsAttention) if isinstance(family(), c)}
    assert found == EXPECTED[family]


def test_require_names_the_command_and_the_model_type():
    spec = load_spec(SPECS / "bert_classification.yaml")
    family = BertFamily()
    assert require(family, Predicts, spec) is family
    with pytest.raises(KseqError, match="^plot-attention is not available for bert models$"):
        require(family, DrawsAttention, spec)
