"""The BERT family's loss and metric: cross-entropy and accuracy that skip negative labels.

Every head labels what it does not score with -1: tokens after the first piece of a word
(tagging), [CLS]/[SEP]/padding, unused masked-LM prediction slots. Registered in the loss
registry at import; the Keras classes live in `keras_losses`, imported when the loss is made.
"""

from __future__ import annotations

from kseq.spec.components import losses

LOSS = "ignore_index_crossentropy"


@losses.register(LOSS)
def ignore_index_crossentropy(label_smoothing: float = 0.0):
    """Sparse categorical cross-entropy from logits; labels < 0 are ignored."""
    from kseq.models.bert.keras_losses import IgnoreIndexCrossentropy  # Keras: on use only

    return IgnoreIndexCrossentropy(label_smoothing=label_smoothing, name=LOSS)


def masked_accuracy(name: str = "accuracy"):
    """Accuracy of the argmax over labels >= 0."""
    from kseq.models.bert.keras_losses import IgnoreIndexAccuracy  # Keras: on use only

    return IgnoreIndexAccuracy(name=name)
