"""Loss and metric for padded token sequences: padding (id 0) never counts."""

from __future__ import annotations

import keras
from keras import ops


def smoothed_cross_entropy(labels, logits, label_smoothing: float = 0.0):
    """Per-position cross-entropy from logits against (1 - ε)·onehot(label) + ε/C.

    `labels` (int32, any shape) must be valid class ids; callers mask what they ignore.
    """
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    loss = -ops.take_along_axis(log_probs, ops.expand_dims(labels, -1), axis=-1)[..., 0]
    if label_smoothing:
        uniform = -ops.mean(log_probs, axis=-1)
        loss = (1.0 - label_smoothing) * loss + label_smoothing * uniform
    return loss


@keras.saving.register_keras_serializable(package="kseq")
class MaskedSparseCrossentropy(keras.losses.Loss):
    """Token cross-entropy from logits, averaged over the non-padding tokens of the batch.

    Keras reduces a per-sample loss by its mean over the batch; returning, per sample, its
    token-loss sum scaled by B / (non-padding tokens in the batch) makes that mean exactly the
    average over real tokens, whatever the padding.

    Args:
        label_smoothing: mass spread uniformly over the vocabulary.
        pad_id: target id that is ignored.
    """

    def __init__(self, label_smoothing=0.0, pad_id=0, name="masked_sparse_crossentropy", **kw):
        super().__init__(name=name, **kw)
        self.label_smoothing = label_smoothing
        self.pad_id = pad_id

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")  # (B, T)
        token_loss = smoothed_cross_entropy(y_true, y_pred, self.label_smoothing)
        mask = ops.cast(ops.not_equal(y_true, self.pad_id), "float32")
        tokens = ops.maximum(ops.sum(mask), 1.0)
        batch = ops.cast(ops.shape(y_true)[0], "float32")
        return ops.sum(token_loss * mask, axis=-1) * batch / tokens

    def get_config(self):
        return {
            **super().get_config(),
            "label_smoothing": self.label_smoothing,
            "pad_id": self.pad_id,
        }


class CountedAccuracy(keras.metrics.Metric):
    """Fraction of the labels a subclass keeps (`kept`) that equal the argmax of the logits,
    counted over every batch since the last reset (not a mean of batch means)."""

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self._direction = "up"  # what early stopping and reduce_on_plateau read from a metric
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def kept(self, y_true):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        keep = ops.cast(self.kept(y_true), "float32")
        hits = ops.cast(
            ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), "float32"
        )
        self.correct.assign_add(ops.sum(hits * keep))
        self.total.assign_add(ops.sum(keep))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)


@keras.saving.register_keras_serializable(package="kseq")
class MaskedTokenAccuracy(CountedAccuracy):
    """Fraction of non-padding target tokens predicted correctly (argmax of the logits)."""

    def __init__(self, pad_id=0, name="token_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pad_id = pad_id

    def kept(self, y_true):
        return ops.not_equal(y_true, self.pad_id)

    def get_config(self):
        return {**super().get_config(), "pad_id": self.pad_id}
