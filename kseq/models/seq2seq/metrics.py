"""Metrics of generated sequences against references, over token ids."""

from __future__ import annotations

from collections.abc import Sequence

from rapidfuzz.distance import Levenshtein


def token_error_rate(hypotheses: Sequence[Sequence[int]], references: Sequence[Sequence[int]]):
    """Edits (insertions, deletions, substitutions) that turn each hypothesis into its reference,
    summed over the corpus, per reference token: the phoneme error rate of G2P, the character
    error rate of a char tokenizer, the word error rate of a word tokenizer.

    Counted over the corpus, not averaged per sentence, so a long reference weighs more. An empty
    reference corpus has no rate (None).
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    edits = sum(
        Levenshtein.distance(list(h), list(r)) for h, r in zip(hypotheses, references, strict=True)
    )
    tokens = sum(len(r) for r in references)
    return edits / tokens if tokens else None


def positional_token_accuracy(
    hypotheses: Sequence[Sequence[int]], references: Sequence[Sequence[int]]
) -> float:
    """Share of reference positions, the end included, where the hypothesis has the same token.

    Free-running, unlike the teacher-forced training metric: a token dropped early shifts every
    later one, as a user of the outputs would see it. `hypotheses`/`references`: id lists
    without eos; the end is compared as one more position (the end against whatever is there).
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    right = total = 0
    for hypothesis, reference in zip(hypotheses, references, strict=True):
        hypothesis, reference = [*hypothesis, None], [*reference, None]  # None: the end
        right += sum(a == b for a, b in zip(reference, hypothesis, strict=False))
        total += len(reference)
    return right / total if total else 1.0


def sequence_exact_match(
    references: Sequence[Sequence[int]], hypotheses: Sequence[Sequence[int]]
) -> float:
    """Share of hypotheses equal to their reference (id lists without eos)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    return float(
        sum(list(h) == list(r) for r, h in zip(references, hypotheses, strict=True))
    ) / max(len(references), 1)


def decoding_task_cost(
    references: Sequence[Sequence[int]],
    keras_rows: Sequence[Sequence[int]],
    export_rows: Sequence[Sequence[int]],
) -> dict[str, float]:
    """Exact match and token accuracy of Keras's and an export's decodings of the same sources
    (id lists without eos) against the references, and how far the export follows Keras: the
    task cost of exporting (quantizing, an app's loop)."""
    keras_rows, export_rows = [list(r) for r in keras_rows], [list(r) for r in export_rows]
    same = sum(a == b for a, b in zip(keras_rows, export_rows, strict=True))
    return {
        "exact_match_keras": sequence_exact_match(references, keras_rows),
        "exact_match_export": sequence_exact_match(references, export_rows),
        "token_accuracy_keras": positional_token_accuracy(keras_rows, references),
        "token_accuracy_export": positional_token_accuracy(export_rows, references),
        "sequences_identical_to_keras": same / max(len(keras_rows), 1),
        "tokens_identical_to_keras": positional_token_accuracy(export_rows, keras_rows),
    }
