"""`kseq init` for numeric arrays (.npy, .npz, .csv): an autoencoder shaped by the samples."""

from __future__ import annotations

import math

from kseq.data.arrays import read_array
from kseq.init.recipe import epochs_or_budget
from kseq.init.yaml_text import Choice


def arrays_spec(data: str, validation: str | None, minutes: float | None, where) -> tuple:
    array = read_array(data)
    samples, shape = array.shape[0], list(array.shape[1:])
    values = math.prod(shape) if shape else 1
    bottleneck = max(2, min(64, values // 8))
    if len(shape) == 3:
        encoder = Choice(
            {"type": "conv2d", "filters": [16, 32]}, f"samples are images {shape} (H, W, C)"
        )
    elif len(shape) == 2:
        encoder = Choice({"type": "conv1d", "filters": [16, 32]}, f"samples are signals {shape}")
    else:
        units = [max(bottleneck * 2, min(256, values // 2)), max(bottleneck * 2, values // 4)]
        encoder = Choice(
            {"type": "dense", "units": sorted(set(units), reverse=True), "activation": "relu"},
            f"samples are vectors of {values:,} values",
        )
    batch = 64 if samples >= 1000 else 16
    train = epochs_or_budget(minutes, 50) | {
        "batch_size": Choice(batch, f"{samples:,} samples"),
        "optimizer": {"type": "adam", "learning_rate": 0.002},
        "early_stopping": {"patience": 5},
    }
    data_section = {"train": Choice(where(data), f"{samples:,} samples of shape {shape}")}
    if validation:
        data_section["validation"] = where(validation)
    tree = {
        "name": where.stem(data),
        "model": {
            "type": "autoencoder",
            "encoder": encoder,
            "bottleneck": Choice(bottleneck, f"an eighth of {values:,} values, in 2..64"),
        },
        "data": data_section,
        "train": train,
        "export": {"formats": ["saved_model", "tflite"]},
    }
    return tree, [f"Written by `kseq init` from {data} ({samples:,} samples)."]
