"""The base of a BERT head kind: what every head declares and its defaults."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np

__all__ = ["BertHead", "softmax", "write_lines"]


class BertHead:
    """One head kind (a plain object, no weights)."""

    name: ClassVar[str]
    layer: ClassVar[str | None]  # the layer whose presence marks this head in a model
    outputs: ClassVar[tuple[str, ...]]  # the model's output names
    trains: ClassVar[bool] = True  # False: no loss (an encoder only)
    uses_pooler: ClassVar[bool] = False
    takes_mask_positions: ClassVar[bool] = False
    synthetic_tasks: ClassVar[tuple[str, ...]]  # the first is `task: auto`'s choice
    file_types: ClassVar[tuple[str, ...]]
    # Training text may be a corpus: several files (a glob or a list), gzipped, streamed.
    reads_corpus: ClassVar[bool] = False
    sequence_targets: ClassVar[bool] = False  # targets per token (trimmed with the inputs)
    serves_text: ClassVar[bool] = True  # string endpoints (`--part text|with_tokenizer`)
    # Hugging Face import (`kseq import hf-bert --head`): a tensor whose presence says the
    # checkpoint holds this head (None: the head-less choice), and an output matrix that must
    # be tied to the word embeddings (checked, not copied).
    hf_marker: ClassVar[str | None] = None
    hf_tied_decoder: ClassVar[str | None] = None

    # -- data ----------------------------------------------------------------------------------
    def read_examples(self, path, data_spec) -> list:
        """The examples of one data file in the head's format."""
        return bert_data().read_documents(path, data_spec)

    def write_examples(self, examples: list, path):
        """Write examples in the head's file format (the synthetic sets materialised)."""
        from pathlib import Path

        path = Path(path)
        path.write_text(
            "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples), encoding="utf-8"
        )
        return path

    def vocabulary_texts(self, examples: list) -> list[str]:
        """The texts a vocabulary is learned from."""
        return list(examples)

    def hf_weights(self, hidden: int, vocab: int) -> dict[str, tuple[str, bool, tuple]] | None:
        """kseq variable path -> (Hugging Face tensor, transposed?, its shape) of this head's
        own weights in a `BertForPreTraining`-style checkpoint; None: not importable."""
        return None

    def label_names(self, examples: list) -> list[str] | None:
        """The labels the examples use, in the model's order; None: the head has none."""
        return None

    def encode_examples(
        self, examples, tokenizer, labels, length, head_spec, training=False, no_answer=None
    ):
        """Model rows of the examples (`bert_data.Encoded`)."""
        return bert_data().encode_documents(examples, tokenizer, length)

    def no_answer_labels(self, train_examples: list, head_spec) -> bool:
        """Whether training rows without an answer are labelled (span QA on SQuAD 2.0)."""
        return False

    # -- evaluation ----------------------------------------------------------------------------
    def task_metrics(self, model, spec, info, metrics: dict) -> dict:
        """The head's metrics beside Keras's (`metrics`), and the examples they cover."""
        return {"examples": info.validation_rows}

    # -- the network -------------------------------------------------------------------------
    def build_outputs(self, encoder: dict[str, Any], config, num_labels, dropout, init) -> dict:
        """The head's layers on `encoder` (`sequence`, `pooled`, `token_embedding`, `inputs`);
        returns the model's outputs by name."""
        raise NotImplementedError

    # -- export ------------------------------------------------------------------------------
    def serving_extras(self, outputs: dict, inputs: dict, head_spec) -> dict:
        """Outputs a served model adds to the network's (probabilities, decoded spans)."""
        return {}

    def text_columns(self, examples: list) -> dict[str, list[str]]:
        """The string inputs of a text endpoint, by name, for `examples`."""
        return {"text": list(examples)}

    def first_text_limit(self, head_spec, length: int) -> int | None:
        """Most tokens of the first text when two are packed into one window; None: no cap."""
        return None

    def agreement(self, reference: dict, candidate: dict) -> dict:
        """How often a (quantized) artifact predicts what Keras predicts."""
        ref = np.argmax(np.asarray(reference["logits"]), axis=-1)
        got = np.argmax(np.asarray(candidate["logits"]), axis=-1)
        return {"same_prediction": float(np.mean(ref == got))}

    # -- kseq predict ------------------------------------------------------------------------
    def predict(self, model, spec, tokenizer, labels, texts: list[str], n_best=None) -> list[dict]:
        """One dict per text (`output`: the one-line summary `kseq predict` prints)."""
        from kseq.models.bert.export import serving_outputs  # TensorFlow: loaded on use

        length = spec.data.sequence_length or spec.model.max_sequence_length
        encoded = self.encode_texts(texts, tokenizer, labels, length)
        results: list[dict] = []
        for start in range(0, len(encoded), 64):
            rows = np.arange(start, min(start + 64, len(encoded)))
            part = encoded.take(rows)
            width = max(1, int(part.inputs["padding_mask"].sum(axis=1).max()))
            inputs = {
                k: (v if k == "mask_positions" else v[:, :width]) for k, v in part.inputs.items()
            }
            outputs = {k: np.asarray(v) for k, v in serving_outputs(model, spec, inputs).items()}
            for i in range(len(rows)):
                results.append(self.describe(outputs, i, part, tokenizer, labels))
        for text, item in zip(texts, results, strict=False):
            item["input"] = text
            item["output"] = self.summary(item)
        return results

    def encode_texts(self, texts, tokenizer, labels, length):
        """`kseq predict`'s input lines as encoded model inputs (`bert_data.Encoded`)."""
        raise NotImplementedError

    def describe(self, outputs, i, part, tokenizer, labels) -> dict:
        """What row `i` of the outputs says."""
        raise NotImplementedError

    def summary(self, item: dict) -> str:
        """The one line `kseq predict` prints for `item`."""
        raise NotImplementedError


def bert_data():
    """`kseq.models.bert.data`, imported on first use: it imports TensorFlow, and the head kinds
    load with `kseq validate`, which does not."""
    from kseq.models.bert import data  # TensorFlow: the head kinds load without it

    return data


def write_lines(documents: list[str], path):
    from pathlib import Path

    path = Path(path)
    path.write_text("".join(d + "\n" for d in documents), encoding="utf-8")
    return path


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
