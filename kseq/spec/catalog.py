"""Every model family, once: importing its spec module registers its `type:` name, and the spec
class names the family's `Family` class (imported only when a model is built or loaded).

Spec modules are pure Python (no TensorFlow), so `kseq validate` stays fast.
"""

from kseq.models.autoencoder import spec as _autoencoder  # noqa: F401
from kseq.models.bert import spec as _bert  # noqa: F401
from kseq.models.seq2seq.rnn import spec as _rnn_seq2seq  # noqa: F401
from kseq.models.seq2seq.transformer import spec as _transformer_seq2seq  # noqa: F401
