"""The reparameterisation step of a variational autoencoder."""

from __future__ import annotations

import keras
from keras import ops

from kseq.layers.config import ArgumentsConfig


@keras.saving.register_keras_serializable(package="kseq")
class GaussianSampling(ArgumentsConfig, keras.layers.Layer):
    """Samples z = mean + exp(log_var / 2) * eps while training; returns the mean otherwise.

    Adds the KL divergence KL(q(z|x) || N(0, I)) to the model's losses, scaled by
    `kl_weight / elements_per_sample` so it balances a reconstruction loss that is averaged
    over the sample's elements (as `mse` is): together they are the per-element ELBO.

    Args:
        kl_weight: weight of the KL term (beta in beta-VAE).
        elements_per_sample: number of values in one input sample.
        seed: seed of the noise generator.
        **kwargs: passed to `keras.layers.Layer`.

    Call arguments:
        inputs: list `[mean, log_var]`, each `(B, Z)`.
        training: sample when True; the mean otherwise (deterministic export).

    Returns:
        `(B, Z)` code.
    """

    def __init__(self, kl_weight=1.0, elements_per_sample=1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.kl_weight = kl_weight
        self.elements_per_sample = elements_per_sample
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        mean, log_var = inputs  # (B, Z) each
        kl = -0.5 * ops.sum(1.0 + log_var - ops.square(mean) - ops.exp(log_var), axis=-1)
        self.add_loss(self.kl_weight * ops.mean(kl) / self.elements_per_sample)
        if not training:
            return mean
        noise = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * noise

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    config_arguments = ("kl_weight", "elements_per_sample", "seed")
