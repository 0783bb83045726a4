"""Checkpoints inside an epoch (`train.checkpoint_every`): a run killed or interrupted mid-epoch
resumes at the next unseen batch — the batches trained, counted one by one, and the final
weights equal an uninterrupted run's — and a damaged checkpoint falls back to the one before."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import ROOT, SPECS, Crash, wait_for_state

import kseq
from kseq import interrupt
from kseq.interrupt import Interrupted
from kseq.train import resume

SPEC = SPECS / "autoencoder_dense.yaml"
SMALL = [
    "data.synthetic.samples=256",  # 8 batches of 32 per epoch
    "train.epochs=3",
    "train.batch_size=32",
    "train.verbose=0",
    "train.early_stopping=null",
    "train.tensorboard=false",
    "train.checkpoint_every.steps=3",
]


def record_batches(monkeypatch) -> list[str]:
    """A fingerprint of every batch `fit` draws, in order, taken when the train step draws it
    (nothing after the tap reads ahead)."""
    seen: list[str] = []
    original = keras.Model.fit

    def note(first):
        seen.append(hashlib.sha256(first.numpy().tobytes()).hexdigest()[:16])
        return np.int32(0)

    def tap(*batch):
        token = tf.py_function(note, [tf.nest.flatten(batch)[0]], tf.int32)
        with tf.control_dependencies([token]):
            out = tf.nest.map_structure(tf.identity, batch)
        return out if len(out) > 1 else out[0]

    def fit(self, x=None, *args, **kwargs):
        options = tf.data.Options()
        options.experimental_optimization.inject_prefetch = False
        return original(self, x.map(tap).with_options(options), *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit)
    return seen


def final_weights(run_dir):
    return keras.saving.load_model(run_dir / "model.keras", compile=False).get_weights()


def crash_at(monkeypatch, finished: int, step: int) -> None:
    """Die right after the checkpoint `step` steps into epoch `finished + 1` is on disk."""
    original = resume.RunCheckpoint._write

    def write_then_crash(self, epoch, at):
        original(self, epoch, at)
        if (epoch, at) == (finished, step):
            raise Crash(f"step {step} of epoch {finished + 1}")

    monkeypatch.setattr(resume.RunCheckpoint, "_write", write_then_crash)


def signal_at(monkeypatch, epoch: int, step: int) -> None:
    """SIGTERM to this process while the step after `step` steps of epoch `epoch + 1` runs."""
    original = resume.RunCheckpoint.on_train_batch_end

    def signal_during_step(self, batch, logs=None):
        if (self.epoch, self.step) == (epoch, step):  # this step has run; its count is next
            os.kill(os.getpid(), signal.SIGTERM)
        original(self, batch, logs)

    monkeypatch.setattr(resume.RunCheckpoint, "on_train_batch_end", signal_during_step)


@contextlib.contextmanager
def sigterm_raises():
    """kseq's signal handlers (as the CLI installs them), then the previous ones back."""
    previous = {s: signal.getsignal(s) for s in interrupt.SIGNALS}
    interrupt.install()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@pytest.fixture
def uninterrupted(tmp_path_factory):
    """The batches and final weights of the run every resumed run must reproduce."""
    with pytest.MonkeyPatch.context() as patch:
        seen = record_batches(patch)
        run = kseq.train(kseq.load_spec(SPEC, SMALL), tmp_path_factory.mktemp("whole") / "run")
    return seen, final_weights(run)


def test_a_crash_mid_epoch_resumes_at_the_next_batch(uninterrupted, tmp_path, monkeypatch, capsys):
    batches, weights = uninterrupted
    assert len(batches) == 24 and len(set(batches)) > 8  # 3 epochs of 8, reshuffled
    target = tmp_path / "run"
    spec = kseq.load_spec(SPEC, SMALL)
    with monkeypatch.context() as patch:
        first = record_batches(patch)
        crash_at(patch, finished=1, step=6)
        with pytest.raises(Crash):
            kseq.train(spec, target)
    assert first == batches[: 8 + 6]  # epoch 1, then 6 batches of epoch 2
    state = json.loads((resume.partial_dir(target) / resume.STATE_FILE).read_text())
    assert (state["epoch"], state["step"], state["batches_per_epoch"]) == (1, 6, 8)
    capsys.readouterr()

    with monkeypatch.context() as patch:
        second = record_batches(patch)
        kseq.train(spec, target)
    assert "kseq: resuming epoch 2 at step 6 of 8" in capsys.readouterr().out
    # No batch seen twice, none skipped, in the uninterrupted run's order.
    assert first + second == batches
    for got, expected in zip(final_weights(target), weights, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert [e["epoch"] for e in json.loads((target / "history.json").read_text())] == [1, 2, 3]


def test_sigterm_mid_step_checkpoints_the_step_it_reached(
    uninterrupted, tmp_path, monkeypatch, capsys
):
    """The signal arrives while a step runs (held until its end): the checkpoint is of that
    step, written on the way out, and the message names it."""
    batches, weights = uninterrupted
    target = tmp_path / "run"
    spec = kseq.load_spec(SPEC, [*SMALL, "train.checkpoint_every.steps=100"])
    with monkeypatch.context() as patch, sigterm_raises():
        first = record_batches(patch)
        signal_at(patch, epoch=1, step=3)  # the 4th step of epoch 2 has just run
        with pytest.raises(Interrupted) as stopped:
            kseq.train(spec, target)
    assert stopped.value.message == (
        "interrupted at step 4 of epoch 2; run the same command to resume"
    )
    assert first == batches[:12]
    state = json.loads((resume.partial_dir(target) / resume.STATE_FILE).read_text())
    assert (state["epoch"], state["step"]) == (1, 4)
    with monkeypatch.context() as patch:
        second = record_batches(patch)
        kseq.train(spec, target)
    assert first + second == batches
    for got, expected in zip(final_weights(target), weights, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_a_damaged_checkpoint_falls_back_to_the_one_before(tmp_path, monkeypatch, capsys):
    target = tmp_path / "run"
    spec = kseq.load_spec(SPEC, SMALL)
    with monkeypatch.context() as patch:
        crash_at(patch, finished=1, step=6)
        with pytest.raises(Crash):
            kseq.train(spec, target)
    partial = resume.partial_dir(target)
    newest = json.loads((partial / resume.STATE_FILE).read_text())
    before = json.loads((partial / resume.PREVIOUS_STATE_FILE).read_text())
    assert (before["epoch"], before["step"]) == (1, 3)
    weights = partial / newest["weights"]
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the file
    weights.write_bytes(bytes(data))
    capsys.readouterr()
    kseq.train(spec, target)
    out = capsys.readouterr().out
    assert (
        f"the newest checkpoint in {partial} is damaged ({newest['weights']} does not match its "
        "checksum); resuming from the one before it (step 3 of epoch 2)"
    ) in out
    assert "resuming epoch 2 at step 3 of 8" in out
    assert (target / "model.keras").is_file()


def _streamed_corpus(tmp_path, pairs: int) -> list[str]:
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "eps", "zeta"]
    lines = []
    for _ in range(pairs + 200):
        source = " ".join(rng.choice(words, size=int(rng.integers(1, 4))))
        lines.append(f"{source}\t{source[::-1]}\n")
    (tmp_path / "train.tsv").write_text("".join(lines[:pairs]))
    (tmp_path / "valid.tsv").write_text("".join(lines[pairs:]))
    return [
        f"data.train={tmp_path / 'train.tsv'}",
        f"data.validation={tmp_path / 'valid.tsv'}",
        "data.streaming=true",
        "train.early_stopping=null",
        "train.verbose=0",
        "train.tensorboard=false",
    ]


@pytest.mark.parametrize("stop", ["crash", "sigterm"])
def test_a_streamed_corpus_resumes_at_the_next_batch(stop, tmp_path, monkeypatch, capsys):
    """The same exact count for a corpus read from a file as it trains (shuffle buffer and
    bucketing in the input pipeline), after a crash at a step checkpoint and after SIGTERM
    between two of them."""
    overrides = [
        *_streamed_corpus(tmp_path, 640),
        "train.epochs=2",
        "train.batch_size=32",
        "train.checkpoint_every.steps=4",
    ]
    spec = kseq.load_spec(SPECS / "rnn_seq2seq_none.yaml", overrides)
    with monkeypatch.context() as patch:
        whole = record_batches(patch)
        kseq.train(spec, tmp_path / "whole")
    per_epoch = len(whole) // 2
    assert per_epoch >= 16 and whole[:per_epoch] != whole[per_epoch:]
    target = tmp_path / "run"
    stopped_at = 8 if stop == "crash" else 9  # SIGTERM: one step past the last checkpoint
    with monkeypatch.context() as patch:
        first = record_batches(patch)
        if stop == "crash":
            crash_at(patch, finished=1, step=8)
            with pytest.raises(Crash):
                kseq.train(spec, target)
        else:
            signal_at(patch, epoch=1, step=8)
            with sigterm_raises(), pytest.raises(Interrupted):
                kseq.train(spec, target)
    capsys.readouterr()
    with monkeypatch.context() as patch:
        second = record_batches(patch)
        kseq.train(spec, target)
    assert f"kseq: resuming epoch 2 at step {stopped_at} of {per_epoch}" in capsys.readouterr().out
    assert first == whole[: per_epoch + stopped_at] and first + second == whole


def test_sigkill_mid_epoch_then_the_same_command_resumes(tmp_path):
    """A real SIGKILL at any moment inside an epoch of a streamed corpus loses at most the
    steps since the last checkpoint; the same command says where it resumes."""
    output = tmp_path / "runs" / "s2s"
    command = [sys.executable, "-m", "kseq.cli", "train", str(SPECS / "rnn_seq2seq_none.yaml")]
    command += ["--output", str(output)]
    for item in [
        *_streamed_corpus(tmp_path, 5000),
        "train.epochs=2",
        "train.batch_size=16",
        "train.checkpoint_every.steps=20",
    ]:
        command += ["--set", item]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    state_file = resume.partial_dir(output) / resume.STATE_FILE
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT
    )
    try:
        wait_for_state(process, state_file, lambda state: state["step"] >= 60)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "training ended before it could be killed"
    saved = json.loads(state_file.read_text())
    assert saved["epoch"] == 0 and saved["step"] % 20 == 0 and saved["step"] >= 60
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    expected = f"kseq: resuming epoch 1 at step {saved['step']} of {saved['batches_per_epoch']}"
    assert expected in result.stdout
    assert (output / "model.keras").is_file()


def test_a_resumed_epoch_keeps_training_the_current_weights(tmp_path, monkeypatch):
    """Early stopping restores its best weights when a `fit` ends, also the one that trains the
    rest of a resumed epoch; the epochs after it start from that epoch's own checkpoint: the
    same model as an uninterrupted run."""
    overrides = [
        *SMALL,
        "train.epochs=5",
        "train.optimizer.learning_rate=0.1",  # noisy: epoch 4 is worse than epoch 3
        "train.early_stopping.patience=10",
    ]
    spec = kseq.load_spec(SPEC, overrides)
    reference = kseq.train(spec, tmp_path / "reference")
    losses = [e["val_loss"] for e in json.loads((reference / "history.json").read_text())]
    # The resumed epoch (the 4th) ends worse than the best before it, and a later epoch is the
    # best: restoring at the end of the resumed epoch would change what epoch 5 trains from.
    assert losses[3] > min(losses[:3]) and int(np.argmin(losses)) == 4
    target = tmp_path / "run"
    with monkeypatch.context() as patch:
        crash_at(patch, finished=3, step=3)
        with pytest.raises(Crash):
            kseq.train(spec, target)
    kseq.train(spec, target)
    for got, expected in zip(final_weights(target), final_weights(reference), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
