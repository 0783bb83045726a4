"""The two counted accuracies against hand-counted cases: padding / negative labels never
count, batches add up by tokens (not by batch means), reset, config."""

import keras
import numpy as np
import pytest

from kseq.models.bert.losses import masked_accuracy
from kseq.train.sequence_losses import MaskedTokenAccuracy


def _logits(argmax, classes=5):
    """Logits whose argmax is `argmax` (any shape)."""
    argmax = np.asarray(argmax)
    out = np.zeros((*argmax.shape, classes), np.float32)
    np.put_along_axis(out, argmax[..., None], 3.0, axis=-1)
    return out


def test_token_accuracy_skips_padding_and_counts_tokens_across_batches():
    metric = MaskedTokenAccuracy()
    # batch 1: 5 real tokens, 3 right (the padded columns predict anything)
    metric.update_state(
        np.array([[4, 2, 3, 0], [1, 1, 0, 0]]), _logits([[4, 2, 1, 4], [1, 3, 2, 0]])
    )
    assert float(metric.result()) == pytest.approx(3 / 5)
    # batch 2: 1 real token, right: 4 of 6 overall (a mean of batch means would say 0.8)
    metric.update_state(np.array([[2, 0, 0, 0]]), _logits([[2, 1, 1, 1]]))
    assert float(metric.result()) == pytest.approx(4 / 6)
    metric.reset_state()
    assert float(metric.result()) == 0.0  # no token yet: 0, not NaN
    other = MaskedTokenAccuracy(pad_id=3)
    other.update_state(np.array([[3, 1]]), _logits([[0, 1]]))  # only the 1 counts
    assert float(other.result()) == 1.0


def test_ignore_index_accuracy_skips_negative_labels():
    metric = masked_accuracy()
    metric.update_state(np.array([-1, 2, 0, -1, 4]), _logits([2, 2, 1, 0, 4]))
    assert float(metric.result()) == pytest.approx(2 / 3)  # label 0 is a real class here


def test_configs_round_trip_with_non_default_values():
    metric = MaskedTokenAccuracy(pad_id=7, name="acc_x", dtype="float64")
    config = metric.get_config()
    assert (config["pad_id"], config["name"], config["dtype"]) == (7, "acc_x", "float64")
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert isinstance(again, MaskedTokenAccuracy)
    assert (again.pad_id, again.name) == (7, "acc_x")
    bert = masked_accuracy(name="mlm_acc")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(bert))
    assert type(restored).__name__ == "IgnoreIndexAccuracy" and restored.name == "mlm_acc"
