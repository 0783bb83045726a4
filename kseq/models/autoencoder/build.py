"""Keras graph of the autoencoder family: encoder and decoder are models of their own."""

from __future__ import annotations

import math

import keras

from kseq.errors import KseqError
from kseq.models.autoencoder.variational import GaussianSampling
from kseq.registry import Registry

# stack type -> (forward layer, transposed layer) classes for convolutional stacks
_CONV_LAYERS = {
    "conv1d": (keras.layers.Conv1D, keras.layers.Conv1DTranspose),
    "conv2d": (keras.layers.Conv2D, keras.layers.Conv2DTranspose),
}

noise_layers: Registry = Registry("noise type")


@noise_layers.register("gaussian")
def _gaussian(spec, seed):
    return keras.layers.GaussianNoise(spec.stddev, seed=seed, name="input_noise")


@noise_layers.register("dropout")
def _dropout(spec, seed):
    return keras.layers.Dropout(spec.rate, seed=seed, name="input_noise")


def _regularise(x, stack, prefix, index):
    if stack.batch_norm:
        x = keras.layers.BatchNormalization(name=f"{prefix}_norm_{index}")(x)
    if stack.dropout:
        x = keras.layers.Dropout(stack.dropout, name=f"{prefix}_dropout_{index}")(x)
    return x


def _check_divisible(sample_shape, encoder, total_stride):
    for size in sample_shape[:-1]:
        if size % total_stride:
            raise KseqError(
                f"model.encoder.strides: the input's spatial size {size} (sample shape "
                f"{tuple(sample_shape)}) must be divisible by strides**layers = {total_stride} "
                "so the decoder can restore it exactly"
            )


def build_encoder(spec, sample_shape) -> keras.Model:
    """(B, *sample_shape) -> code (B, Z); a VAE encoder returns [mean, log_var]."""
    stack = spec.encoder
    inputs = keras.Input(tuple(sample_shape), name="inputs")
    x = inputs
    if stack.type == "dense":
        for index, units in enumerate(stack.units):
            x = keras.layers.Dense(units, activation=stack.activation, name=f"dense_{index}")(x)
            x = _regularise(x, stack, "encoder", index)
    else:
        conv, _ = _CONV_LAYERS[stack.type]
        _check_divisible(sample_shape, stack, stack.strides ** len(stack.filters))
        for index, filters in enumerate(stack.filters):
            x = _strided(conv, filters, stack, f"conv_{index}")(x)
            x = _regularise(x, stack, "encoder", index)
        x = keras.layers.Flatten(name="flatten")(x)
    if spec.variational:
        mean = keras.layers.Dense(spec.bottleneck, name="code_mean")(x)
        log_var = keras.layers.Dense(spec.bottleneck, name="code_log_var")(x)
        return keras.Model(inputs, [mean, log_var], name="encoder")
    code = keras.layers.Dense(spec.bottleneck, name="code")(x)
    return keras.Model(inputs, code, name="encoder")


def _decoder_stack(spec):
    """The decoder's layer sizes, in order: explicit, or the encoder's mirrored."""
    if spec.decoder is not None:
        return spec.decoder
    import dataclasses

    sizes_key = "units" if spec.encoder.type == "dense" else "filters"
    mirrored = list(reversed(getattr(spec.encoder, sizes_key)))
    return dataclasses.replace(spec.encoder, **{sizes_key: mirrored})


def build_decoder(spec, sample_shape, encoder: keras.Model) -> keras.Model:
    """code (B, Z) -> reconstruction (B, *sample_shape)."""
    stack = _decoder_stack(spec)
    code = keras.Input((spec.bottleneck,), name="code")
    x = code
    if stack.type == "dense":
        for index, units in enumerate(stack.units):
            x = keras.layers.Dense(units, activation=stack.activation, name=f"dense_{index}")(x)
            x = _regularise(x, stack, "decoder", index)
        size = math.prod(sample_shape)
        x = keras.layers.Dense(size, activation=spec.output_activation, name="output")(x)
        if len(sample_shape) > 1:
            x = keras.layers.Reshape(tuple(sample_shape), name="reshape_output")(x)
        return keras.Model(code, x, name="decoder")
    conv, transposed = _CONV_LAYERS[stack.type]
    total_down = spec.encoder.strides ** len(spec.encoder.filters)
    total_up = stack.strides ** len(stack.filters)
    if total_down != total_up:
        raise KseqError(
            f"model.decoder: upsampling strides**layers = {total_up} must equal the encoder's "
            f"downsampling {total_down} to restore the input shape"
        )
    grid = [size // total_down for size in sample_shape[:-1]]
    first_filters = stack.filters[0]
    x = keras.layers.Dense(
        math.prod(grid) * first_filters, activation=stack.activation, name="expand"
    )(x)
    x = keras.layers.Reshape((*grid, first_filters), name="unflatten")(x)
    for index, filters in enumerate(stack.filters):
        x = _strided(transposed, filters, stack, f"deconv_{index}")(x)
        x = _regularise(x, stack, "decoder", index)
    x = conv(
        sample_shape[-1],
        stack.kernel_size,
        padding="same",
        activation=spec.output_activation,
        name="output",
    )(x)
    return keras.Model(code, x, name="decoder")


def _strided(layer_class, filters, stack, name):
    """One (transposed) convolution of a stack: its kernel, strides and activation, same padding."""
    return layer_class(
        filters,
        stack.kernel_size,
        strides=stack.strides,
        padding="same",
        activation=stack.activation,
        name=name,
    )


def build_autoencoder(spec, sample_shape, seed: int = 0) -> keras.Model:
    """inputs -> [noise] -> encoder -> [sampling] -> decoder -> reconstruction."""
    model_spec = spec.model
    encoder = build_encoder(model_spec, sample_shape)
    decoder = build_decoder(model_spec, sample_shape, encoder)
    inputs = keras.Input(tuple(sample_shape), name="inputs")
    x = inputs
    if model_spec.noise is not None:
        x = noise_layers.get(model_spec.noise.type)(model_spec.noise, seed)(x)
    code = encoder(x)
    if model_spec.variational:
        code = GaussianSampling(
            kl_weight=model_spec.kl_weight,
            elements_per_sample=math.prod(sample_shape),
            seed=seed,
            name="sampling",
        )(code)
    outputs = decoder(code)
    return keras.Model(inputs, outputs, name="autoencoder")
