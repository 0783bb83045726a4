"""`get_config` written once: a layer names its constructor arguments, the mixin serializes them.

Each name in `config_arguments` is a constructor argument kept on the layer under the same
name; initializers, regularizers, constraints and activation functions are serialized as
Keras does. A subclass lists only the arguments it adds (the lists of its bases come first).
"""

from __future__ import annotations

from typing import ClassVar

from keras import activations, constraints, initializers, regularizers

__all__ = ["ArgumentsConfig", "serialize_argument"]


def serialize_argument(value):
    """A constructor argument as `get_config` stores it."""
    for kind, module in (
        (initializers.Initializer, initializers),
        (regularizers.Regularizer, regularizers),
        (constraints.Constraint, constraints),
    ):
        if isinstance(value, kind):
            return module.serialize(value)
    if callable(value):
        return activations.serialize(value)
    return value


class ArgumentsConfig:
    """Mixin before `keras.layers.Layer`: `get_config` adds every argument in `config_arguments`."""

    config_arguments: ClassVar[tuple[str, ...]] = ()

    def get_config(self):
        config = super().get_config()
        for klass in reversed(type(self).__mro__):
            for name in vars(klass).get("config_arguments", ()):
                config[name] = serialize_argument(getattr(self, name))
        return config
