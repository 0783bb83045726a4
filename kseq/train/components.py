"""Registries of optimizers and losses. Factories import Keras lazily so specs load without TF."""

from __future__ import annotations

from kseq.spec.components import losses, optimizers  # the spec chooses from their names

__all__ = ["losses", "make_loss", "make_optimizer", "optimizers"]


def _keras():
    import keras

    return keras


def _common(spec) -> dict:
    kwargs = {"learning_rate": spec.schedule.keras_learning_rate(spec.learning_rate)}
    if spec.clipnorm is not None:
        kwargs["clipnorm"] = spec.clipnorm
    return kwargs


@optimizers.register("adam")
def adam(spec):
    return _keras().optimizers.Adam(**_common(spec))


@optimizers.register("adamw")
def adamw(spec):
    return _keras().optimizers.AdamW(weight_decay=spec.weight_decay or 0.004, **_common(spec))


@optimizers.register("sgd")
def sgd(spec):
    return _keras().optimizers.SGD(momentum=spec.momentum, **_common(spec))


@optimizers.register("rmsprop")
def rmsprop(spec):
    return _keras().optimizers.RMSprop(momentum=spec.momentum, **_common(spec))


@losses.register("mse")
def mse():
    return _keras().losses.MeanSquaredError()


@losses.register("mae")
def mae():
    return _keras().losses.MeanAbsoluteError()


@losses.register("huber")
def huber():
    return _keras().losses.Huber()


@losses.register("binary_crossentropy")
def binary_crossentropy():
    return _keras().losses.BinaryCrossentropy()


@losses.register("masked_sparse_crossentropy")
def masked_sparse_crossentropy(label_smoothing: float = 0.0):
    from kseq.train.sequence_losses import MaskedSparseCrossentropy  # Keras: on use only

    return MaskedSparseCrossentropy(label_smoothing=label_smoothing)


def make_optimizer(spec):
    """The Keras optimizer of an OptimizerSpec, its learning-rate schedule included."""
    return optimizers.get(spec.type)(spec)


def make_loss(name: str, **options):
    return losses.get(name)(**options)
