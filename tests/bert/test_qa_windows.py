"""Span QA over long contexts: windows with a document stride, labels, decoding to character
offsets, the no-answer threshold, and the app-side loop over the exported .tflite."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from kseq.data.bert_tokenizer import BertTokenizer
from kseq.errors import KseqError
from kseq.models.bert import qa

WORDS = [f"w{i}" for i in range(60)]
TOKENIZER = BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "q", *WORDS])
# Irregular whitespace: offsets must come from the original text, not from a re-joined one.
CONTEXT = "  ".join(" ".join(WORDS[i : i + 5]) for i in range(0, 60, 5)) + "\n"


def head(**changes):
    options = dict(
        max_query_length=8,
        doc_stride=6,
        max_answer_length=5,
        null_threshold=None,
        no_answer_share=1.0,
        n_best=3,
    )
    return SimpleNamespace(**{**options, **changes})


def example(*answer_words, question="q"):
    if not answer_words:
        return {"question": question, "context": CONTEXT, "answers": []}
    text = " ".join(answer_words)
    start = CONTEXT.index(f"{answer_words[0]} ")
    assert CONTEXT[start : start + len(text)] == text  # answers inside one 5-word group
    return {
        "question": question,
        "context": CONTEXT,
        "answers": [{"text": text, "answer_start": start}],
    }


@pytest.mark.parametrize(
    "pieces, budget, stride, expected",
    [
        (60, 12, 6, [0, 6, 12, 18, 24, 30, 36, 42, 48]),  # 48 + 12 = 60 covers the end
        (10, 4, 2, [0, 2, 4, 6]),
        (10, 4, 8, [0, 4, 8]),  # a stride longer than the window: back-to-back windows
        (12, 12, 6, [0]),  # fits in one window
        (60, 12, None, [0]),  # no stride: the context is cut
    ],
)
def test_window_starts(pieces, budget, stride, expected):
    assert qa.window_starts(pieces, budget, stride) == expected


# length 16 = [CLS] q [SEP] + 12 context pieces + [SEP]: windows start every 6 pieces.
LENGTH = 16


@pytest.mark.parametrize(
    "words, windows_with_answer",
    [
        (("w2", "w3"), [0]),  # first window only
        (("w31", "w32", "w33"), [4, 5]),  # the middle: in two overlapping windows
        (("w57", "w58", "w59"), [8]),  # the last window
        (("w10", "w11", "w12", "w13"), [1]),  # straddles windows 0 and 2: whole only in 1
    ],
)
def test_training_keeps_the_windows_that_hold_the_answer(words, windows_with_answer):
    encoded = qa.encode_windows([example(*words)], TOKENIZER, LENGTH, head(), training=True)
    assert len(encoded) == len(windows_with_answer)
    evaluated = qa.encode_windows([example(*words)], TOKENIZER, LENGTH, head())
    assert len(evaluated) == 9
    labelled = np.flatnonzero(evaluated.targets["start_logits"] >= 0).tolist()
    assert labelled == windows_with_answer
    for row in windows_with_answer:
        start = evaluated.targets["start_logits"][row]
        end = evaluated.targets["end_logits"][row]
        ids = evaluated.inputs["token_ids"][row, start : end + 1]
        assert TOKENIZER.decode(ids) == " ".join(words)
        assert (evaluated.inputs["segment_ids"][row, start : end + 1] == 1).all()


def test_without_overlap_a_straddling_answer_has_no_window():
    words = ("w10", "w11", "w12", "w13")  # pieces 10..13 cross the boundary at 12
    back_to_back = head(doc_stride=12)
    evaluated = qa.encode_windows([example(*words)], TOKENIZER, LENGTH, back_to_back)
    assert len(evaluated) == 5 and (evaluated.targets["start_logits"] == -1).all()
    with pytest.raises(KseqError, match="no question has its answer inside a window"):
        qa.encode_windows([example(*words)], TOKENIZER, LENGTH, back_to_back, training=True)


def test_unanswerable_questions_label_cls_and_keep_a_share_of_windows():
    examples = [example("w2", "w3"), example()]
    everything = qa.encode_windows(examples, TOKENIZER, LENGTH, head(), training=True)
    # 9 windows each; all answer-less windows kept (share 1.0) and labelled at [CLS].
    assert len(everything) == 18
    starts = everything.targets["start_logits"].tolist()
    assert starts.count(0) == 17 and everything.targets["end_logits"].tolist().count(0) == 17
    none = qa.encode_windows(examples, TOKENIZER, LENGTH, head(no_answer_share=0.0), training=True)
    assert len(none) == 1 and none.meta[0].example == 0
    half = qa.encode_windows(examples, TOKENIZER, LENGTH, head(no_answer_share=0.5), training=True)
    assert 1 < len(half) < 18
    again = qa.encode_windows(examples, TOKENIZER, LENGTH, head(no_answer_share=0.5), training=True)
    assert [m.example for m in again.meta] == [m.example for m in half.meta]  # seeded


def _logits(encoded, picks, null=-5.0):
    """Hand-set logits: every position -10, [CLS] at `null`, and `picks` = {row: (start, end,
    value)} raising one span per row."""
    shape = encoded.inputs["token_ids"].shape
    start, end = np.full(shape, -10.0), np.full(shape, -10.0)
    start[:, 0] = end[:, 0] = null / 2
    for row, (s, e, value) in picks.items():
        start[row, s] += value
        end[row, e] += value
    return start, end


def test_decode_takes_the_best_span_over_windows_and_maps_character_offsets():
    encoded = qa.encode_windows([example()], TOKENIZER, LENGTH, head())
    offset = encoded.meta[0].offset  # 3: [CLS] q [SEP]
    # Window 5 starts at piece 30: its tokens 3..5 are w33 w34 w35. Window 1 (piece 6): w7.
    start, end = _logits(
        encoded, {5: (offset + 3, offset + 5, 12.0), 1: (offset + 1, offset + 1, 11.0)}
    )
    (answer,) = qa.decode(start, end, encoded.meta, head()).values()
    assert answer["answer"] == "w33 w34  w35"  # the context's own double space
    assert CONTEXT[answer["start"] : answer["end"]] == answer["answer"]
    assert answer["score"] == pytest.approx(4.0)  # (-10 + 12) + (-10 + 12)
    assert [c["text"] for c in answer["n_best"]][:2] == ["w33 w34  w35", "w7"]  # w7: 1 + 1
    assert answer["null_score"] == pytest.approx(-5.0)
    assert answer["null_margin"] == pytest.approx(-5.0 - 4.0)


def test_overlapping_windows_give_one_candidate_per_span():
    encoded = qa.encode_windows([example()], TOKENIZER, LENGTH, head())
    offset = encoded.meta[0].offset
    # w33 is piece 33: token 9 of window 4 (start 24) and token 3 of window 5 (start 30).
    start, end = _logits(
        encoded, {4: (offset + 9, offset + 9, 9.0), 5: (offset + 3, offset + 3, 10.0)}
    )
    (answer,) = qa.decode(start, end, encoded.meta, head()).values()
    texts = [c["text"] for c in answer["n_best"]]
    assert texts[0] == "w33" and texts.count("w33") == 1
    assert answer["n_best"][0]["score"] == pytest.approx(0.0)  # the better of the two


@pytest.mark.parametrize(
    "threshold, null, expected",
    [(None, 30.0, "w7"), (0.0, 30.0, ""), (0.0, -30.0, "w7"), (30.0, 20.0, "w7"), (10.0, 20.0, "")],
)
def test_null_threshold(threshold, null, expected):
    encoded = qa.encode_windows([example()], TOKENIZER, LENGTH, head())
    offset = encoded.meta[0].offset
    start, end = _logits(encoded, {1: (offset + 1, offset + 1, 12.0)}, null=null)  # span score 4
    (answer,) = qa.decode(start, end, encoded.meta, head(null_threshold=threshold)).values()
    assert answer["answer"] == expected
    assert answer["span_answer"] == "w7"
    assert answer["null_margin"] == pytest.approx(null - 4.0)
    if expected == "":
        assert answer["start"] is None and answer["end"] is None


def test_squad_2_files_keep_unanswerable_questions(tmp_path):
    from kseq.models.bert.data import read_squad

    document = {
        "version": "v2.0",
        "data": [
            {
                "paragraphs": [
                    {
                        "context": CONTEXT,
                        "qas": [
                            {
                                "id": "a",
                                "question": "q",
                                "answers": [{"text": "w2", "answer_start": 6}],
                            },
                            {"id": "b", "question": "q", "answers": [], "is_impossible": True},
                            {
                                "id": "c",
                                "question": "q",
                                "is_impossible": True,
                                "plausible_answers": [{"text": "w3", "answer_start": 9}],
                                "answers": [],
                            },
                        ],
                    }
                ]
            }
        ],
    }
    path = tmp_path / "squad2.json"
    path.write_text(json.dumps(document))
    examples = read_squad(path)
    assert [e["id"] for e in examples] == ["a", "b", "c"]
    assert [len(e["answers"]) for e in examples] == [1, 0, 0]
    assert qa.has_unanswerable(examples)
