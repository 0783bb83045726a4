"""SQuAD v1.1 / v2.0 exact match and F1, as the official evaluation scripts define them.

Pure Python. Per-question scores are kept as exact fractions internally (token F1 is
``2 * overlap / (len(pred) + len(gold))``), so totals do not depend on summation order and
:func:`best_null_threshold` reports exactly what :func:`squad_scores` computes at its threshold.

Scores are fractions in 0..1 (the official scripts print 0..100).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from fractions import Fraction

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower case, remove punctuation (string.punctuation), remove the articles a/an/the as whole
    words, collapse whitespace. The order is the official script's."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _tokens(text: str) -> list[str]:
    return normalize_answer(text).split()


def _gold_answers(golds: list[str]) -> list[str]:
    """Golds that say something after normalisation; none left means "no answer", i.e. ``[""]``.

    Dropping golds that normalise to "" is what the official v2.0 script does.
    """
    return [g for g in golds if normalize_answer(g)] or [""]


def _is_answerable(golds: list[str]) -> bool:
    return _gold_answers(golds) != [""]


def _token_f1(pred_tokens: list[str], gold_tokens: list[str]) -> Fraction:
    if not pred_tokens or not gold_tokens:
        # "No answer" matches only "no answer".
        return Fraction(int(pred_tokens == gold_tokens))
    overlap = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())  # multiset intersection
    # P = overlap/len(pred), R = overlap/len(gold)  =>  2PR/(P+R) = 2*overlap/(len(pred)+len(gold)).
    return Fraction(2 * overlap, len(pred_tokens) + len(gold_tokens))


def _scores(prediction: str, golds: list[str]) -> tuple[int, Fraction]:
    """(exact match, F1) of one prediction, each the maximum over the golds, exactly."""
    pred_norm = normalize_answer(prediction)
    gold_norms = [normalize_answer(g) for g in _gold_answers(golds)]
    em = max(int(pred_norm == g) for g in gold_norms)
    f1_ = max(_token_f1(pred_norm.split(), g.split()) for g in gold_norms)
    return em, f1_


def exact_match(prediction: str, golds: list[str]) -> float:
    """1.0 if the normalised prediction equals some normalised gold, else 0.0.

    ``golds == []`` means the question has no answer: only "" (or text normalising to "") matches.
    """
    return float(_scores(prediction, golds)[0])


def f1(prediction: str, golds: list[str]) -> float:
    """Token F1 on normalised tokens (multiset overlap), maximum over the golds.

    If either side has no tokens the score is 1.0 when both have none, else 0.0.
    """
    return float(_scores(prediction, golds)[1])


def _mean(total: Fraction | int, count: int) -> float:
    return float(Fraction(total) / count)


def squad_scores(examples: list[dict], predictions: dict[str, str]) -> dict:
    """Corpus EM and F1, with the official v2.0 split into answerable / unanswerable questions.

    ``examples``: ``[{"id": str, "answers": [str, ...]}]`` (``[]`` = unanswerable);
    ``predictions``: id -> text (``""`` = no answer; a missing id counts as ``""``).

    Returns ``{"exact_match", "f1", "total"}`` plus ``has_answer_{exact_match,f1,total}`` when at
    least one question is answerable and ``no_answer_{exact_match,f1,total}`` when at least one is
    not. A question is answerable when some gold answer is non-empty after normalisation.
    """
    if not examples:
        raise ValueError("squad_scores needs at least one example")
    groups: dict[str, list[tuple[int, Fraction]]] = {"": [], "has_answer_": [], "no_answer_": []}
    for ex in examples:
        score = _scores(predictions.get(ex["id"], ""), ex["answers"])
        groups[""].append(score)
        groups["has_answer_" if _is_answerable(ex["answers"]) else "no_answer_"].append(score)
    result: dict = {}
    for prefix, scores in groups.items():
        if scores:
            result[f"{prefix}exact_match"] = _mean(sum(em for em, _ in scores), len(scores))
            result[f"{prefix}f1"] = _mean(sum(f for _, f in scores), len(scores))
            result[f"{prefix}total"] = len(scores)
    return result


def best_null_threshold(
    examples: list[dict], span_predictions: dict[str, str], null_margins: dict[str, float]
) -> dict:
    """Tune the no-answer threshold as SQuAD 2.0's official evaluation does.

    Rule: the prediction for an id is ``""`` when ``null_margins[id] > threshold``, else
    ``span_predictions[id]`` (missing = ``""``); ``null_margins[id]`` = null score minus best span
    score, finite, required for every example id.

    Candidates are ``-inf`` ("always no answer") and every distinct margin; the largest margin
    already means "never no answer", since the rule's ``>`` is strict. Returns
    ``{"threshold", "exact_match", "f1"}`` for the candidate with the highest F1; ties go to the
    smallest threshold (the official sweep keeps the first strict improvement, in ascending order).
    The scores are exact: ``squad_scores`` on the predictions the rule gives at the returned
    threshold reports the same ``exact_match`` and ``f1``.
    """
    if not examples:
        raise ValueError("best_null_threshold needs at least one example")
    # Per id: how much EM and F1 change when the span replaces "no answer".
    gains: dict[float, list[tuple[int, Fraction]]] = {}
    em_total, f1_total = 0, Fraction(0)
    for ex in examples:
        null_em, null_f1 = _scores("", ex["answers"])
        span_em, span_f1 = _scores(span_predictions.get(ex["id"], ""), ex["answers"])
        em_total += null_em
        f1_total += null_f1
        gains.setdefault(null_margins[ex["id"]], []).append((span_em - null_em, span_f1 - null_f1))

    best = (f1_total, em_total, -math.inf)  # threshold below every margin: always no answer
    for margin in sorted(gains):  # raising the threshold to `margin` answers every id at `margin`
        for d_em, d_f1 in gains[margin]:
            em_total += d_em
            f1_total += d_f1
        if f1_total > best[0]:  # strict: ties keep the smaller threshold
            best = (f1_total, em_total, margin)
    n = len(examples)
    return {"threshold": best[2], "exact_match": _mean(best[1], n), "f1": _mean(best[0], n)}
