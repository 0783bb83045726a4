"""The Transformer encoder-decoder family on the one path; everything but the network is shared."""

from __future__ import annotations

from kseq.models.seq2seq.family import Seq2SeqFamily
from kseq.models.seq2seq.transformer import layers as _layers  # noqa: F401  (registers its layers for loading)
from kseq.models.seq2seq.transformer.graph import TransformerSeq2SeqGraph
from kseq.models.seq2seq.transformer.network import build_transformer_seq2seq


class TransformerSeq2SeqFamily(Seq2SeqFamily):
    """Encoder-decoder Transformer with cached incremental decoding."""

    def build_network(self, spec, source_vocab_size, target_vocab_size):

        return build_transformer_seq2seq(
            spec.model,
            source_vocab_size,
            target_vocab_size,
            source_positions=spec.model.source_positions(spec.data),
            target_positions=spec.model.target_positions(spec.data),
        )

    def length_capacity(self, spec):
        positions = spec.model.max_length  # source positions; the target's hold bos too
        return (positions, positions - 1) if positions else (None, None)

    def network_graph(self, model, max_steps=None):

        return TransformerSeq2SeqGraph(model, cache_length=max_steps)
