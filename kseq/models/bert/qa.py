"""Extractive question answering over contexts of any length.

A context longer than one window is split into overlapping windows of word pieces, each packed as
`[CLS] question [SEP] context-window [SEP]`; the next window starts `doc_stride` pieces after the
previous one (BERT's document stride). Training keeps the windows that contain the answer; on
data with unanswerable questions (SQuAD 2.0), or when `no_answer_share` is set, it also keeps
that share of the windows without one (all of them by default on SQuAD 2.0), labelled as no
answer at [CLS] (position 0) — which teaches the model to score spans low in a window that does
not hold the answer, so the best span over the windows is more often the right one.

Prediction scores every span of every window (`start_logit + end_logit`), takes the best over all
windows of the example, and maps it back to character offsets of the original context through the
word each piece came from. The no-answer score is the [CLS] span's score, the lowest over the
windows; with `null_threshold` set, an example is unanswered when that score beats the best span's
by more than the threshold.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from kseq.errors import KseqError
from kseq.models.bert.data import IGNORE, Encoded, context_words, improve_span, packed_arrays
from kseq.models.bert.squad_metrics import best_null_threshold, squad_scores


@dataclass
class Window:
    """One packed window of an example (`Encoded.meta` of QA rows)."""

    example: int  # index into the encoded examples
    offset: int  # position of the first context token in the packed input
    owners: list[int]  # context word of each context token in this window
    words: list[tuple[int, int]]  # [start, end) character offsets of every context word
    context: str


def window_starts(pieces: int, budget: int, stride: int | None) -> list[int]:
    """The first context piece of each window: every piece is in at least one window, the next
    window starting `stride` pieces on (at most a window on). `stride=None`: one window (the
    context is cut after `budget` pieces)."""
    starts = [0]
    if stride is None:
        return starts
    while starts[-1] + budget < pieces:
        starts.append(starts[-1] + min(stride, budget))
    return starts


def answer_pieces(example, words, pieces, owners, tokenizer) -> tuple[int, int] | None:
    """(first, last) context piece of the first gold answer, or None (no answer, or not found)."""
    if not example.get("answers"):
        return None
    answer = example["answers"][0]
    begin, finish = answer["answer_start"], answer["answer_start"] + len(answer["text"])
    hit = [i for i, (_, s, e) in enumerate(words) if s < finish and e > begin]
    if not hit:
        return None
    span = [p for p, owner in enumerate(owners) if hit[0] <= owner <= hit[-1]]
    if not span:
        return None
    return improve_span(pieces, span[0], span[-1], tokenizer.encode([answer["text"]])[0])


def has_unanswerable(examples) -> bool:
    return any(not e.get("answers") for e in examples)


def labels_no_answer(train_examples, head_spec) -> bool:
    """Whether windows without the answer are labelled at [CLS] (else ignored): on SQuAD 2.0
    data, or when the spec keeps a share of them for training."""
    return has_unanswerable(train_examples) or head_spec.no_answer_share is not None


def encode_windows(
    examples,
    tokenizer,
    length: int,
    head_spec,
    training: bool = False,
    no_answer_labels: bool | None = None,
    seed: int = 0,
) -> Encoded:
    """Pack every example into windows (rows); targets are answer positions in each window.

    A window without the answer is labelled [CLS] (0, 0) when `no_answer_labels` (default:
    `labels_no_answer`), else ignored (-1). With `training`, windows without the answer are
    dropped, or, when labelled, kept with probability `head_spec.no_answer_share` (null: 1).
    """
    if no_answer_labels is None:
        no_answer_labels = labels_no_answer(examples, head_spec)
    share = 1.0 if head_spec.no_answer_share is None else head_spec.no_answer_share
    keep = random.Random(seed)
    rows, starts, ends, meta = [], [], [], []
    for index, example in enumerate(examples):
        limit = max(1, min(head_spec.max_query_length, length - 4))
        question = tokenizer.encode([example["question"]])[0][:limit]
        words = context_words(example["context"])
        pieces, owners = tokenizer.encode_words([w for w, _, _ in words])
        budget = max(1, length - 3 - len(question))
        offset = len(question) + 2  # [CLS] question [SEP]
        answer = answer_pieces(example, words, pieces, owners, tokenizer)
        word_offsets = [(s, e) for _, s, e in words]
        for first in window_starts(len(pieces), budget, head_spec.doc_stride):
            kept = pieces[first : first + budget]
            inside = answer is not None and first <= answer[0] and answer[1] < first + len(kept)
            if inside:
                start, end = answer[0] - first + offset, answer[1] - first + offset
            elif no_answer_labels:
                if training and keep.random() >= share:
                    continue
                start = end = 0
            elif training:
                continue
            else:
                start = end = IGNORE
            ids = [tokenizer.cls_id, *question, tokenizer.sep_id, *kept, tokenizer.sep_id]
            rows.append((ids, [0] * offset + [1] * (len(kept) + 1)))
            starts.append(start)
            ends.append(end)
            window_owners = owners[first : first + len(kept)]
            meta.append(Window(index, offset, window_owners, word_offsets, example["context"]))
    if not rows:
        raise KseqError("data: no question has its answer inside a window (check the answers)")
    targets = {"start_logits": np.array(starts, np.int32), "end_logits": np.array(ends, np.int32)}
    return Encoded(packed_arrays(rows, tokenizer), targets, meta)


def _window_spans(start_logits, end_logits, window: Window, max_answer_length: int, count: int):
    """The `count` best (score, first, last) context-token spans of one window, best first;
    ties go to the earliest start, then the earliest end (as `best_span` in the exported graph)."""
    size = len(window.owners)
    if size == 0:
        return []
    s = np.asarray(start_logits[window.offset : window.offset + size], np.float64)
    e = np.asarray(end_logits[window.offset : window.offset + size], np.float64)
    scores = s[:, None] + e[None, :]
    gap = np.arange(size)[None, :] - np.arange(size)[:, None]
    scores[(gap < 0) | (gap >= max_answer_length)] = -np.inf
    order = np.argsort(-scores, axis=None, kind="stable")[:count]
    return [
        (float(scores.flat[i]), int(i // size), int(i % size))
        for i in order
        if np.isfinite(scores.flat[i])
    ]


def decode(
    start_logits, end_logits, windows: list[Window], head_spec, n_best: int | None = None
) -> dict[int, dict]:
    """Answers per example index: `answer` (text, "" for no answer), `start`/`end` character
    offsets in the context, `score`, `null_score`, `null_margin` (null − best span) and `n_best`
    (distinct spans, best first)."""
    count = n_best or head_spec.n_best
    found: dict[int, dict] = {}
    for row, window in enumerate(windows):
        entry = found.setdefault(
            window.example, {"spans": {}, "null_score": np.inf, "context": window.context}
        )
        null = float(start_logits[row][0]) + float(end_logits[row][0])
        entry["null_score"] = min(entry["null_score"], null)
        spans = _window_spans(
            start_logits[row], end_logits[row], window, head_spec.max_answer_length, count
        )
        for score, first, last in spans:
            begin = window.words[window.owners[first]][0]
            finish = window.words[window.owners[last]][1]
            key = (begin, finish)
            if key not in entry["spans"] or entry["spans"][key] < score:
                entry["spans"][key] = score
    answers = {}
    for example, entry in found.items():
        ranked = sorted(entry["spans"].items(), key=lambda item: (-item[1], item[0]))[:count]
        context = entry["context"]
        best = [
            {"text": context[b:f], "start": b, "end": f, "score": score} for (b, f), score in ranked
        ]
        top = best[0] if best else {"text": "", "start": 0, "end": 0, "score": -np.inf}
        margin = entry["null_score"] - top["score"]
        unanswered = head_spec.null_threshold is not None and margin > head_spec.null_threshold
        answers[example] = {
            "answer": "" if unanswered else top["text"],
            "start": None if unanswered else top["start"],
            "end": None if unanswered else top["end"],
            "score": top["score"],
            "null_score": entry["null_score"],
            "null_margin": margin,
            "span_answer": top["text"],
            "n_best": best,
        }
    return answers


def run_windows(model, encoded: Encoded, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Start and end logits of every window, padded to the longest row."""
    starts, ends = [], []
    width = encoded.inputs["token_ids"].shape[1]
    for begin in range(0, len(encoded), batch):
        rows = encoded.take(np.arange(begin, min(begin + batch, len(encoded))))
        outputs = model(rows.inputs, training=False)
        for name, out in (("start_logits", starts), ("end_logits", ends)):
            values = np.asarray(outputs[name])
            out.append(np.pad(values, ((0, 0), (0, width - values.shape[1]))))
    return np.concatenate(starts), np.concatenate(ends)


def qa_metrics(model, spec, encoded, examples) -> dict:
    """Official SQuAD exact match and F1 over whole examples (best span over their windows);
    on data with unanswerable questions also the has/no-answer splits and the tuned threshold."""

    start_logits, end_logits = run_windows(model, encoded)
    answers = decode(start_logits, end_logits, encoded.meta, spec.model.head, n_best=1)
    gold = [
        {"id": str(i), "answers": [a["text"] for a in e.get("answers", [])]}
        for i, e in enumerate(examples)
    ]
    found = {str(i): answers[i] for i in answers}
    metrics = squad_scores(gold, {i: a["answer"] for i, a in found.items()})
    metrics.pop("total", None)
    if has_unanswerable(examples):
        best = best_null_threshold(
            gold,
            {i: a["span_answer"] for i, a in found.items()},
            {i: a["null_margin"] for i, a in found.items()},
        )
        threshold = best["threshold"]
        if not np.isfinite(threshold):  # "always no answer": any value below every margin
            threshold = min(a["null_margin"] for a in found.values()) - 1.0
        metrics.update(
            best_null_threshold=threshold,
            best_exact_match=best["exact_match"],
            best_f1=best["f1"],
        )
    metrics["windows"] = len(encoded)
    return metrics
