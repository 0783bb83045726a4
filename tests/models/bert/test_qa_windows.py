"""Span QA over long contexts: windows with a document stride, labels, decoding to character
offsets, the no-answer threshold, and the app-side loop over the exported .tflite."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from kseq.errors import KseqError
from kseq.models.bert import qa
from kseq.tokenizers.bert import BertTokenizer

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
        no_answer_share=None,
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


def test_a_share_of_answerless_windows_on_squad_1_data():
    examples = [example("w2", "w3")]  # answerable only: by default only its answer window
    assert len(qa.encode_windows(examples, TOKENIZER, LENGTH, head(), training=True)) == 1
    every = qa.encode_windows(examples, TOKENIZER, LENGTH, head(no_answer_share=1.0), training=True)
    assert len(every) == 9
    assert every.targets["start_logits"].tolist() == [5, 0, 0, 0, 0, 0, 0, 0, 0]  # 3 + 2
    evaluated = qa.encode_windows(examples, TOKENIZER, LENGTH, head(no_answer_share=0.5))
    assert len(evaluated) == 9 and (evaluated.targets["start_logits"][1:] == 0).all()


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


# ---- the app-side loop over the exported .tflite ----


def app_answer(runner, windows) -> str:
    """What an app does (README): run each window, keep the best span, map it to characters."""
    best = None
    for ids, segments, mask, window in windows:
        out = runner(token_ids=ids[None], segment_ids=segments[None], padding_mask=mask[None])
        score = float(out["answer_score"][0])
        if best is None or score > best[0]:
            best = (score, int(out["answer_start"][0]), int(out["answer_end"][0]), window)
    _, start, end, window = best
    first = window.owners[start - window.offset]
    last = window.owners[end - window.offset]
    return window.context[window.words[first][0] : window.words[last][1]]


@pytest.mark.slow
def test_the_app_loop_over_the_tflite_gives_the_answers_of_kseq_predict(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    import kseq
    from kseq.models.bert import synthetic
    from kseq.models.bert.family import load_tokenizer
    from kseq.spec.load import load_spec

    spec_file = Path(__file__).resolve().parents[3] / "specs" / "bert_span_qa.yaml"
    overrides = [
        "data.synthetic.task=qa_long",
        "data.synthetic.train_size=300",
        "data.synthetic.validation_size=20",
        "train.epochs=2",
        "train.verbose=0",
        "train.tensorboard=false",
        "export.parity_samples=8",
    ]
    run = kseq.train(spec_file, tmp_path / "qa", overrides)
    tflite = kseq.export(run, format="tflite", output=tmp_path / "qa.tflite")["path"]
    runner = Interpreter(model_path=tflite).get_signature_runner()

    spec = load_spec(run / "spec.yaml")
    tokenizer = load_tokenizer(run)
    examples = synthetic.generate("qa_long", 10, 6, 3)[1]
    texts = [f"{e['question']}\t{e['context']}" for e in examples]
    predicted = kseq.api.predict(run, texts)
    for example, found in zip(examples, predicted, strict=True):
        question = {**example, "answers": []}
        encoded = qa.encode_windows(
            [question], tokenizer, 96, spec.model.head, no_answer_labels=False
        )
        assert len(encoded) >= 3  # a long context: several windows
        assert found["windows"] == len(encoded)
        windows = []
        for row, window in enumerate(encoded.meta):
            width = int(encoded.inputs["padding_mask"][row].sum())
            arrays = [
                encoded.inputs[k][row, :width] for k in ("token_ids", "segment_ids", "padding_mask")
            ]
            windows.append((*arrays, window))
        assert app_answer(runner, windows) == found["answer"]
        assert example["context"][found["start"] : found["end"]] == found["answer"]


@pytest.mark.slow
def test_squad_2_training_evaluation_and_the_tuned_threshold(tmp_path):
    import kseq
    from kseq.models.bert import synthetic
    from kseq.models.bert.heads import bert_head

    write_examples = bert_head("span_qa").write_examples

    def squad2(count, seed):
        examples = synthetic.qa(count, seed)
        for index in range(0, count, 3):  # every third question asked of another biography
            other = examples[(index + 1) % count]["context"]
            examples[index] = {**examples[index], "context": other, "answers": []}
        return examples

    train = write_examples(squad2(240, 1), tmp_path / "train.json")
    valid = write_examples(squad2(30, 2), tmp_path / "valid.json")
    spec_file = Path(__file__).resolve().parents[3] / "specs" / "bert_span_qa.yaml"
    overrides = [
        f"data.train={train}",
        f"data.validation={valid}",
        "data.synthetic.train_size=10",
        "train.epochs=2",
        "train.verbose=0",
        "train.tensorboard=false",
    ]
    run = kseq.train(spec_file, tmp_path / "run", overrides)
    metrics = kseq.evaluate(run)
    assert metrics["examples"] == 30
    assert metrics["has_answer_total"] == 20 and metrics["no_answer_total"] == 10
    # Without a threshold every question is answered: the unanswerable ones all score 0.
    assert metrics["no_answer_exact_match"] == 0.0
    assert metrics["best_f1"] >= metrics["f1"]
    # Applying the reported threshold reproduces the reported best scores exactly.
    tuned = kseq.evaluate(
        run, overrides=[f"model.head.null_threshold={metrics['best_null_threshold']}"]
    )
    assert tuned["exact_match"] == pytest.approx(metrics["best_exact_match"], abs=1e-12)
    assert tuned["f1"] == pytest.approx(metrics["best_f1"], abs=1e-12)
