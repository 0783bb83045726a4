"""Layer-wise learning-rate decay as an optimizer subclass that scales each variable's rate.

Scaling gradients would not work with Adam-type optimizers (their update is invariant to a
constant gradient scale), so the learning rate handed to `update_step` is scaled instead, per
variable, by the factor of the top-level layer that owns it (the first part of
`variable.path`). Decoupled weight decay (AdamW) keeps the base rate.
"""

from __future__ import annotations

import functools


@functools.cache
def _layerwise_class(base):
    class LayerwiseDecay(base):
        def build(self, variables):
            super().build(variables)
            factors = getattr(self, "_kseq_layer_factors", {})
            self._kseq_variable_factors = [
                float(factors.get(v.path.split("/")[0], 1.0)) for v in variables
            ]

        def update_step(self, gradient, variable, learning_rate):
            factor = self._kseq_variable_factors[self._get_variable_index(variable)]
            if factor != 1.0:
                learning_rate = learning_rate * factor
            return super().update_step(gradient, variable, learning_rate)

    LayerwiseDecay.__name__ = LayerwiseDecay.__qualname__ = f"LayerwiseDecay{base.__name__}"
    return LayerwiseDecay


def with_layer_factors(optimizer, factors: dict[str, float]):
    """A copy of `optimizer` whose learning rate is multiplied by `factors[layer name]`.

    Layers missing from `factors` train at the full rate.
    """
    cls = _layerwise_class(type(optimizer))
    scaled = cls.from_config(optimizer.get_config())
    scaled._kseq_layer_factors = dict(factors)
    return scaled
