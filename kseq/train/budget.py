"""Memory budget: refuse, before anything is allocated, work that would not fit this machine.

The parameter count is exact and free: the family's model is built once inside a Keras
`StatelessScope` that never initializes its variables, so only shapes exist. Activations are
estimated from the layers' output shapes at the spec's batch size and sequence length.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass

from kseq.errors import KseqError
from kseq.spec.fields import to_data

FLOAT_BYTES = 4
# Training keeps the weights, their gradients and Adam's two moment slots.
TRAINING_COPIES = 4
# Every activation is kept for the backward pass, which makes one gradient of the same size.
ACTIVATION_COPIES = 2


def available_memory() -> int:
    """Bytes this process can still allocate (MemAvailable; total memory where unknown)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 1 << 62  # unknown: refuse nothing


def _gib(count: int) -> str:
    return f"{count / (1 << 30):.1f} GiB"


def require_memory(needed: int, what: str, fields: str, available: int | None = None) -> None:
    """Raise a KseqError naming `fields` when `needed` bytes exceed the available memory."""
    available = available_memory() if available is None else available
    if needed > available:
        raise KseqError(
            f"{what} would need about {_gib(needed)} of memory and {_gib(available)} is "
            f"available; reduce {fields}"
        )


@dataclass(frozen=True)
class Estimate:
    parameters: int
    activation_values: int  # floats alive in one training step (one batch)

    @property
    def training_bytes(self) -> int:
        weights = self.parameters * FLOAT_BYTES * TRAINING_COPIES
        return weights + self.activation_values * FLOAT_BYTES * ACTIVATION_COPIES


def shape_only_model(family, spec, data):
    """The family's model with shapes but no variable values (nothing is allocated)."""
    import keras
    from keras.src.backend.common import global_state  # no public way to drop deferred vars

    key = "uninitialized_variables"
    pending = list(global_state.get_global_attribute(key, [], set_to_default=True))
    rng_state = random.getstate()  # seed generators draw from it; the real build must not notice
    try:
        with keras.StatelessScope(initialize_variables=False):
            return family.build(spec, data)
    finally:
        global_state.set_global_attribute(key, pending)
        random.setstate(rng_state)


def _output_values(model, batch: int, length: int) -> int:
    """Floats produced by the layers of `model` (nested models included) for one batch."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += _output_values(layer, batch, length)
            continue
        if isinstance(layer, keras.layers.InputLayer):
            continue
        for tensor in keras.tree.flatten(layer.output):
            dims = [length if d is None else int(d) for d in tensor.shape[1:]]
            total += batch * math.prod(dims)
    return total


def _largest_fields(model_spec, count: int = 3) -> str:
    """The model's largest size fields as `model.path=value`, for the message."""

    found = []

    def walk(value, path):
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list) and value and all(type(v) is int for v in value):
            found.append((max(value), f"{path}={value}"))
        elif type(value) is int and value > 1:
            found.append((value, f"{path}={value}"))

    walk(to_data(model_spec), "model")
    found.sort(key=lambda item: -item[0])
    return ", ".join(text for _, text in found[:count]) or "the model's sizes"


def estimate(family, spec, data) -> Estimate:
    model = shape_only_model(family, spec, data)
    parameters = sum(math.prod(v.shape) for v in model.weights)
    activations = _output_values(model, spec.train.batch_size, family.activation_length(spec))
    return Estimate(parameters, activations)


def check_model_fits(family, spec, data, available: int | None = None) -> Estimate:
    """Refuse a model whose training would not fit in memory; returns the estimate."""
    found = estimate(family, spec, data)
    fields = _largest_fields(spec.model)
    what = f"the model ({found.parameters:,} parameters)"
    available = available_memory() if available is None else available
    weights = found.parameters * FLOAT_BYTES * TRAINING_COPIES
    require_memory(weights, f"training {what}", fields, available)
    require_memory(
        found.training_bytes,
        f"training {what} at train.batch_size {spec.train.batch_size}",
        f"train.batch_size (or {fields})",
        available,
    )
    return found
