"""Helpers shared by the decoders."""

from __future__ import annotations

import tensorflow as tf

NEG = -1e9
PAD_ID = 0


def forbid_special(scores, bos_id):
    """`scores (..., V)` with padding (0) and bos set to -1e9: decoders never emit them.

    Padding is what follows eos in the outputs and bos only ever starts a sequence, so neither
    is a meaningful prediction; excluding them keeps `target_ids` unambiguous even for a
    barely trained model.
    """
    vocab_ids = tf.range(tf.shape(scores)[-1])  # (V,)
    forbidden = tf.logical_or(tf.equal(vocab_ids, PAD_ID), tf.equal(vocab_ids, bos_id))
    return tf.where(forbidden, tf.constant(NEG, scores.dtype), scores)
