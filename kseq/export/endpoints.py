"""What a family hands to the exporter: named endpoints plus the data to check them with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


def as_numpy(tensors: dict) -> dict:
    """A dict of tensors as a dict of numpy arrays."""
    return {k: np.asarray(v) for k, v in tensors.items()}


def eager_reference(fn: Callable) -> Callable[[dict], dict]:
    """The reference that runs the endpoint's own function eagerly on numpy inputs (Keras
    layers, no conversion), for endpoints whose function calls the Keras model directly."""
    import tensorflow as tf

    def reference(inputs: dict) -> dict:
        return as_numpy(fn(**{k: tf.constant(v) for k, v in inputs.items()}))

    return reference


@dataclass
class Endpoint:
    """One serving signature.

    Args:
        name: signature name in the SavedModel and the .tflite file (e.g. "serving_default",
            "encode", "generate").
        fn: a TensorFlow-traceable function taking keyword tensors named like `input_signature`
            and returning a dict of named tensors.
        input_signature: list of `tf.TensorSpec` with `name=` set; the batch dimension is None.
        samples: held-out inputs (dict name -> array, batch first) the parity gate runs.
        reference: numpy-in/numpy-out callable computing the same outputs with Keras
            (dict of arrays -> dict of arrays); the parity gate compares against it. Default:
            `fn` itself run eagerly (`eager_reference`), for a function that calls Keras layers.
        calibration: a few batches of training inputs for int8 calibration (list of dicts),
            or a function returning them, for data that is costly to make and only needed for
            int8 (a decoder's teacher-forced states).
        tflite: False for endpoints that only go into the SavedModel (e.g. string signatures).
        exact: outputs compared by equality rather than a tolerance (e.g. token ids).
        float_scopes: TF name scopes whose ops an int8 file keeps in float (the rest int8):
            bookkeeping that needs more precision than int8 and no accelerator runs anyway.
    """

    name: str
    fn: Callable
    input_signature: list
    samples: dict[str, np.ndarray]
    reference: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None
    calibration: list[dict[str, np.ndarray]] | Callable[[], list[dict[str, np.ndarray]]] = field(
        default_factory=list
    )
    tflite: bool = True
    exact: bool = False
    float_scopes: tuple[str, ...] = ()

    def __post_init__(self):
        if self.reference is None:
            self.reference = eager_reference(self.fn)

    def calibration_batches(self) -> list[dict[str, np.ndarray]]:
        return list(self.calibration() if callable(self.calibration) else self.calibration)
