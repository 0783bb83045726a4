"""The head-less kind: the encoder's outputs as they are (imported checkpoints)."""

from __future__ import annotations

import numpy as np

from kseq.models.bert.head_registry import register_bert_head
from kseq.models.bert.heads.base import BertHead, bert_data, write_lines


@register_bert_head
class EncoderOnly(BertHead):
    """No head: the encoder's `sequence_output` and `pooled_output` (imported checkpoints)."""

    name = "none"
    layer = None
    outputs = ("sequence_output", "pooled_output")
    trains = False
    uses_pooler = True
    synthetic_tasks = ("pretraining", "clinical")
    file_types = (".txt",)

    def write_examples(self, examples, path):
        return write_lines(examples, path)

    def hf_weights(self, hidden, vocab):
        return {
            "pooler/dense/kernel": ("pooler.dense.weight", True, (hidden, hidden)),
            "pooler/dense/bias": ("pooler.dense.bias", False, (hidden,)),
        }

    def build_outputs(self, encoder, config, num_labels, dropout, init):
        return {"sequence_output": encoder["sequence"], "pooled_output": encoder["pooled"]}

    def agreement(self, reference, candidate):
        from kseq.models.bert.export import encoder_agreement  # TensorFlow: only when used

        return encoder_agreement(reference, candidate)

    def encode_texts(self, texts, tokenizer, labels, length):
        encoded = bert_data().encode_documents(texts, tokenizer, length)
        return encoded.take(np.arange(len(texts))) if len(encoded) == len(texts) else encoded

    def describe(self, outputs, i, part, tokenizer, labels):
        return {"pooled_output": outputs["pooled_output"][i].tolist()}

    def summary(self, item):
        return " ".join(f"{v:.4f}" for v in item["pooled_output"])
