"""The RNN encoder-decoder family on the one path; everything but the network is shared."""

from __future__ import annotations

from kseq.models.seq2seq.family import Seq2SeqFamily
from kseq.models.seq2seq.rnn import layers as _layers  # noqa: F401  (registers its layers for loading)
from kseq.models.seq2seq.rnn.graph import RNNSeq2SeqGraph
from kseq.models.seq2seq.rnn.network import build_rnn_seq2seq, with_attention_output


class RNNSeq2SeqFamily(Seq2SeqFamily):
    """Padded LSTM/GRU encoder-decoder with none, Bahdanau or Luong attention."""

    def build_network(self, spec, source_vocab_size, target_vocab_size):

        return build_rnn_seq2seq(
            spec.model, source_vocab_size, target_vocab_size, seed=spec.train.seed
        )

    def network_graph(self, model, max_steps=None):  # the recurrent state has no step axis

        return RNNSeq2SeqGraph(model)

    def attention_model(self, model):
        """`model` with the attention weights as an extra output (see `with_attention_output`)."""

        return with_attention_output(model)
