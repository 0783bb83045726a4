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
