"""Keras layers of kseq; all register under the `kseq` package for `.keras` loading.

Recurrent layers here export to builtin-only TFLite (see `kseq.layers.rnn`).
"""

from kseq.layers import (  # noqa: F401  (registers the layers)
    bert_heads,
    transformer,
    transformer_seq2seq,
)
from kseq.layers.attention import BahdanauAttention, LuongAttention, LuongAttentionalState
from kseq.layers.rnn import ExportableBidirectional, ExportableGRU, ExportableLSTM
from kseq.layers.seq2seq_rnn import RNNDecoder, RNNEncoder
from kseq.layers.variational import GaussianSampling

__all__ = [
    "BahdanauAttention",
    "ExportableBidirectional",
    "ExportableGRU",
    "ExportableLSTM",
    "GaussianSampling",
    "RNNDecoder",
    "RNNEncoder",
    "LuongAttention",
    "LuongAttentionalState",
]
