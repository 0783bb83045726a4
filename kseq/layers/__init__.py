"""Keras layers that are no one family's own; all register under the `kseq` package for `.keras`
loading.

Exportable LSTM/GRU (`rnn`), the token embedding with its tied output projection
(`embedding`), the Transformer blocks that BERT and the Transformer seq2seq share
(`transformer`), LayerNorm and the int8-safe masked softmax. A family's own layers live in its
folder under `kseq/models/`, and its family module imports them, so loading a run registers
them.
"""

from kseq.layers import (  # noqa: F401  (registers them)
    embedding,
    layer_norm,
    masked_softmax,
    transformer,
)
from kseq.layers.rnn import ExportableBidirectional, ExportableGRU, ExportableLSTM

__all__ = [
    "ExportableBidirectional",
    "ExportableGRU",
    "ExportableLSTM",
]
