"""Classification: a label per text or text pair, from the pooled [CLS] output."""

from __future__ import annotations

import numpy as np

from kseq.errors import KseqError
from kseq.models.bert.head_registry import register_bert_head
from kseq.models.bert.heads.base import BertHead, bert_data, softmax


@register_bert_head
class Classification(BertHead):
    """A label per text (or text pair) from the pooled [CLS] output."""

    name = "classification"
    layer = "classifier"
    outputs = ("logits",)
    uses_pooler = True
    synthetic_tasks = ("sentiment", "sentiment_pairs")
    file_types = (".tsv", ".jsonl")

    def read_examples(self, path, data_spec):
        return bert_data().read_classification(path, data_spec)

    def vocabulary_texts(self, examples):
        return [e["text"] for e in examples] + [
            e["text_pair"] for e in examples if "text_pair" in e
        ]

    def label_names(self, examples):
        return sorted({e["label"] for e in examples})

    def encode_examples(
        self, examples, tokenizer, labels, length, head_spec, training=False, no_answer=None
    ):
        return bert_data().encode_classification(examples, tokenizer, labels, length)

    def serving_extras(self, outputs, inputs, head_spec):
        from keras import ops

        return {"probabilities": ops.softmax(outputs["logits"], axis=-1)}

    def text_columns(self, examples):
        columns = {"text": [e["text"] for e in examples]}
        if examples and "text_pair" in examples[0]:
            columns["text_pair"] = [e["text_pair"] for e in examples]
        return columns

    def build_outputs(self, encoder, config, num_labels, dropout, init):
        import keras

        x = keras.layers.Dropout(dropout, name="classifier_dropout")(encoder["pooled"])
        logits = keras.layers.Dense(num_labels, kernel_initializer=init(), name=self.layer)(x)
        return {"logits": logits}  # (B, C)

    def encode_texts(self, texts, tokenizer, labels, length):
        pairs = [t.partition("\t") for t in texts]
        examples = [
            {"text": a, **({"text_pair": b} if sep else {}), "label": labels[0]}
            for a, sep, b in pairs
        ]
        if len({"text_pair" in e for e in examples}) > 1:
            raise KseqError("predict: give either all single texts or all text<TAB>pair inputs")
        return bert_data().encode_classification(examples, tokenizer, labels, length)

    def describe(self, outputs, i, part, tokenizer, labels):
        probabilities = softmax(outputs["logits"][i])
        return {
            "label": labels[int(np.argmax(probabilities))],
            "probabilities": {
                name: float(p) for name, p in zip(labels, probabilities, strict=True)
            },
        }

    def summary(self, item):
        return item["label"]
