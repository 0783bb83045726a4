"""How each BERT head plugs into the family: one registry of self-describing head kinds, one
module per head.

A head kind declares what it needs of the encoder (the pooled [CLS] output, the masked
positions input), the outputs and the layer it adds to a model, the built-in tasks and data
file types it trains on, how it reads, writes and encodes its examples and learns a vocabulary
from them, how `kseq predict` encodes its inputs and reads its outputs, and which Hugging Face
tensors hold its weights. The network builder, the spec checks, the data pipeline, the export
and `predict` ask the kind; none of them compares head names.

A new head is a module here with a `@register_bert_head` subclass of `BertHead` (and a
`HeadSpec` variant of the same name in `kseq.models.bert.spec`). Importing this package does
not import TensorFlow (the spec loader reads the declarations); the methods that build layers
or compute import what they need, inside them.
"""

from kseq.models.bert.head_registry import bert_head, bert_heads, head_of_model, register_bert_head
from kseq.models.bert.heads.base import BertHead
from kseq.models.bert.heads.classification import Classification
from kseq.models.bert.heads.encoder_only import EncoderOnly
from kseq.models.bert.heads.masked_lm import MaskedLM
from kseq.models.bert.heads.span_qa import SpanQA
from kseq.models.bert.heads.token_classification import TokenClassification

__all__ = [
    "BertHead",
    "Classification",
    "EncoderOnly",
    "MaskedLM",
    "SpanQA",
    "TokenClassification",
    "bert_head",
    "bert_heads",
    "head_of_model",
    "register_bert_head",
]
