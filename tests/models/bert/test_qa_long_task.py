"""The long-context synthetic extractive-QA task `qa_long` (and `qa` left as it was)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from kseq.models.bert import synthetic
from kseq.models.bert.heads import bert_head
from kseq.models.bert.spec import synthetic_task
from kseq.spec.errors import SpecError
from kseq.spec.load import load_spec
from kseq.tokenizers.bert import BertTokenizer

SPECS = Path(__file__).resolve().parents[3] / "specs"
FULL_NAMES = [f"{first} {last}" for first in synthetic.FIRST_NAMES for last in synthetic.LAST_NAMES]

# sha256 of json.dumps([train, validation], ensure_ascii=False, sort_keys=True) for
# synthetic.generate("qa", 200, 50, 0), computed with the code before `qa_long` was added.
QA_HASH = "bf5f80fe9b81966c35229e56d584bb174e66d1d674b14218810d2896eb8f4442"
# synthetic.generate("qa", 100, 20, 7)[0][0], also from the code before `qa_long` was added.
QA_FIRST = {
    "id": "synthetic-7-0",
    "question": "Where was Chloé Dupont born?",
    "context": "The bridge near the house was quiet . In 1957 , Noël Tanaka moved to Montréal "
    "with a friend . Chloé Dupont was born on September 4, 1946 in Paris .",
    "answers": [{"text": "Paris", "answer_start": 140}],
}


@pytest.fixture(scope="module")
def examples():
    return synthetic.qa_long(300, 0)


def _paragraphs(context):
    """(start, end, text) of each blank-line separated paragraph."""
    out, start = [], 0
    for text in context.split(synthetic.PARAGRAPH_BREAK):
        out.append((start, start + len(text), text))
        start += len(text) + len(synthetic.PARAGRAPH_BREAK)
    return out


def _named(text):
    return [name for name in FULL_NAMES if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text)]


def test_qa_is_unchanged():
    train, validation = synthetic.generate("qa", 200, 50, 0)
    dumped = json.dumps([train, validation], ensure_ascii=False, sort_keys=True)
    assert hashlib.sha256(dumped.encode()).hexdigest() == QA_HASH
    assert synthetic.generate("qa", 100, 20, 7)[0][0] == QA_FIRST


def test_answer_offsets_are_exact(examples):
    for seed in (0, 1, 2):
        for example in examples if seed == 0 else synthetic.qa_long(100, seed):
            (answer,) = example["answers"]
            start, text = answer["answer_start"], answer["text"]
            assert text and example["context"][start : start + len(text)] == text, example["id"]
            # the answer is whole words: nothing glued to either side
            assert start == 0 or example["context"][start - 1] == " "
            assert example["context"][start + len(text)] in " ,"


def test_question_names_the_person_whose_paragraph_answers(examples):
    for example in examples:
        (answer,) = example["answers"]
        start, text = answer["answer_start"], answer["text"]
        paragraphs = _paragraphs(example["context"])
        assert len(paragraphs) >= 3
        (person,) = _named(example["question"])
        holding = [p for p in paragraphs if p[0] <= start and start + len(text) <= p[1]]
        assert len(holding) == 1
        assert holding[0][2].startswith(f"{person} was born on ")
        assert text in holding[0][2]
        # every paragraph is a biography of someone else; the person has exactly one
        subjects = [p[2].split(" was born on ")[0] for p in paragraphs]
        assert subjects.count(person) == 1
        assert len(set(subjects)) == len(subjects)
        # distractors are biographies from the same grammar: the entity type recurs
        assert example["context"].count(" was born on ") == len(paragraphs)


def test_context_lengths(examples):
    words = [len(e["context"].split()) for e in examples]
    assert min(words) >= 250 and max(words) <= 490
    assert max(words) - min(words) > 80  # lengths vary
    # in WordPiece tokens with a vocabulary learned as for specs/bert_span_qa.yaml
    texts = bert_head("span_qa").vocabulary_texts(examples)
    tokenizer = BertTokenizer.learn(texts, vocab_size=1200)
    pieces = [len(tokenizer.tokenize(e["context"])) for e in examples]
    assert min(pieces) >= 250 and max(pieces) <= 520
    questions = [len(tokenizer.tokenize(e["question"])) for e in examples]
    assert max(questions) <= 24
    windows = [p / (96 - 3 - q) for p, q in zip(pieces, questions, strict=True)]
    assert min(windows) > 2 and sum(windows) / len(windows) > 2.8


def test_answer_position_spread(examples):
    where = [e["answers"][0]["answer_start"] / len(e["context"]) for e in examples]
    early = sum(w < 0.33 for w in where) / len(where)
    middle = sum(0.33 <= w <= 0.66 for w in where) / len(where)
    late = sum(w > 0.66 for w in where) / len(where)
    assert min(early, middle, late) >= 0.15, (early, middle, late)


def test_question_kinds_vary(examples):
    answers = [e["answers"][0]["text"] for e in examples]
    assert any(a in synthetic.CITIES for a in answers)
    assert any(a in FULL_NAMES for a in answers)
    assert any(a in synthetic.JOBS for a in answers)
    assert any(re.fullmatch(r"\w+ \d+, \d{4}", a) for a in answers)  # dates
    assert any(re.fullmatch(r"\d{4}", a) for a in answers)  # years
    assert len({e["question"].split()[0] for e in examples}) >= 6


def test_deterministic_with_distinct_splits():
    first = synthetic.generate("qa_long", 20, 10, 3)
    assert first == synthetic.generate("qa_long", 20, 10, 3)
    assert first != synthetic.generate("qa_long", 20, 10, 4)
    train, validation = first
    assert len(train) == 20 and len(validation) == 10
    assert not {e["context"] for e in train} & {e["context"] for e in validation}
    assert len({e["id"] for e in train}) == 20


def test_spec_accepts_qa_long_for_span_qa_only():
    spec = load_spec(SPECS / "bert_span_qa.yaml", ["data.synthetic.task=qa_long"])
    assert spec.data.synthetic.task == "qa_long"
    assert synthetic_task(spec) == "qa_long"
    auto = load_spec(SPECS / "bert_span_qa.yaml", ["data.synthetic.task=auto"])
    assert synthetic_task(auto) == "qa"
    tasks = bert_head("span_qa").synthetic_tasks
    assert tasks[0] == "qa" and "qa_long" in tasks
    with pytest.raises(SpecError, match="data.synthetic.task.*not a task for a classification"):
        load_spec(SPECS / "bert_classification.yaml", ["data.synthetic.task=qa_long"])
    with pytest.raises(SpecError, match="data.synthetic.task"):
        load_spec(SPECS / "bert_span_qa.yaml", ["data.synthetic.task=qa_longer"])
