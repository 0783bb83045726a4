"""Imports every family's builder so it registers under its `type:` name."""

from kseq.models.autoencoder import family as _autoencoder  # noqa: F401
from kseq.models.bert import family as _bert  # noqa: F401
from kseq.models.rnn_seq2seq import family as _rnn_seq2seq  # noqa: F401
from kseq.models.transformer_seq2seq import family as _transformer_seq2seq  # noqa: F401
