"""Spec classes of the RNN encoder-decoder family (`model.type: rnn_seq2seq`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kseq.models.seq2seq.rnn.attention_kinds import decoder_attention, decoder_attention_names
from kseq.models.seq2seq.text_spec import DecodeSpec, TextPairDataSpec
from kseq.spec.common import ModelSpec
from kseq.spec.fields import option, variant


@dataclass
class RNNEncoderSpec:
    """The recurrent encoder that reads the padded source."""

    cell: Literal["lstm", "gru"] = "lstm"
    units: int = option(128, min=1, max=16_384)
    layers: int = option(1, min=1, max=8)
    bidirectional: bool = option(True, help="read the source both ways; outputs concatenated")
    dropout: float = option(0.0, min=0.0, below=1.0)


@dataclass
class RNNDecoderSpec:
    """The recurrent decoder."""

    cell: Literal["lstm", "gru"] = "lstm"
    units: int = option(128, min=1, max=16_384)
    layers: int = option(1, min=1, max=8)
    dropout: float = option(0.0, min=0.0, below=1.0)


@dataclass
class AttentionSpec:
    """Attention over the encoder outputs; `none` is the classic fixed-summary encoder-decoder."""

    type: str = option("bahdanau", choices=decoder_attention_names, help="attention kind")
    score: Literal["dot", "general", "concat"] = option("general", help="luong score function")
    units: int = option(128, min=1, max=16_384, help="attention size (bahdanau, luong concat)")
    input_feeding: bool = option(True, help="feed h̃_{t-1} into the next step (luong)")


@variant("rnn_seq2seq")
class RNNSeq2SeqSpec(ModelSpec):
    """Padded RNN encoder-decoder with optional Bahdanau or Luong attention."""

    family = "kseq.models.seq2seq.rnn.family:RNNSeq2SeqFamily"
    embedding_dim: int = option(64, min=1, max=16_384)
    shared_embeddings: bool = option(False, help="one embedding table (needs a shared vocab)")
    encoder: RNNEncoderSpec = option(RNNEncoderSpec())
    decoder: RNNDecoderSpec = option(RNNDecoderSpec())
    attention: AttentionSpec = option(AttentionSpec())
    label_smoothing: float = option(0.0, min=0.0, below=1.0)

    data_spec = TextPairDataSpec
    decode_spec = DecodeSpec
    default_loss = "masked_sparse_crossentropy"

    def check(self, checker, path):
        att = self.attention
        kind = decoder_attention(att.type, att.score, att.units, att.input_feeding)
        width = self.encoder.units * (2 if self.encoder.bidirectional else 1)
        problem = kind.check_widths(self.decoder.units, width)
        if problem is not None:
            field, message, expected = problem
            checker.fail(f"{path}.attention.{field}", message, expected, getattr(att, field))

    def check_with_data(self, checker, data: TextPairDataSpec):
        if self.shared_embeddings:
            data.require_shared_vocabulary(checker, "model.shared_embeddings")
