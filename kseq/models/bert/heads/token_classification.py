"""Token classification: a tag per word, carried by its first WordPiece."""

from __future__ import annotations

import numpy as np

from kseq.models.bert.head_registry import register_bert_head
from kseq.models.bert.heads.base import BertHead, bert_data


@register_bert_head
class TokenClassification(BertHead):
    """A tag per word; the first WordPiece of each word carries it."""

    name = "token_classification"
    layer = "tagger"
    outputs = ("logits",)
    synthetic_tasks = ("entities",)
    file_types = (".tsv", ".conll", ".jsonl")
    sequence_targets = True

    def read_examples(self, path, data_spec):
        return bert_data().read_tagging(path, data_spec)

    def vocabulary_texts(self, examples):
        return [" ".join(e["tokens"]) for e in examples]

    def text_columns(self, examples):
        return {"text": self.vocabulary_texts(examples)}

    def label_names(self, examples):
        tags = sorted({t for e in examples for t in e["tags"]})
        return (["O"] if "O" in tags else []) + [t for t in tags if t != "O"]

    def encode_examples(
        self, examples, tokenizer, labels, length, head_spec, training=False, no_answer=None
    ):
        return bert_data().encode_tagging(examples, tokenizer, labels, length)

    def build_outputs(self, encoder, config, num_labels, dropout, init):
        import keras

        x = keras.layers.Dropout(dropout, name="tagger_dropout")(encoder["sequence"])
        logits = keras.layers.Dense(num_labels, kernel_initializer=init(), name=self.layer)(x)
        return {"logits": logits}  # (B, S, T)

    def encode_texts(self, texts, tokenizer, labels, length):
        examples = [{"tokens": t.split(), "tags": [labels[0]] * len(t.split())} for t in texts]
        return bert_data().encode_tagging(examples, tokenizer, labels, length)

    def describe(self, outputs, i, part, tokenizer, labels):
        meta = part.meta[i]
        tags = ["O" if "O" in labels else labels[0]] * len(meta["tokens"])
        predicted = np.argmax(outputs["logits"][i], axis=-1)
        for word, position in meta["first_piece"]:
            tags[word] = labels[int(predicted[position])]
        return {"tokens": meta["tokens"], "tags": tags}

    def summary(self, item):
        return " ".join(f"{w}/{t}" for w, t in zip(item["tokens"], item["tags"], strict=True))
