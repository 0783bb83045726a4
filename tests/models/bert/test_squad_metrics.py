"""SQuAD EM / F1 against hand-computed values (the arithmetic is in the comments)."""

import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kseq.models.bert.squad_metrics import (
    best_null_threshold,
    exact_match,
    f1,
    normalize_answer,
    squad_scores,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Cat!", "cat"),  # lower, drop "!", drop "the"
        ("  Hello,   World.  ", "hello world"),  # punctuation and runs of whitespace
        ("An apple a day", "apple day"),  # all three articles, any case
        ("theater another Atheist", "theater another atheist"),  # articles only as whole words
        ("the.cat", "thecat"),  # punctuation goes first, so "the" is no longer a word
        ("don't", "dont"),
        ("“quoted” — dash", "“quoted” — dash"),  # curly quotes, em dash: not string.punctuation
        ("", ""),
        ("a an the", ""),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_several_golds_take_the_max():
    golds = ["Broncos", "denver broncos.", "Carolina"]
    assert exact_match("Denver Broncos", golds) == 1.0  # matches the 2nd after normalisation
    # [denver, broncos] vs [broncos]: overlap 1, P=1/2, R=1, F1=2*(1/2)/(3/2)=2/3; vs others 0.
    assert exact_match("Denver Broncos", ["Broncos", "Carolina"]) == 0.0
    assert f1("Denver Broncos", ["Broncos", "Carolina"]) == pytest.approx(2 / 3)


def test_partial_overlap_f1():
    # [big, red, dog] vs [red, dog, barked]: overlap 2, P=2/3, R=2/3, F1=2/3.
    assert f1("the big red dog", ["a red dog barked"]) == pytest.approx(2 / 3)
    assert exact_match("the big red dog", ["a red dog barked"]) == 0.0


def test_repeated_tokens_count_as_a_multiset():
    # {dog:3} & {dog:1, cat:1} -> overlap 1; P=1/3, R=1/2, F1=2*(1/6)/(5/6)=2/5.
    assert f1("dog dog dog", ["dog cat"]) == pytest.approx(0.4)
    # {dog:2} & {dog:2, cat:1} -> overlap 2; P=1, R=2/3, F1=2*(2/3)/(5/3)=4/5.
    assert f1("dog dog", ["dog dog cat"]) == pytest.approx(0.8)


def test_no_answer():
    for golds in ([], [""], ["the"]):  # all mean "no answer" after normalisation
        assert exact_match("", golds) == f1("", golds) == 1.0
        assert exact_match("a.", golds) == f1("a.", golds) == 1.0  # normalises to ""
        assert exact_match("dog", golds) == f1("dog", golds) == 0.0
    assert exact_match("", ["dog"]) == f1("", ["dog"]) == 0.0
    # As in the official v2.0 script, golds that normalise to "" are dropped when others exist.
    assert f1("", ["the", "dog"]) == 0.0


def test_squad_scores_mixed():
    examples = [
        {"id": "q1", "answers": ["Denver Broncos"]},  # exact: EM 1, F1 1
        {"id": "q2", "answers": ["the big red dog", "red dog"]},  # EM 0, F1 max(2/3, 4/5)=4/5
        {"id": "q3", "answers": []},  # "" for no answer: EM 1, F1 1
        {"id": "q4", "answers": []},  # answered anyway: EM 0, F1 0
        {"id": "q5", "answers": ["Paris"]},  # no prediction -> "": EM 0, F1 0
    ]
    # q2: [red, dog, barked] vs [red, dog]: overlap 2, F1=2*2/(3+2)=4/5.
    preds = {"q1": "denver broncos", "q2": "a red dog barked", "q3": "", "q4": "something"}
    scores = squad_scores(examples, preds)
    assert scores == pytest.approx(
        {
            "exact_match": 2 / 5,  # (1+0+1+0+0)/5
            "f1": 2.8 / 5,  # (1+0.8+1+0+0)/5 = 0.56
            "total": 5,
            "has_answer_exact_match": 1 / 3,  # q1, q2, q5
            "has_answer_f1": 1.8 / 3,  # (1+0.8+0)/3 = 0.6
            "has_answer_total": 3,
            "no_answer_exact_match": 1 / 2,  # q3, q4
            "no_answer_f1": 1 / 2,
            "no_answer_total": 2,
        }
    )


def test_squad_scores_all_answerable_has_no_no_answer_keys():
    scores = squad_scores([{"id": "a", "answers": ["x"]}], {"a": "x"})
    assert scores == {
        "exact_match": 1.0,
        "f1": 1.0,
        "total": 1,
        "has_answer_exact_match": 1.0,
        "has_answer_f1": 1.0,
        "has_answer_total": 1,
    }


def _apply(examples, spans, margins, threshold):
    """The documented rule: "" when the margin is above the threshold, else the span."""
    return {
        ex["id"]: "" if margins[ex["id"]] > threshold else spans.get(ex["id"], "")
        for ex in examples
    }


def _check_reproduces(examples, spans, margins, best):
    scores = squad_scores(examples, _apply(examples, spans, margins, best["threshold"]))
    assert (scores["exact_match"], scores["f1"]) == (best["exact_match"], best["f1"])


def test_best_threshold_between_margins():
    examples = [
        {"id": "a", "answers": ["red dog"]},
        {"id": "b", "answers": ["blue cat"]},
        {"id": "c", "answers": []},
        {"id": "d", "answers": []},
    ]
    spans = {"a": "red dog", "b": "blue cat sat", "c": "green", "d": "x"}
    margins = {"a": -1.0, "b": 0.5, "c": 2.0, "d": 3.0}
    # Span F1: a 1, b 2*2/(3+2)=0.8, c 0, d 0; "no answer" F1: a 0, b 0, c 1, d 1.
    # -inf: (0+0+1+1)/4=0.5; -1: (1+0+1+1)/4=0.75; 0.5: (1+0.8+1+1)/4=0.95;
    # 2: (1+0.8+0+1)/4=0.7; 3: 1.8/4=0.45.  Best 0.5: answer a, b; c, d get "".
    best = best_null_threshold(examples, spans, margins)
    assert best["threshold"] == 0.5
    assert best["f1"] == pytest.approx(0.95)
    assert best["exact_match"] == pytest.approx(0.75)  # (1+0+1+1)/4
    _check_reproduces(examples, spans, margins, best)


def test_best_threshold_always_no_answer():
    examples = [{"id": "e", "answers": []}, {"id": "f", "answers": []}]
    spans = {"e": "foo", "f": "bar"}
    margins = {"e": 1.0, "f": -2.0}
    # -inf: both "" -> F1 1; every larger threshold answers at least one wrongly.
    best = best_null_threshold(examples, spans, margins)
    assert best == {"threshold": -math.inf, "exact_match": 1.0, "f1": 1.0}
    _check_reproduces(examples, spans, margins, best)


def test_best_threshold_never_no_answer():
    examples = [{"id": "g", "answers": ["x"]}, {"id": "h", "answers": ["y"]}]
    spans = {"g": "x", "h": "y"}
    margins = {"g": 4.0, "h": 1.0}
    # -inf: 0; 1: 1/2; 4: 1 -> the largest margin, where "margin > t" never holds.
    best = best_null_threshold(examples, spans, margins)
    assert best == {"threshold": 4.0, "exact_match": 1.0, "f1": 1.0}
    _check_reproduces(examples, spans, margins, best)


def test_best_threshold_ties_pick_the_smallest():
    examples = [
        {"id": "a", "answers": ["x"]},
        {"id": "b", "answers": []},
        {"id": "c", "answers": ["z"]},
    ]
    spans = {"a": "x", "b": "y", "c": "z"}
    margins = {"a": 1.0, "b": 2.0, "c": 3.0}
    # -inf: 1/3; 1: 2/3; 2: 1/3; 3: 2/3 -> tie between 1 and 3, keep 1.
    best = best_null_threshold(examples, spans, margins)
    assert best["threshold"] == 1.0
    assert best["f1"] == pytest.approx(2 / 3)


_WORDS = ["the", "A", "an", "dog", "Dog", "cat", "red", "!", "x,", "...", "theater", "“"]
_texts = st.lists(st.sampled_from(_WORDS), max_size=6).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(_texts, _texts)
def test_f1_properties(a, b):
    score = f1(a, [b])
    assert score == f1(b, [a])
    assert 0.0 <= score <= 1.0
    same = Counter(normalize_answer(a).split()) == Counter(normalize_answer(b).split())
    assert (score == 1.0) == same
    assert exact_match(a, [b]) <= score


_answers = st.one_of(st.just([]), st.lists(_texts, min_size=1, max_size=2))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(_answers, _texts, st.sampled_from([-1.0, 0.0, 0.5, 2.0])), min_size=1, max_size=6
    )
)
def test_best_threshold_reproduces_and_dominates(rows):
    examples = [{"id": str(i), "answers": ans} for i, (ans, _, _) in enumerate(rows)]
    spans = {str(i): span for i, (_, span, _) in enumerate(rows)}
    margins = {str(i): m for i, (_, _, m) in enumerate(rows)}
    best = best_null_threshold(examples, spans, margins)
    _check_reproduces(examples, spans, margins, best)
    for t in [-math.inf, *margins.values()]:  # no candidate does better
        assert squad_scores(examples, _apply(examples, spans, margins, t))["f1"] <= best["f1"]
