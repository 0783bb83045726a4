"""token_error_rate on hand-counted cases."""

import pytest

from kseq.models.seq2seq_metrics import positional_token_accuracy, token_error_rate


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


def test_positional_token_accuracy_counts_reference_positions_and_the_end():
    # [5 6 7 end] vs [5 7 7 end]: 3 of 4; [8 end] vs [8 9 end]: 8 right, the end meets 9: 1 of 2
    assert positional_token_accuracy([[5, 7, 7], [8, 9]], [[5, 6, 7], [8]]) == pytest.approx(4 / 6)
    # A dropped first token shifts every later one, the end included: 0 of 4
    assert positional_token_accuracy([[2, 3]], [[1, 2, 3]]) == 0.0
    assert positional_token_accuracy([[]], [[]]) == 1.0  # the end, matched
    assert positional_token_accuracy([[4]], [[]]) == 0.0  # the end meets 4
    with pytest.raises(ValueError, match="1 hypotheses for 2 references"):
        positional_token_accuracy([[1]], [[1], [2]])
