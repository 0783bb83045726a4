"""The validation split every family makes when the spec gives no held-out file."""

from __future__ import annotations

import numpy as np

from kseq.errors import KseqError


def hold_out(count: int, fraction: float, seed: int, too_few: str) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) indices of `count` items: `round(count * fraction)` of them (at least
    one) held out, drawn by a permutation seeded with `seed`.

    Raises:
        KseqError(`too_few`): nothing would be left to train on.
    """
    order = np.random.default_rng(seed).permutation(count)
    held = max(1, int(round(count * fraction)))
    if held >= count:
        raise KseqError(too_few)
    return order[held:], order[:held]


def train_and_validation(data, read_files, seed: int, noun: str) -> tuple[list, list]:
    """The training and validation examples of a `data:` section with user files.

    `read_files(value)` reads `data.train` or `data.validation` (a file, glob or list); without
    a validation file, `hold_out` takes `data.validation_split` of the training examples.
    """
    train = read_files(data.train)
    if data.validation is not None:
        return train, read_files(data.validation)
    too_few = f"{data.train}: too few {noun} ({len(train)}) to hold out a validation split"
    kept, held = hold_out(len(train), data.validation_split, seed, too_few)
    return [train[i] for i in kept], [train[i] for i in held]
