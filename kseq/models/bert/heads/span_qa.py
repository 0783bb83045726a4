"""Span QA: the answer's start and end in a context window (SQuAD 1.1 and 2.0)."""

from __future__ import annotations

import json

import numpy as np

from kseq.errors import KseqError
from kseq.models.bert.head_registry import register_bert_head
from kseq.models.bert.heads.base import BertHead, bert_data


@register_bert_head
class SpanQA(BertHead):
    """Extractive question answering: start and end logits over the context."""

    name = "span_qa"
    layer = "span_logits"
    outputs = ("start_logits", "end_logits")
    synthetic_tasks = ("qa", "qa_long")
    file_types = (".json",)

    def read_examples(self, path, data_spec):
        return bert_data().read_squad(path, data_spec)

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
        from kseq.models.bert.qa import labels_no_answer  # TensorFlow: loaded on use

        return labels_no_answer(train_examples, head_spec)

    def task_metrics(self, model, spec, info, metrics):
        """SQuAD exact match and F1 over whole questions (best span over their windows)."""
        from kseq.models.bert.qa import qa_metrics  # TensorFlow: loaded on use

        examples = info.validation_examples
        return {**qa_metrics(model, spec, info.validation, examples), "examples": len(examples)}

    def serving_extras(self, outputs, inputs, head_spec):
        from kseq.models.bert.export import answer_allowed  # TensorFlow: loaded on use
        from kseq.models.bert.head_layers import best_span  # TensorFlow: loaded on use

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
        from kseq.models.bert.qa import encode_windows  # TensorFlow: loaded on use

        return encode_windows(examples, tokenizer, length, head_spec, training, no_answer)

    def build_outputs(self, encoder, config, num_labels, dropout, init):
        from kseq.models.bert.head_layers import SpanLogits  # TensorFlow: loaded on use

        start, end = SpanLogits(kernel_initializer=init(), name=self.layer)(encoder["sequence"])
        return {"start_logits": start, "end_logits": end}  # (B, S) each

    def predict(self, model, spec, tokenizer, labels, texts, n_best=None):
        """`question<TAB>context` texts (any length): the best answer over all windows, with
        character offsets and the n best."""
        from kseq.models.bert import qa  # TensorFlow: loaded on use

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
