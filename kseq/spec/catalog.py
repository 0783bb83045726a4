"""Imports every family's spec module so their `type:` names are registered.

Spec modules are pure Python (no TensorFlow), so `kseq validate` stays fast.
"""

from kseq.models.autoencoder import spec as _autoencoder  # noqa: F401
from kseq.models.bert import spec as _bert  # noqa: F401
from kseq.models.rnn_seq2seq import spec as _rnn_seq2seq  # noqa: F401
from kseq.models.transformer_seq2seq import spec as _transformer_seq2seq  # noqa: F401
