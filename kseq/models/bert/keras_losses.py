"""The Keras classes behind the BERT family's loss and metric (see `losses`)."""

from __future__ import annotations

import keras
from keras import ops

from kseq.train.sequence_losses import CountedAccuracy, smoothed_cross_entropy


@keras.saving.register_keras_serializable(package="kseq")
class IgnoreIndexCrossentropy(keras.losses.Loss):
    """Mean cross-entropy over the labels >= 0 of the batch (logits in, any rank).

    Per sample, the sum of its token losses is scaled by B / (labelled tokens in the
    batch), so Keras's batch mean is the mean over labelled tokens. With `label_smoothing`
    ε the target is (1 - ε) on the label plus ε / C on every class.
    """

    def __init__(self, label_smoothing=0.0, name="ignore_index_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")  # (B, ...)
        keep = ops.greater_equal(y_true, 0)
        safe = ops.where(keep, y_true, 0)
        losses_ = smoothed_cross_entropy(safe, y_pred, self.label_smoothing)  # (B, ...)
        losses_ = losses_ * ops.cast(keep, "float32")
        weights = ops.cast(keep, "float32")
        batch = ops.cast(ops.shape(y_true)[0], "float32")
        if len(y_true.shape) > 1:
            axes = tuple(range(1, len(y_true.shape)))
            per_sample = ops.sum(losses_, axis=axes)
        else:
            per_sample = losses_
        return per_sample * batch / ops.maximum(ops.sum(weights), 1.0)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="kseq")
class IgnoreIndexAccuracy(CountedAccuracy):
    """Fraction of labels >= 0 that equal the argmax of the logits."""

    def kept(self, y_true):
        return ops.greater_equal(y_true, 0)
