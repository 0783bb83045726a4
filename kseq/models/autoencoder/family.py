"""The autoencoder family on the one path: data, model, compile, export endpoints."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kseq.data.arrays import read_array, reshape_samples
from kseq.data.split import hold_out
from kseq.data.synthetic_arrays import synthetic_arrays
from kseq.errors import KseqError
from kseq.export.endpoints import Endpoint
from kseq.models.autoencoder import variational as _variational  # noqa: F401  (registers its layers for loading)
from kseq.models.autoencoder.build import build_autoencoder
from kseq.models.family import Family, PreparedData
from kseq.train.budget import require_memory
from kseq.train.components import make_loss, make_optimizer


def _split(array: np.ndarray, fraction: float, seed: int):
    too_few = f"data: {len(array)} samples are too few to hold out a validation split"
    kept, held = hold_out(len(array), fraction, seed, too_few)
    return array[kept], array[held]


def _arrays(spec, data_file: str | None):
    data = spec.data
    if data_file is not None:
        array = reshape_samples(read_array(data_file, data.npz_key), data.sample_shape, data_file)
        return array, array
    if data.train is None:
        synthetic = data.synthetic
        # float64 generation, a float32 copy and the split: about 4 float32 copies at the peak.
        values = synthetic.samples * math.prod(synthetic.shape)
        require_memory(
            values * 16, "the synthetic data set", "data.synthetic.samples or data.synthetic.shape"
        )
        array = synthetic_arrays(
            synthetic.shape,
            synthetic.samples,
            synthetic.latent_dim,
            synthetic.noise,
            synthetic.seed,
        )
        return _split(array, data.validation_split, synthetic.seed)
    train = reshape_samples(read_array(data.train, data.npz_key), data.sample_shape, data.train)
    if data.validation is None:
        return _split(train, data.validation_split, spec.train.seed)
    validation = read_array(data.validation, data.npz_key)
    validation = reshape_samples(validation, data.sample_shape, data.validation)
    if validation.shape[1:] != train.shape[1:]:
        raise KseqError(
            f"{data.validation}: samples have shape {validation.shape[1:]}; the training data's "
            f"are {train.shape[1:]}"
        )
    return train, validation


@dataclass
class AutoencoderInfo:
    """What the autoencoder's prepared data knows besides its datasets: one sample's shape."""

    sample_shape: list[int]


class AutoencoderFamily(Family):
    """Reconstruct the input through a bottleneck; the encoder doubles as an embedding model."""

    def load_data(self, spec, run_dir=None, data_file=None) -> PreparedData:
        import tensorflow as tf

        train, validation = _arrays(spec, data_file)
        rank = spec.model.encoder.rank
        if train.ndim - 1 != rank:
            raise KseqError(
                f"{spec.data.train or 'data'}: a {spec.model.encoder.type} encoder reads samples "
                f"of rank {rank}; received samples of shape {train.shape[1:]} "
                "(set data.sample_shape to reshape them)"
            )
        batch = spec.train.batch_size
        train_ds = (
            tf.data.Dataset.from_tensor_slices((train, train))
            .shuffle(len(train), seed=spec.train.seed, reshuffle_each_iteration=True)
            .batch(batch)
            .prefetch(2)
        )
        validation_ds = tf.data.Dataset.from_tensor_slices((validation, validation)).batch(batch)
        samples = validation[: spec.export.parity_samples]
        calibration = train[: spec.export.calibration_samples]
        return PreparedData(
            train_ds,
            validation_ds,
            samples={"inputs": samples},
            calibration={"inputs": calibration},
            info=AutoencoderInfo(sample_shape=list(train.shape[1:])),
        )

    def build(self, spec, data):

        return build_autoencoder(spec, data.info.sample_shape, seed=spec.train.seed)

    def compile(self, model, spec) -> None:
        loss = make_loss(spec.train.loss or spec.model.default_loss)
        model.compile(optimizer=make_optimizer(spec.train.optimizer), loss=loss, metrics=["mae"])

    def endpoints(self, model, spec, data, part, static=None):  # all fixed but the batch
        import tensorflow as tf

        encoder = model.get_layer("encoder")
        decoder = model.get_layer("decoder")

        def encode(inputs):
            code = encoder(inputs, training=False)
            return code[0] if spec.model.variational else code  # the mean is the embedding

        # part -> (signature, input name, input shape, output name, function)
        sample_shape = tuple(data.info.sample_shape)
        parts = {
            "full": ("serving_default", "inputs", sample_shape, "reconstruction", model),
            "encoder": ("encode", "inputs", sample_shape, "embedding", encode),
            "decoder": ("decode", "code", (spec.model.bottleneck,), "reconstruction", decoder),
        }
        name, input_name, shape, output_name, fn = parts[part]

        def run(values):
            return fn(values, training=False) if fn is not encode else encode(values)

        samples, calibration = data.samples["inputs"], data.calibration["inputs"]
        if part == "decoder":  # the decoder reads codes: those of the same held-out inputs
            samples, calibration = np.asarray(encode(samples)), np.asarray(encode(calibration))
        return [
            Endpoint(
                name,
                lambda **inputs: {output_name: run(inputs[input_name])},
                [tf.TensorSpec((None, *shape), tf.float32, name=input_name)],
                reference=lambda d: {output_name: np.asarray(run(d[input_name]))},
                samples={input_name: samples},
                calibration=[{input_name: row[None]} for row in calibration],
            )
        ]

    def quality(self, spec, data, part):
        if part != "full":
            return None
        targets = data.samples["inputs"]

        def reconstruction_error(reference, candidate):
            # The task metric: how well each artifact reconstructs the held-out inputs.
            ref = reference["reconstruction"]
            out = candidate["reconstruction"]
            rows = len(ref)
            return {
                "reconstruction_mse_keras": float(np.mean((ref - targets[:rows]) ** 2)),
                "reconstruction_mse_export": float(np.mean((out - targets[:rows]) ** 2)),
            }

        return reconstruction_error
