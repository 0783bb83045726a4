"""Checkpoint averaging (`train.average_checkpoints: N`).

The saved model gets the element-wise mean of the weights of N consecutive epochs ending at the
kept epoch: the best one when early stopping restores it, else the last (fewer when fewer ran).
After each epoch the float weights go to `average-EPOCH.npz` in the staging directory, so a
resumed run still has them; the epoch checkpoint deletes the snapshots that can no longer fall in
the window once its `state.json` is in place. Variables that are not floating point (counters,
seeds) keep the kept epoch's value.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras
import numpy as np

from kseq import interrupt
from kseq.errors import KseqError
from kseq.io import atomic_save_arrays
from kseq.train.resume import ensure_space, saved_size

PREFIX = "average-"


def snapshot_name(epoch: int) -> str:
    return f"{PREFIX}{epoch:04d}.npz"


def float_variables(model) -> list:
    return [v for v in model.weights if keras.backend.is_float_dtype(v.dtype)]


def kept_epoch(stopping, last_epoch: int) -> int:
    """The epoch whose weights the saved model holds (1-based): early stopping restores its best
    epoch's at the end of training (Keras 3 does so whether or not it stopped)."""
    if stopping is not None and stopping.best_weights is not None:
        return int(stopping.best_epoch) + 1
    return last_epoch


class WeightSnapshots(keras.callbacks.Callback):
    """Saves the float weights after each epoch for the final average.

    Args:
        staging: the run's staging directory.
        window: N, the number of epochs averaged.
        last_epoch: the last finished epoch of the run being resumed (0 for a new run).
    """

    def __init__(self, staging: Path, window: int, last_epoch: int = 0):
        super().__init__()
        self.staging = staging
        self.window = window
        self.last_epoch = last_epoch

    def on_epoch_end(self, epoch, logs=None):
        path = self.staging / snapshot_name(epoch + 1)
        with interrupt.deferred():
            ensure_space(path, saved_size([self.model]))
            atomic_save_arrays([v.numpy() for v in float_variables(self.model)], path)
        self.last_epoch = epoch + 1

    def epochs(self, kept: int) -> range:
        return range(max(1, kept - self.window + 1), kept + 1)

    def needed(self, stopping, last: int) -> set[str]:
        """Snapshots that may still be averaged after epoch `last`: the window of the epoch
        early stopping keeps, and the last N-1 epochs (a later best epoch's window reaches back
        to them)."""
        kept = kept_epoch(stopping, last)
        epochs = {*self.epochs(kept), *range(max(1, last - self.window + 2), last + 1)}
        return {snapshot_name(epoch) for epoch in epochs}

    def average_into(self, model, kept: int) -> range:
        """Set the model's float weights to the mean over the window ending at `kept`."""
        epochs = self.epochs(kept)
        variables = float_variables(model)
        sums = [np.zeros(v.shape, np.float64) for v in variables]
        for epoch in epochs:
            path = self.staging / snapshot_name(epoch)
            try:
                arrays = np.load(path, allow_pickle=False)
            except OSError:
                raise KseqError(
                    f"{path}: the weights of epoch {epoch} for train.average_checkpoints are "
                    "missing; pass --restart to train afresh"
                ) from None
            except (ValueError, zipfile.BadZipFile):
                raise KseqError(f"{path}: not a weights snapshot; pass --restart") from None
            with arrays:
                if len(arrays.files) != len(variables):
                    raise KseqError(f"{path}: holds weights of a different model")
                for index, total in enumerate(sums):
                    try:
                        total += arrays[f"arr_{index}"]
                    except (KeyError, ValueError, zipfile.BadZipFile):
                        raise KseqError(
                            f"{path}: holds weights of a different model (or is damaged); "
                            "pass --restart"
                        ) from None
        for variable, total in zip(variables, sums, strict=True):
            variable.assign((total / len(epochs)).astype(variable.dtype))
        return epochs


def averaged_message(epochs: range) -> str:
    which = f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {epochs[0]}-{epochs[-1]}"
    return f"kseq: averaged the weights of {which} into the saved model"
