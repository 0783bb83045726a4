"""Label-smoothed cross-entropy of both loss kinds against numpy, padding still ignored."""

import numpy as np
import pytest

from kseq.models.bert.losses import ignore_index_crossentropy
from kseq.train.sequence_losses import MaskedSparseCrossentropy


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _smoothed_token_loss(logits, labels, epsilon):
    """-Σ_c q_c log p_c with q = (1 - ε)·onehot(label) + ε / C, per token."""
    log_p = _log_softmax(logits.astype(np.float64))
    classes = logits.shape[-1]
    target = np.full(log_p.shape, epsilon / classes)
    np.put_along_axis(target, np.maximum(labels, 0)[..., None], 1 - epsilon + epsilon / classes, -1)
    return -(target * log_p).sum(-1)


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.3])
def test_sequence_loss_is_the_mean_over_non_padding_tokens(epsilon):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 7)).astype(np.float32) * 3
    labels = rng.integers(1, 7, size=(3, 5))
    labels[0, 3:] = 0  # padding
    labels[2, 1:] = 0
    expected = _smoothed_token_loss(logits, labels, epsilon)[labels != 0].mean()
    loss = MaskedSparseCrossentropy(label_smoothing=epsilon)
    assert float(loss(labels, logits)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("epsilon", [0.0, 0.2])
def test_classifier_loss_ignores_negative_labels(epsilon):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(4, 6, 3)).astype(np.float32) * 2  # tagging: (B, T, tags)
    labels = rng.integers(0, 3, size=(4, 6))
    labels[:, 0] = -1  # [CLS]
    labels[1, 4:] = -1  # padding
    expected = _smoothed_token_loss(logits, labels, epsilon)[labels >= 0].mean()
    loss = ignore_index_crossentropy(epsilon)
    assert float(loss(labels, logits)) == pytest.approx(expected, rel=1e-5)
    sentence = logits[:, 0, :]  # classification: (B, C)
    expected = _smoothed_token_loss(sentence, labels[:, 1], epsilon).mean()
    assert float(loss(labels[:, 1], sentence)) == pytest.approx(expected, rel=1e-5)


def test_smoothing_raises_the_loss_of_a_confident_right_answer():
    logits = np.array([[[10.0, 0.0, 0.0]]], np.float32)
    labels = np.array([[0]])
    plain = float(MaskedSparseCrossentropy(pad_id=-1)(labels, logits))
    smooth = float(MaskedSparseCrossentropy(label_smoothing=0.1, pad_id=-1)(labels, logits))
    assert smooth > plain + 0.5


def test_label_smoothing_round_trips_in_the_loss_config():
    import keras

    loss = ignore_index_crossentropy(0.25)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert again.label_smoothing == 0.25
    assert (
        MaskedSparseCrossentropy.from_config(
            MaskedSparseCrossentropy(label_smoothing=0.15).get_config()
        ).label_smoothing
        == 0.15
    )


def test_classifier_heads_compile_with_the_spec_label_smoothing():
    from helpers import SPECS

    from kseq.models.family import family_for
    from kseq.spec.load import load_spec

    for name, head in [("bert_classification", "logits"), ("bert_token_classification", "logits")]:
        spec = load_spec(SPECS / f"{name}.yaml", ["model.head.label_smoothing=0.2"])
        family = family_for(spec)
        model = family.build(spec, family.load_data(spec))
        family.compile(model, spec)
        assert model.loss[head].label_smoothing == 0.2


def test_accuracy_metrics_tell_callbacks_they_rise():
    """Early stopping and reduce_on_plateau on `val_token_accuracy` / `val_accuracy` must know
    that higher is better, or Keras refuses the monitor after the first epoch."""
    import keras

    from kseq.models.bert.losses import masked_accuracy
    from kseq.train.sequence_losses import MaskedTokenAccuracy

    for metric, monitor in [
        (MaskedTokenAccuracy(), "val_token_accuracy"),
        (masked_accuracy(), "val_accuracy"),
    ]:
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(loss="mse", metrics=[metric])
        model.evaluate(np.zeros((2, 3)), np.zeros((2, 2)), verbose=0)  # builds compiled metrics
        callback = keras.callbacks.EarlyStopping(monitor=monitor)
        callback.set_model(model)
        callback._set_monitor_op()
        assert callback.monitor_op(2.0, 1.0)  # 2 is an improvement over 1
