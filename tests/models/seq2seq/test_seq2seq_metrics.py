"""Sequence metrics on hand-counted cases: token_error_rate, positional accuracy, and what
`evaluate` reports."""

import numpy as np
import pytest

from kseq.models.seq2seq.metrics import (
    decoding_task_cost,
    positional_token_accuracy,
    token_error_rate,
)


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


def test_evaluate_reports_exact_match_bleu_and_token_error_rate_of_hand_set_outputs(monkeypatch):
    """`Seq2SeqFamily.evaluate` on decodes set by hand: every number against a hand count
    (BLEU against sacrebleu, the reference implementation, with character tokens)."""
    import sacrebleu
    from helpers import SPECS

    from kseq.models.family import PreparedData, family_for
    from kseq.models.seq2seq.pairs import Seq2SeqInfo, Tokenizers
    from kseq.spec.load import load_spec
    from kseq.tokenizers.kinds import make_tokenizer
    from kseq.tokenizers.special_tokens import EOS_ID

    spec = load_spec(  # char tokens: character BLEU
        SPECS / "rnn_seq2seq_bahdanau.yaml",
        ["data.max_source_length=80", "data.max_target_length=12"],
    )
    family = family_for(spec)
    references = ["1999-03-03", "2000-01-01", "2001-12-31", "1980-05-06"]
    hypotheses = ["1999-03-03", "2000-01-02", "2001-12-31", "1980-06-05"]
    pairs = [(f"source {i}", r) for i, r in enumerate(references)]
    tokenizer = make_tokenizer("char").fit([s for s, _ in pairs] + references + hypotheses)
    decoded = [{"target_ids": np.array([*ids, EOS_ID, 0])} for ids in tokenizer.encode(hypotheses)]
    monkeypatch.setattr(family, "decode_ids", lambda model, spec, sources: decoded)

    class Model:
        def evaluate(self, dataset, return_dict, verbose):
            return {"loss": 0.5, "token_accuracy": 0.875}

    data = PreparedData(
        train=None,
        validation=None,
        samples={},
        calibration={},
        info=Seq2SeqInfo(
            tokenizers=Tokenizers(tokenizer, tokenizer),
            validation_pairs=pairs,
            validation_ids=[],
            length_counts={},
        ),
    )
    metrics = family.evaluate(Model(), spec, data)
    assert metrics["exact_match"] == 0.5  # rows 1 and 3
    # one substituted character in row 2, two in row 4, over 40 reference characters
    assert metrics["token_error_rate"] == pytest.approx(3 / 40)
    bleu = sacrebleu.corpus_bleu(hypotheses, [references], tokenize="char").score
    assert metrics["bleu"] == round(bleu, 4) and 0 < metrics["bleu"] < 100
    assert (metrics["loss"], metrics["token_accuracy"], metrics["examples"]) == (0.5, 0.875, 4)


def test_decoding_task_cost_by_hand():
    references = [[1, 2], [3]]
    keras_rows = [[1, 2], [4]]
    export_rows = [[1, 2], [3, 5]]
    # Positional accuracy counts the end as a token: keras 3/3 + 1/2, export 3/3 + 1/2; the
    # export against Keras 3/3 + 0/2.
    assert decoding_task_cost(references, keras_rows, export_rows) == {
        "exact_match_keras": 0.5,
        "exact_match_export": 0.5,
        "token_accuracy_keras": 0.8,
        "token_accuracy_export": 0.8,
        "sequences_identical_to_keras": 0.5,
        "tokens_identical_to_keras": 0.6,
    }
