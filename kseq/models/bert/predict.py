"""`kseq predict` for BERT heads: one dict per input text (`output` is the one-line summary).

Input conventions (one string per example): classification — `text` or `text<TAB>text_pair`;
token_classification — whitespace-separated words; span_qa — `question<TAB>context` (any
length: the best answer over all windows, with character offsets and the n best);
masked_lm — text with literal `[MASK]` markers; none — text (returns the pooled vector).
"""

from __future__ import annotations

import numpy as np

from kseq.errors import KseqError
from kseq.models.bert import data as bert_data
from kseq.models.bert.tokenizer import MASK


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def _batches(count: int, size: int = 64):
    for start in range(0, count, size):
        yield np.arange(start, min(start + size, count))


def _answer_questions(model, spec, tokenizer, length, texts, n_best) -> list[dict]:
    """`question<TAB>context` texts: the best answer over all windows of each context."""
    from kseq.models.bert import qa

    examples = []
    for text in texts:
        question, sep, context = text.partition("\t")
        if not sep:
            raise KseqError("predict: span_qa inputs are question<TAB>context")
        examples.append({"question": question, "context": context, "answers": []})
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


def predict(model, spec, tokenizer, labels, texts: list[str], n_best=None) -> list[dict]:
    from kseq.models.bert.export import serving_outputs

    head = spec.model.head.type
    length = spec.data.sequence_length or spec.model.max_sequence_length
    if head == "classification":
        pairs = [t.partition("\t") for t in texts]
        examples = [
            {"text": a, **({"text_pair": b} if sep else {}), "label": labels[0]}
            for a, sep, b in pairs
        ]
        if len({"text_pair" in e for e in examples}) > 1:
            raise KseqError("predict: give either all single texts or all text<TAB>pair inputs")
        encoded = bert_data.encode_classification(examples, tokenizer, labels, length)
    elif head == "token_classification":
        examples = [{"tokens": t.split(), "tags": [labels[0]] * len(t.split())} for t in texts]
        encoded = bert_data.encode_tagging(examples, tokenizer, labels, length)
    elif head == "span_qa":
        return _answer_questions(model, spec, tokenizer, length, texts, n_best)
    elif head == "masked_lm":
        encoded = _encode_masked(texts, tokenizer, length)
    else:
        encoded = bert_data.encode_documents(texts, tokenizer, length)
        encoded = encoded.take(np.arange(len(texts))) if len(encoded) == len(texts) else encoded

    results: list[dict] = []
    for rows in _batches(len(encoded)):
        part = encoded.take(rows)
        width = max(1, int(part.inputs["padding_mask"].sum(axis=1).max()))
        inputs = {k: (v if k == "mask_positions" else v[:, :width]) for k, v in part.inputs.items()}
        outputs = {k: np.asarray(v) for k, v in serving_outputs(model, spec, inputs).items()}
        for i in range(len(rows)):
            results.append(_describe(head, outputs, i, part, inputs, tokenizer, labels))
    for text, item in zip(texts, results, strict=False):
        item["input"] = text
        item["output"] = _summary(head, item)
    return results


def _summary(head: str, item: dict) -> str:
    """The one-line text `kseq predict` prints."""
    if head == "classification":
        return item["label"]
    if head == "token_classification":
        return " ".join(f"{w}/{t}" for w, t in zip(item["tokens"], item["tags"], strict=True))
    if head == "masked_lm":
        return " ".join(item["predictions"])
    return " ".join(f"{v:.4f}" for v in item["pooled_output"])


def _encode_masked(texts, tokenizer, length):
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
    inputs = bert_data._packed_arrays(rows, tokenizer)
    width = max(len(p) for p in positions)
    inputs["mask_positions"] = bert_data._pad_rows(positions, width, 0)
    return bert_data.Encoded(inputs, {}, [{"count": len(p)} for p in positions])


def _describe(head, outputs, i, part, inputs, tokenizer, labels) -> dict:
    if head == "classification":
        probabilities = _softmax(outputs["logits"][i])
        best = int(np.argmax(probabilities))
        return {
            "label": labels[best],
            "probabilities": {
                name: float(p) for name, p in zip(labels, probabilities, strict=True)
            },
        }
    if head == "token_classification":
        meta = part.meta[i]
        tags = ["O" if "O" in labels else labels[0]] * len(meta["tokens"])
        predicted = np.argmax(outputs["logits"][i], axis=-1)
        for word, position in meta["first_piece"]:
            tags[word] = labels[int(predicted[position])]
        return {"tokens": meta["tokens"], "tags": tags}
    if head == "masked_lm":
        count = part.meta[i]["count"]
        best = np.argmax(outputs["logits"][i], axis=-1)[:count]
        filled = [tokenizer.vocab[int(t)] for t in best]
        return {"predictions": filled}
    return {"pooled_output": outputs["pooled_output"][i].tolist()}
