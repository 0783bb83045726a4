"""Layer normalization written so that a full-integer (int8) TFLite file keeps it in int8.

Keras computes `x * inv + (-mean * inv + beta)`; the converter keeps that NEG in float, so every
LayerNorm of an int8 BERT or Transformer left a float island (DEQUANTIZE, NEG, QUANTIZE) that an
all-int8 accelerator cannot run. `(x - mean) * inv + beta` is the same value with int8 kernels
only (SUB, MUL, ADD, RSQRT, MEAN, SQUARED_DIFFERENCE). In training Keras's own form runs, so a
model trains exactly as with Keras's layer.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["LayerNormalization"]


@keras.saving.register_keras_serializable(package="kseq")
class LayerNormalization(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` (same arguments, weights and float values) whose graph
    has no NEG. `rms_scaling=True` is Keras's own computation (it has no NEG either)."""

    def call(self, inputs, training=None):
        if self.rms_scaling or training:  # in training, exactly Keras's rounding (see above)
            return super().call(inputs)
        # At least float32 for the statistics, as Keras does in mixed precision.
        dtype = keras.backend.result_type(inputs.dtype, "float32")
        x = ops.cast(inputs, dtype)
        mean, variance = ops.moments(x, axes=self.axis, keepdims=True)
        outputs = (x - mean) * ops.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            outputs = outputs * ops.cast(self._broadcast(self.gamma, x), dtype)
        if self.beta is not None:
            outputs = outputs + ops.cast(self._broadcast(self.beta, x), dtype)
        return ops.cast(outputs, self.compute_dtype)

    def _broadcast(self, weight, x):
        axes = [self.axis] if isinstance(self.axis, int) else list(self.axis)
        rank = len(x.shape)
        axes = sorted(a % rank for a in axes)
        if axes == [rank - 1]:
            return weight
        shape = [1] * rank
        for a in axes:
            shape[a] = x.shape[a]
        return ops.reshape(weight, shape)
