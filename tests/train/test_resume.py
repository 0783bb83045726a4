"""Resume after a crash: a real SIGKILL mid-training, crashes at chosen moments, --restart, spec
changes, locking, and nothing half-written in RUN_DIR."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import ROOT, SPECS, Crash, crash_after_epoch, run_cli, wait_for_state

import kseq
from kseq.errors import KseqError
from kseq.train import fit as fit_module
from kseq.train import resume

SPEC = str(SPECS / "autoencoder_dense.yaml")
SMALL = [
    "data.synthetic.samples=256",
    "train.epochs=4",
    "train.batch_size=32",
    "train.verbose=0",
    "train.early_stopping=null",
]


def weights(run_dir: Path) -> list[np.ndarray]:
    model = keras.saving.load_model(run_dir / "model.keras", compile=False)
    return model.get_weights()


def history(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "history.json").read_text())


def assert_complete_run_dir(run_dir: Path) -> None:
    names = {p.name for p in run_dir.iterdir()}
    assert {"model.keras", "spec.yaml", "history.json", "learning_curve.png"} <= names
    hidden = [p for p in run_dir.rglob(".*")]
    assert not hidden, hidden  # no temporary file ever reaches RUN_DIR
    assert not resume.partial_dir(run_dir).exists()


def test_sigkill_after_second_epoch_then_same_command_resumes(tmp_path):
    output = tmp_path / "runs" / "ae"
    command = [sys.executable, "-m", "kseq.cli", "train", SPEC, "--output", str(output)]
    for item in [
        "data.synthetic.samples=8192",  # about half a second per epoch: time to kill mid-run
        "train.epochs=8",
        "train.batch_size=32",
        "train.early_stopping=null",
        "train.verbose=2",  # one 'Epoch i/8' line per epoch run
    ]:
        command += ["--set", item]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    state_file = resume.partial_dir(output) / resume.STATE_FILE
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT
    )
    try:
        wait_for_state(process, state_file, lambda state: state["epoch"] >= 2)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "training ended before it could be killed"
    assert not output.exists()
    saved = json.loads(state_file.read_text())  # what the resume must start from
    done = saved["epoch"]
    assert 2 <= done < 8

    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resuming {output} after epoch {done} of 8" in result.stdout
    epochs_run = [int(n) for n in re.findall(r"Epoch (\d+)/8", result.stdout)]
    assert epochs_run == list(range(done + 1, 9))  # only the remaining epochs
    epochs = history(output)
    assert [e["epoch"] for e in epochs] == list(range(1, 9))
    for index in range(done):  # the killed run's epochs are kept as they were
        assert epochs[index]["loss"] == pytest.approx(saved["history"]["loss"][index], abs=0)
    assert_complete_run_dir(output)


def test_crash_then_resume_runs_remaining_epochs_and_restart_discards(
    tmp_path, monkeypatch, capsys
):
    target = tmp_path / "ae"
    spec = kseq.load_spec(SPEC, SMALL)
    crash_after_epoch(monkeypatch, 2)
    with pytest.raises(Crash):
        kseq.train(spec, target)
    monkeypatch.undo()
    partial = resume.partial_dir(target)
    assert json.loads((partial / resume.STATE_FILE).read_text())["epoch"] == 2
    assert not target.exists()
    capsys.readouterr()

    kseq.train(spec, target)
    assert f"resuming {target} after epoch 2 of 4" in capsys.readouterr().out
    assert [e["epoch"] for e in history(target)] == [1, 2, 3, 4]
    assert_complete_run_dir(target)

    # A finished run is replaced only with overwrite=True.
    with pytest.raises(kseq.KseqError, match="already holds a finished run"):
        kseq.train(spec, target)
    # --restart: a new crash leaves a checkpoint; restarting ignores it and trains 4 epochs anew.
    crash_after_epoch(monkeypatch, 3)
    with pytest.raises(Crash):
        kseq.train(spec, target, overwrite=True)
    monkeypatch.undo()
    assert target.exists()  # the previous complete run stays until the new one replaces it
    capsys.readouterr()
    restarted = kseq.load_spec(SPEC, [*SMALL, "train.restart=true"])
    kseq.train(restarted, target, overwrite=True)
    assert "resuming" not in capsys.readouterr().out
    assert len(history(target)) == 4
    assert_complete_run_dir(target)
    assert "restart: false" in (target / "spec.yaml").read_text()


def test_restart_flag_on_the_command_line(tmp_path, monkeypatch):
    target = tmp_path / "ae"
    crash_after_epoch(monkeypatch, 1)
    with pytest.raises(Crash):
        kseq.train(kseq.load_spec(SPEC, SMALL), target)
    monkeypatch.undo()
    args = ["train", SPEC, "--output", str(target), "--restart"]
    result = run_cli(*args, *[a for item in SMALL for a in ("--set", item)])
    assert result.returncode == 0, result.stderr
    assert "resuming" not in result.stdout
    assert len(history(target)) == 4
    assert_complete_run_dir(target)


def test_crash_while_writing_run_dir_resumes_to_identical_result(tmp_path, monkeypatch, capsys):
    """Killed after the last epoch (while saving): the resume trains nothing, and early stopping's
    best weights, restored from the checkpoint, make the same model as an uninterrupted run."""
    overrides = [
        *SMALL[:-1],
        "train.epochs=6",
        "train.optimizer.learning_rate=0.05",  # noisy enough that the last epoch is not the best
        "train.early_stopping.patience=10",
    ]
    spec = kseq.load_spec(SPEC, overrides)
    reference = kseq.train(spec, tmp_path / "reference")
    losses = [e["val_loss"] for e in history(reference)]
    assert int(np.argmin(losses)) != len(losses) - 1  # the restore matters in this setting

    target = tmp_path / "ae"
    original = fit_module._finish

    def crash(*args, **kwargs):
        raise Crash("while writing RUN_DIR")

    monkeypatch.setattr(fit_module, "_finish", crash)
    with pytest.raises(Crash):
        kseq.train(spec, target)
    monkeypatch.setattr(fit_module, "_finish", original)
    capsys.readouterr()
    kseq.train(spec, target)
    assert "after epoch 6 of 6" in capsys.readouterr().out
    assert history(target) == history(reference)
    for ours, theirs in zip(weights(target), weights(reference), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    # checkpoints/best.weights.h5 too: the best epoch's weights, as in the uninterrupted run.
    best = [keras.saving.load_model(r / "model.keras", compile=False) for r in (target, reference)]
    for model, run_dir in zip(best, (target, reference), strict=True):
        model.load_weights(run_dir / "checkpoints" / "best.weights.h5")
    for ours, theirs in zip(best[0].get_weights(), best[1].get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_crash_before_first_checkpoint_leaves_nothing(tmp_path, monkeypatch, capsys):
    target = tmp_path / "ae"

    def crash(*args, **kwargs):
        raise Crash("before the first epoch ended")

    monkeypatch.setattr(fit_module, "fit", crash)
    with pytest.raises(Crash):
        kseq.train(kseq.load_spec(SPEC, SMALL), target)
    assert list(tmp_path.iterdir()) == []


def test_changed_spec_is_refused_but_more_epochs_are_fine(tmp_path, monkeypatch, capsys):
    target = tmp_path / "ae"
    crash_after_epoch(monkeypatch, 2)
    with pytest.raises(Crash):
        kseq.train(kseq.load_spec(SPEC, SMALL), target)
    monkeypatch.undo()
    changed = kseq.load_spec(SPEC, [*SMALL, "train.optimizer.learning_rate=0.1"])
    with pytest.raises(KseqError, match=r"train\.optimizer\.learning_rate.*--restart"):
        kseq.train(changed, target)
    longer = kseq.load_spec(SPEC, [*SMALL, "train.epochs=5"])
    kseq.train(longer, target)
    assert "after epoch 2 of 5" in capsys.readouterr().out
    assert len(history(target)) == 5


def test_without_output_the_newest_unfinished_run_is_resumed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec = kseq.load_spec(SPEC, SMALL)
    crash_after_epoch(monkeypatch, 1)
    with pytest.raises(Crash):
        kseq.train(spec)
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    (partial,) = (tmp_path / "runs").glob(".*.partial")
    capsys.readouterr()
    target = kseq.train(spec)
    assert "after epoch 1 of 4" in capsys.readouterr().out
    assert partial.name == f".{target.name}.partial"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [target.name]


def test_a_locked_run_is_refused(tmp_path):
    target = tmp_path / "ae"
    holder = resume.PartialRun(target)
    holder.lock()
    try:
        assert resume.PartialRun.is_locked(holder.path)
        with pytest.raises(KseqError, match="another kseq train"):
            resume.PartialRun(target).lock()
    finally:
        holder.unlock()
    assert not resume.PartialRun.is_locked(holder.path)


def test_trim_event_file_cuts_a_torn_record(tmp_path):
    def record(payload: bytes) -> bytes:
        return len(payload).to_bytes(8, "little") + b"\0" * 4 + payload + b"\0" * 4

    whole = record(b"first") + record(b"second event")
    path = tmp_path / "events.out.tfevents.1"
    path.write_bytes(whole + record(b"third")[:9])
    resume.trim_event_file(path)
    assert path.read_bytes() == whole
    resume.trim_event_file(path)  # a complete file is left alone
    assert path.read_bytes() == whole


def test_output_that_is_a_file_is_refused_before_training(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setattr(fit_module, "fit", lambda *a, **k: pytest.fail("trained anyway"))
    with pytest.raises(KseqError, match="exists and is not a directory"):
        kseq.train(kseq.load_spec(SPEC, SMALL), blocker)
    with pytest.raises(KseqError, match="cannot write"):
        kseq.train(kseq.load_spec(SPEC, SMALL), blocker / "run")
    assert blocker.read_text() == "x"
