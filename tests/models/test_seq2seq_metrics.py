"""token_error_rate on hand-counted cases."""

import pytest

from kseq.models.seq2seq_metrics import token_error_rate


def test_counts_substitutions_insertions_and_deletions_over_the_corpus():
    # K AE T -> K AH T: 1 substitution; D AO G -> D AO G Z: 1 insertion; B ER D -> B D: 1 deletion
    hypotheses = [[10, 12, 13], [20, 21, 22, 23], [30, 32]]
    references = [[10, 11, 13], [20, 21, 22], [30, 31, 32]]
    assert token_error_rate(hypotheses, references) == pytest.approx(3 / 9)


def test_weighs_long_references_more_than_a_per_sentence_mean():
    # 1 error in 1 token and 0 errors in 9 tokens: corpus rate 1/10, not the mean (1 + 0) / 2
    assert token_error_rate([[5], list(range(9))], [[6], list(range(9))]) == pytest.approx(0.1)


def test_perfect_empty_and_rate_above_one():
    assert token_error_rate([[1, 2]], [[1, 2]]) == 0.0
    assert token_error_rate([[]], [[4, 5]]) == 1.0  # two deletions
    assert token_error_rate([[7, 8, 9]], [[4]]) == 3.0  # one substitution, two insertions
    assert token_error_rate([], []) is None


def test_transposition_costs_two_edits():
    assert token_error_rate([[2, 1]], [[1, 2]]) == 1.0


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        token_error_rate([[1], [2]], [[1]])
