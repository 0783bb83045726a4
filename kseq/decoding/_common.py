"""Helpers shared by the decoders."""

from __future__ import annotations

import numpy as np
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


def argmax_allowed(logits, bos_id):
    """`(B,)` int32 argmax of `logits (B, V)` over the ids a decoder may emit (see above).

    The ids `forbid_special` + argmax give, ties included (the lowest id wins), but by gathering
    the allowed columns instead of writing -1e9 into two: under int8 such a constant would set
    the logits' quantization scale to about 1e9/255 and make every logit equal.
    """
    vocab = logits.shape[-1]
    if vocab is None:  # not known when traced: fall back to the mask
        return tf.argmax(forbid_special(logits, bos_id), axis=-1, output_type=tf.int32)
    allowed = np.array([i for i in range(vocab) if i not in (PAD_ID, bos_id)], np.int32)
    best = tf.argmax(tf.gather(logits, allowed, axis=-1), axis=-1, output_type=tf.int32)
    return tf.gather(tf.constant(allowed), best)
