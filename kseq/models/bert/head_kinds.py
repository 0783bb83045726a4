"""How each BERT head plugs into the family: one registry of self-describing head kinds.

A head kind declares what it needs of the encoder (the pooled [CLS] output, the masked
positions input), the outputs and the layer it adds to a model, the built-in tasks and data
file types it trains on, how it reads, writes and encodes its examples and learns a vocabulary
from them, and how `kseq predict` encodes its inputs and reads its outputs. The network
builder, the spec checks, the data pipeline and `predict` ask the kind; none of them compares
head names.

A new head is a subclass with `@register_bert_head` (and a `HeadSpec` variant of the same name
in `kseq.models.bert.spec`). Importing this module does not import TensorFlow (the spec loader
reads the declarations); the methods that build layers or compute import what they need.
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

import numpy as np

from kseq.errors import KseqError
from kseq.models.bert.head_registry import bert_head, bert_heads, head_of_model, register_bert_head

__all__ = [
    "BertHead",
    "bert_head",
    "bert_heads",
    "head_of_model",
    "register_bert_head",
]


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
        from kseq.models.bert import data as bert_data

        return bert_data.read_documents(path, data_spec)

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
        from kseq.models.bert import data as bert_data

        return bert_data.encode_documents(examples, tokenizer, length)

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
        from kseq.models.bert.export import serving_outputs

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


def _write_lines(documents: list[str], path):
    from pathlib import Path

    path = Path(path)
    path.write_text("".join(d + "\n" for d in documents), encoding="utf-8")
    return path


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


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
        return _write_lines(examples, path)

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
        from kseq.models.bert import data as bert_data

        encoded = bert_data.encode_documents(texts, tokenizer, length)
        return encoded.take(np.arange(len(texts))) if len(encoded) == len(texts) else encoded

    def describe(self, outputs, i, part, tokenizer, labels):
        return {"pooled_output": outputs["pooled_output"][i].tolist()}

    def summary(self, item):
        return " ".join(f"{v:.4f}" for v in item["pooled_output"])


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
        from kseq.models.bert import data as bert_data

        return bert_data.read_classification(path, data_spec)

    def vocabulary_texts(self, examples):
        return [e["text"] for e in examples] + [
            e["text_pair"] for e in examples if "text_pair" in e
        ]

    def label_names(self, examples):
        return sorted({e["label"] for e in examples})

    def encode_examples(
        self, examples, tokenizer, labels, length, head_spec, training=False, no_answer=None
    ):
        from kseq.models.bert import data as bert_data

        return bert_data.encode_classification(examples, tokenizer, labels, length)

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
        from kseq.models.bert import data as bert_data

        pairs = [t.partition("\t") for t in texts]
        examples = [
            {"text": a, **({"text_pair": b} if sep else {}), "label": labels[0]}
            for a, sep, b in pairs
        ]
        if len({"text_pair" in e for e in examples}) > 1:
            raise KseqError("predict: give either all single texts or all text<TAB>pair inputs")
        return bert_data.encode_classification(examples, tokenizer, labels, length)

    def describe(self, outputs, i, part, tokenizer, labels):
        probabilities = _softmax(outputs["logits"][i])
        return {
            "label": labels[int(np.argmax(probabilities))],
            "probabilities": {
                name: float(p) for name, p in zip(labels, probabilities, strict=True)
            },
        }

    def summary(self, item):
        return item["label"]


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
        from kseq.models.bert import data as bert_data

        return bert_data.read_tagging(path, data_spec)

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
        from kseq.models.bert import data as bert_data

        return bert_data.encode_tagging(examples, tokenizer, labels, length)

    def build_outputs(self, encoder, config, num_labels, dropout, init):
        import keras

        x = keras.layers.Dropout(dropout, name="tagger_dropout")(encoder["sequence"])
        logits = keras.layers.Dense(num_labels, kernel_initializer=init(), name=self.layer)(x)
        return {"logits": logits}  # (B, S, T)

    def encode_texts(self, texts, tokenizer, labels, length):
        from kseq.models.bert import data as bert_data

        examples = [{"tokens": t.split(), "tags": [labels[0]] * len(t.split())} for t in texts]
        return bert_data.encode_tagging(examples, tokenizer, labels, length)

    def describe(self, outputs, i, part, tokenizer, labels):
        meta = part.meta[i]
        tags = ["O" if "O" in labels else labels[0]] * len(meta["tokens"])
        predicted = np.argmax(outputs["logits"][i], axis=-1)
        for word, position in meta["first_piece"]:
            tags[word] = labels[int(predicted[position])]
        return {"tokens": meta["tokens"], "tags": tags}

    def summary(self, item):
        return " ".join(f"{w}/{t}" for w, t in zip(item["tokens"], item["tags"], strict=True))


@register_bert_head
class SpanQA(BertHead):
    """Extractive question answering: start and end logits over the context."""

    name = "span_qa"
    layer = "span_logits"
    outputs = ("start_logits", "end_logits")
    synthetic_tasks = ("qa", "qa_long")
    file_types = (".json",)

    def read_examples(self, path, data_spec):
        from kseq.models.bert import data as bert_data

        return bert_data.read_squad(path, data_spec)

    def write_examples(self, examples, path):
        from pathlib import Path

        paragraphs = [
            {"context": e["context"], "qas": [{k: e[k] for k in ("id", "question", "answers")}]}
            for e in examples
        ]
        path = Path(path)
        path.write_text(json.dumps({"data": [{"paragraphs": paragraphs}]}, ensure_ascii=False))
        return path

    def vocabulary_texts(self, examples):
        return [e["question"] for e in examples] + [e["context"] for e in examples]

    def no_answer_labels(self, train_examples, head_spec):
        from kseq.models.bert.qa import labels_no_answer

        return labels_no_answer(train_examples, head_spec)

    def task_metrics(self, model, spec, info, metrics):
        """SQuAD exact match and F1 over whole questions (best span over their windows)."""
        from kseq.models.bert.qa import qa_metrics

        examples = info.validation_examples
        return {**qa_metrics(model, spec, info.validation, examples), "examples": len(examples)}

    def serving_extras(self, outputs, inputs, head_spec):
        from kseq.models.bert.export import answer_allowed
        from kseq.models.bert.heads import best_span

        allowed = answer_allowed(inputs["segment_ids"], inputs["padding_mask"])
        start, end, score = best_span(
            outputs["start_logits"], outputs["end_logits"], allowed, head_spec.max_answer_length
        )
        return {"answer_start": start, "answer_end": end, "answer_score": score}

    def text_columns(self, examples):
        return {
            "question": [e["question"] for e in examples],
            "context": [e["context"] for e in examples],
        }

    def first_text_limit(self, head_spec, length):
        """The question's tokens: `max_query_length`, leaving room for the context."""
        return max(1, min(head_spec.max_query_length, length - 4))

    def agreement(self, reference, candidate):
        same = (np.asarray(reference["answer_start"]) == np.asarray(candidate["answer_start"])) & (
            np.asarray(reference["answer_end"]) == np.asarray(candidate["answer_end"])
        )
        return {"same_answer_span": float(np.mean(same))}

    def encode_examples(
        self, examples, tokenizer, labels, length, head_spec, training=False, no_answer=None
    ):
        """Windows (`kseq.models.bert.qa`): `training` drops the ones without the answer,
        `no_answer` labels them at [CLS]."""
        from kseq.models.bert.qa import encode_windows

        return encode_windows(examples, tokenizer, length, head_spec, training, no_answer)

    def build_outputs(self, encoder, config, num_labels, dropout, init):
        from kseq.models.bert.heads import SpanLogits

        start, end = SpanLogits(kernel_initializer=init(), name=self.layer)(encoder["sequence"])
        return {"start_logits": start, "end_logits": end}  # (B, S) each

    def predict(self, model, spec, tokenizer, labels, texts, n_best=None):
        """`question<TAB>context` texts (any length): the best answer over all windows, with
        character offsets and the n best."""
        from kseq.models.bert import qa

        examples = []
        for text in texts:
            question, sep, context = text.partition("\t")
            if not sep:
                raise KseqError("predict: span_qa inputs are question<TAB>context")
            examples.append({"question": question, "context": context, "answers": []})
        length = spec.data.sequence_length or spec.model.max_sequence_length
        encoded = qa.encode_windows(
            examples, tokenizer, length, spec.model.head, no_answer_labels=False
        )
        start_logits, end_logits = qa.run_windows(model, encoded)
        answers = qa.decode(start_logits, end_logits, encoded.meta, spec.model.head, n_best)
        results = []
        for index, text in enumerate(texts):
            found = answers[index]
            item = {key: found[key] for key in ("answer", "start", "end", "score", "null_score")}
            item["n_best"] = found["n_best"]
            item["windows"] = sum(1 for w in encoded.meta if w.example == index)
            results.append({**item, "input": text, "output": found["answer"]})
        return results


@register_bert_head
class MaskedLM(BertHead):
    """Masked-language-model pretraining: the token embedding, transposed, predicts the
    tokens at `mask_positions`."""

    name = "masked_lm"
    layer = "mlm_transform"
    outputs = ("logits",)
    takes_mask_positions = True
    serves_text = False
    synthetic_tasks = ("pretraining", "clinical")
    file_types = (".txt",)
    reads_corpus = True
    hf_marker = "cls.predictions.bias"
    hf_tied_decoder = "cls.predictions.decoder.weight"

    def write_examples(self, examples, path):
        return _write_lines(examples, path)

    def hf_weights(self, hidden, vocab):
        mlm = "cls.predictions.transform"
        return {
            "mlm_transform/dense/kernel": (f"{mlm}.dense.weight", True, (hidden, hidden)),
            "mlm_transform/dense/bias": (f"{mlm}.dense.bias", False, (hidden,)),
            "mlm_transform/layer_norm/gamma": (f"{mlm}.LayerNorm.weight", False, (hidden,)),
            "mlm_transform/layer_norm/beta": (f"{mlm}.LayerNorm.bias", False, (hidden,)),
            "mlm_bias/bias": ("cls.predictions.bias", False, (vocab,)),
        }

    def task_metrics(self, model, spec, info, metrics):
        perplexity = math.exp(min(metrics["loss"], 50.0))
        return {"perplexity": float(perplexity), **super().task_metrics(model, spec, info, metrics)}

    def build_outputs(self, encoder, config, num_labels, dropout, init):
        from kseq.models.bert.heads import MaskedLMTransform, OutputBias

        hidden = MaskedLMTransform(
            activation=config.activation,
            layer_norm_epsilon=config.layer_norm_epsilon,
            kernel_initializer=init(),
            name=self.layer,
        )(encoder["sequence"], encoder["inputs"]["mask_positions"])  # (B, P, H)
        logits = encoder["token_embedding"](hidden, reverse=True)  # (B, P, V), tied weights
        return {"logits": OutputBias(name="mlm_bias")(logits)}

    def encode_texts(self, texts, tokenizer, labels, length):
        """Texts with literal `[MASK]` markers; each marker is one position to predict."""
        from kseq.models.bert import data as bert_data
        from kseq.models.bert.tokenizer import MASK

        rows, positions = [], []
        for text in texts:
            ids = []
            for index, chunk in enumerate(text.split(MASK)):
                if index:
                    ids.append(tokenizer.mask_id)
                ids.extend(tokenizer.encode([chunk])[0])
            ids = [tokenizer.cls_id, *ids[: length - 2], tokenizer.sep_id]
            rows.append((ids, [0] * len(ids)))
            positions.append([i for i, t in enumerate(ids) if t == tokenizer.mask_id] or [0])
        inputs = bert_data.packed_arrays(rows, tokenizer)
        inputs["mask_positions"] = bert_data._pad_rows(positions, max(map(len, positions)), 0)
        return bert_data.Encoded(inputs, {}, [{"count": len(p)} for p in positions])

    def describe(self, outputs, i, part, tokenizer, labels):
        best = np.argmax(outputs["logits"][i], axis=-1)[: part.meta[i]["count"]]
        return {"predictions": [tokenizer.vocab[int(t)] for t in best]}

    def summary(self, item):
        return " ".join(item["predictions"])
