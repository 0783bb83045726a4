"""`train.average_checkpoints`: the saved weights are the mean of the window's epochs, the window
ends at the kept epoch, snapshots outlive a crash and only the needed ones stay on disk."""

from __future__ import annotations

import shutil
import types
from collections import namedtuple

import keras
import numpy as np
import pytest
from helpers import SPECS, Crash

import kseq
from kseq.errors import DiskFullError
from kseq.train import averaging, resume
from kseq.train import fit as fit_module

SPEC = str(SPECS / "autoencoder_dense.yaml")
SMALL = [
    "data.synthetic.samples=256",
    "train.batch_size=32",
    "train.verbose=0",
    "train.early_stopping=null",
    "train.tensorboard=false",
]


class EpochWeights(keras.callbacks.Callback):
    """Records every epoch's weights as the model holds them at the epoch's end."""

    def __init__(self):
        super().__init__()
        self.epochs: list[list[np.ndarray]] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append([np.array(v.numpy()) for v in self.model.weights])


def record_epochs(monkeypatch) -> EpochWeights:
    recorder = EpochWeights()
    original = fit_module._callbacks

    def with_recorder(*args, **kwargs):
        callbacks, checkpoint = original(*args, **kwargs)
        return [recorder, *callbacks], checkpoint

    monkeypatch.setattr(fit_module, "_callbacks", with_recorder)
    return recorder


def crash_in_finish(monkeypatch) -> dict:
    """Die where the model is about to be saved; keeps what the model holds at that point."""
    seen = {}

    def crash(spec, family, data, model, history, directory, target):
        seen["weights"] = [np.array(v.numpy()) for v in model.weights]
        seen["history"] = history
        raise Crash("while writing RUN_DIR")

    monkeypatch.setattr(fit_module, "_finish", crash)
    return seen


def snapshots(partial) -> dict[int, list[np.ndarray]]:
    found = {}
    for path in sorted(partial.glob("average-*.npz")):
        with np.load(path) as arrays:
            found[int(path.stem.split("-")[1])] = [arrays[f"arr_{i}"] for i in range(len(arrays))]
    return found


def mean(weight_lists) -> list[np.ndarray]:
    return [np.mean(np.stack(values), axis=0) for values in zip(*weight_lists, strict=True)]


def assert_weights(actual, expected):
    for ours, theirs in zip(actual, expected, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)


def saved_weights(run_dir) -> list[np.ndarray]:
    return keras.saving.load_model(run_dir / "model.keras", compile=False).get_weights()


def test_the_last_epochs_are_averaged_and_a_crash_keeps_the_snapshots(
    tmp_path, monkeypatch, capsys
):
    spec = kseq.load_spec(SPEC, [*SMALL, "train.epochs=3", "train.average_checkpoints=2"])
    target = tmp_path / "ae"
    with monkeypatch.context() as patch:
        recorder = record_epochs(patch)
        seen = crash_in_finish(patch)
        with pytest.raises(Crash):
            kseq.train(spec, target)
    assert (
        "kseq: averaged the weights of epochs 2-3 into the saved model" in capsys.readouterr().out
    )
    partial = resume.partial_dir(target)
    kept = snapshots(partial)
    assert sorted(kept) == [2, 3]  # epoch 1 can no longer be in a window: deleted
    # The snapshots are the epochs' weights, and the model about to be saved is their mean.
    for epoch, weights in kept.items():
        assert_weights(weights, recorder.epochs[epoch - 1])
    assert_weights(seen["weights"], mean([kept[2], kept[3]]))
    assert not np.allclose(seen["weights"][0], recorder.epochs[2][0])  # averaging changed it

    # The resume trains nothing and averages the same files again: the same saved model.
    kseq.train(spec, target)
    assert "averaged the weights of epochs 2-3" in capsys.readouterr().out
    assert_weights(saved_weights(target), seen["weights"])
    assert not partial.exists()


def test_the_window_ends_at_the_best_epoch_when_early_stopping_restores_it(
    tmp_path, monkeypatch, capsys
):
    overrides = [
        *SMALL[:-2],
        "train.tensorboard=false",
        "train.epochs=6",
        "train.optimizer.learning_rate=0.05",  # noisy enough that the last epoch is not the best
        "train.early_stopping.patience=10",
        "train.average_checkpoints=2",
    ]
    spec = kseq.load_spec(SPEC, overrides)
    target = tmp_path / "ae"
    with monkeypatch.context() as patch:
        recorder = record_epochs(patch)
        seen = crash_in_finish(patch)
        with pytest.raises(Crash):
            kseq.train(spec, target)
    best = int(np.argmin(seen["history"]["val_loss"])) + 1
    assert 2 <= best < 6
    out = capsys.readouterr().out
    assert f"kseq: averaged the weights of epochs {best - 1}-{best} into the saved model" in out
    # Kept: the best epoch's window, and epoch 6 (a later best's window would reach back to it).
    assert sorted(snapshots(resume.partial_dir(target))) == sorted({best - 1, best, 6})
    expected = mean([recorder.epochs[best - 2], recorder.epochs[best - 1]])
    assert_weights(seen["weights"], expected)

    kseq.train(spec, target)
    assert_weights(saved_weights(target), expected)


def test_fewer_epochs_than_the_window_average_what_there_is(tmp_path, monkeypatch, capsys):
    spec = kseq.load_spec(SPEC, [*SMALL, "train.epochs=2", "train.average_checkpoints=5"])
    recorder = record_epochs(monkeypatch)
    run_dir = kseq.train(spec, tmp_path / "ae")
    assert "averaged the weights of epochs 1-2" in capsys.readouterr().out
    assert_weights(saved_weights(run_dir), mean(recorder.epochs))


def test_one_epoch_window_is_off(tmp_path, monkeypatch, capsys):
    spec = kseq.load_spec(SPEC, [*SMALL, "train.epochs=1", "train.average_checkpoints=1"])
    monkeypatch.setattr(averaging.WeightSnapshots, "on_epoch_end", lambda *a: pytest.fail())
    kseq.train(spec, tmp_path / "ae")
    assert "averaged" not in capsys.readouterr().out


def counting_model():
    """A Dense layer plus an int32 counter: averaging must leave the counter alone."""
    inputs = keras.Input((2,))
    dense = keras.layers.Dense(2)
    model = keras.Model(inputs, dense(inputs))
    model.counter = model.add_weight(shape=(), dtype="int32", initializer="zeros", trainable=False)
    return model


def test_only_float_variables_are_averaged(tmp_path):
    model = counting_model()
    snapshots_cb = averaging.WeightSnapshots(tmp_path, window=3)
    snapshots_cb.set_model(model)
    kernels = [np.full((2, 2), value, "float32") for value in (1.0, 2.0, 6.0)]
    for epoch, kernel in enumerate(kernels):
        model.layers[1].kernel.assign(kernel)
        model.counter.assign(epoch + 10)
        snapshots_cb.on_epoch_end(epoch)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "average-0001.npz",
        "average-0002.npz",
        "average-0003.npz",
    ]
    epochs = snapshots_cb.average_into(model, kept=3)
    assert list(epochs) == [1, 2, 3]
    np.testing.assert_array_equal(model.layers[1].kernel.numpy(), np.full((2, 2), 3.0))
    assert int(model.counter.numpy()) == 12  # the kept epoch's value
    epochs = snapshots_cb.average_into(model, kept=2)  # a window ending earlier
    np.testing.assert_array_equal(model.layers[1].kernel.numpy(), np.full((2, 2), 1.5))


def test_needed_snapshots():
    cb = averaging.WeightSnapshots(None, window=3)
    names = lambda *epochs: {averaging.snapshot_name(e) for e in epochs}  # noqa: E731
    best_of_4 = types.SimpleNamespace(best_weights=[], best_epoch=3)  # early stopping's best: 4
    assert cb.needed(None, last=10) == names(8, 9, 10)
    assert cb.needed(best_of_4, last=10) == names(2, 3, 4, 9, 10)
    assert cb.needed(None, last=1) == names(1)


def test_a_full_disk_is_refused_before_a_snapshot_is_written(tmp_path, monkeypatch):
    model = counting_model()
    cb = averaging.WeightSnapshots(tmp_path, window=2)
    cb.set_model(model)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 100, 100))
    with pytest.raises(DiskFullError, match="average-0001.npz"):
        cb.on_epoch_end(0)
    assert list(tmp_path.iterdir()) == []


def test_spec_rejects_a_zero_window():
    from kseq.spec.errors import SpecError

    with pytest.raises(SpecError) as caught:
        kseq.load_spec(SPEC, ["train.average_checkpoints=0"])
    (issue,) = caught.value.issues
    assert (issue.path, issue.message) == ("train.average_checkpoints", "out of range")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a zip at all", "not a weights snapshot"),
        ("other-shape", "holds weights of a different model"),
    ],
)
def test_a_damaged_snapshot_is_one_line_not_a_traceback(tmp_path, content, message):
    from kseq.errors import KseqError
    from kseq.train.averaging import WeightSnapshots, snapshot_name

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = tmp_path / snapshot_name(1)
    if content == "other-shape":
        np.savez(path, np.zeros((5, 5)), np.zeros(2))  # same count, wrong kernel shape
    else:
        path.write_bytes(content)
    with pytest.raises(KseqError, match=message):
        WeightSnapshots(tmp_path, window=1, last_epoch=1).average_into(model, 1)
