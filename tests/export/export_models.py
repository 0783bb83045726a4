"""Tiny Keras models and their endpoints for the export tests (imported by module name)."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from kseq.export import Endpoint


def _ref(model: keras.Model, out: str, key: str = "x"):
    return lambda batch: {out: np.asarray(model(batch[key], training=False))}


def autoencoder(trained: bool = True) -> tuple[keras.Model, list[Endpoint]]:
    """Dense autoencoder, 66k params, two endpoints: "serving_default" (full) and "encode".

    Briefly fitted on smooth signals (random sinusoids), so int8 calibration sees realistic
    activation ranges and the quantized outputs can be judged by cosine similarity.
    """
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 96, dtype=np.float32)

    def signals(n: int) -> np.ndarray:
        freq, phase = rng.uniform(1, 4, (n, 1)), rng.uniform(0, 6.3, (n, 1))
        return np.sin(2 * np.pi * freq * t + phase).astype(np.float32)

    x = keras.Input((96,), name="x")
    h = keras.layers.Dense(256, activation="relu", name="enc_hidden")(x)
    z = keras.layers.Dense(32, activation="tanh", name="code")(h)
    h2 = keras.layers.Dense(256, activation="relu", name="dec_hidden")(z)
    y = keras.layers.Dense(96, name="reconstruction")(h2)
    full = keras.Model(x, y, name="autoencoder")
    encoder = keras.Model(x, z, name="encoder")
    if trained:
        full.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
        train = signals(512)
        full.fit(train, train, epochs=4, batch_size=64, verbose=0)
    sig = [tf.TensorSpec((None, 96), tf.float32, name="x")]
    calibration = [{"x": signals(16)} for _ in range(4)]
    samples = {"x": signals(6)}
    endpoints = [
        Endpoint(
            "encode",
            lambda x: {"z": encoder(x, training=False)},
            sig,
            reference=_ref(encoder, "z"),
            samples=samples,
            calibration=calibration,
        ),
        Endpoint(
            "serving_default",
            lambda x: {"y": full(x, training=False)},
            sig,
            reference=_ref(full, "y"),
            samples=samples,
            calibration=calibration,
        ),
    ]
    return full, endpoints


def conv1d() -> tuple[keras.Model, list[Endpoint]]:
    """Conv1D stack over a dynamic time axis; samples use a length other than any traced one."""
    keras.utils.set_random_seed(1)
    x = keras.Input((None, 5), name="x")
    h = keras.layers.Conv1D(12, 3, padding="same", activation="relu")(x)
    # No dilation: a dilated Conv1D over a dynamic axis (SPACE_TO_BATCH_ND with paddings computed
    # at run time) gives wrong values on LiteRT 2.3's CompiledModel, and the gate rejects it.
    h = keras.layers.Conv1D(7, 5, padding="same")(h)
    model = keras.Model(x, h)
    sig = [tf.TensorSpec((None, None, 5), tf.float32, name="x")]
    rng = np.random.default_rng(1)
    samples = {"x": rng.normal(size=(4, 13, 5)).astype(np.float32)}
    ep = Endpoint(
        "serving_default", lambda x: {"y": model(x)}, sig, samples, reference=_ref(model, "y")
    )
    return model, [ep]


def conv2d() -> tuple[keras.Model, list[Endpoint]]:
    """Conv2D down, Conv2DTranspose up, plus an argmax endpoint compared exactly."""
    keras.utils.set_random_seed(2)
    x = keras.Input((8, 10, 3), name="image")
    h = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    h = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same")(h)
    # A last plain conv, as the autoencoder family's decoder has: LiteRT 2.3's CompiledModel
    # cannot bind an output whose shape TRANSPOSE_CONV works out at run time (it reads zeros).
    h = keras.layers.Conv2D(4, 1)(h)
    model = keras.Model(x, h)
    sig = [tf.TensorSpec((None, 8, 10, 3), tf.float32, name="image")]
    rng = np.random.default_rng(2)
    samples = {"image": rng.normal(size=(3, 8, 10, 3)).astype(np.float64)}  # cast by the gate

    def classes(image):
        return {"label": tf.argmax(model(image), axis=-1, output_type=tf.int32)}

    def classes_ref(batch):
        return {"label": np.argmax(np.asarray(model(batch["image"])), axis=-1).astype(np.int32)}

    return model, [
        Endpoint(
            "serving_default",
            lambda image: {"y": model(image)},
            sig,
            samples,
            reference=_ref(model, "y", key="image"),
        ),
        Endpoint("classes", classes, sig, samples, reference=classes_ref, exact=True),
    ]


def conv_autoencoder() -> tuple[keras.Model, list[Endpoint]]:
    """Conv2D/Conv2DTranspose image autoencoder, 76k params, one endpoint, smooth inputs.

    Convolution kernels have a wide fan-in (3*3*channels), so per-channel int8 scales cost
    little next to the weights; this is the model the int8 size ratio is measured on.
    """
    keras.utils.set_random_seed(4)
    rng = np.random.default_rng(4)
    grid = np.linspace(0, 1, 16, dtype=np.float32)

    def images(n: int) -> np.ndarray:
        f = rng.uniform(0.5, 2.0, (n, 1, 1, 3))
        u, v = grid[None, :, None, None], grid[None, None, :, None]
        return np.sin(2 * np.pi * f * u) * np.cos(2 * np.pi * f * v).astype(np.float32)

    x = keras.Input((16, 16, 3), name="image")
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    h = keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(h)
    h = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(h)
    h = keras.layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(h)
    y = keras.layers.Conv2D(3, 3, padding="same")(h)
    model = keras.Model(x, y)
    sig = [tf.TensorSpec((None, 16, 16, 3), tf.float32, name="image")]
    ep = Endpoint(
        "serving_default",
        lambda image: {"y": model(image)},
        sig,
        reference=_ref(model, "y", key="image"),
        samples={"image": images(4).astype(np.float32)},
        calibration=[{"image": images(8).astype(np.float32)} for _ in range(3)],
    )
    return model, [ep]


def lstm() -> tuple[keras.Model, list[Endpoint]]:
    """Keras 3 LSTM: exports to SavedModel, but lowers to TensorList ops with no TFLite builtin."""
    keras.utils.set_random_seed(3)
    x = keras.Input((None, 4), name="x")
    h = keras.layers.LSTM(6, name="lstm")(x)
    y = keras.layers.Dense(2, name="head")(h)
    model = keras.Model(x, y)
    sig = [tf.TensorSpec((None, None, 4), tf.float32, name="x")]
    samples = {"x": np.random.default_rng(3).normal(size=(3, 5, 4)).astype(np.float32)}
    ep = Endpoint(
        "serving_default", lambda x: {"y": model(x)}, sig, samples, reference=_ref(model, "y")
    )
    return model, [ep]


def with_reference(ep: Endpoint, reference) -> Endpoint:
    """A copy of `ep` with another reference (to make the parity gate fail on purpose)."""
    return dataclasses.replace(ep, reference=reference)
