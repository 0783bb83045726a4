"""`train.time_budget`: the plan from measured step times, the schedule over the planned steps,
the clean stop at the deadline, and a resumed run keeping its plan and budget."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml
from helpers import SPECS, Crash, crash_after_epoch

import kseq
from kseq.train import time_budget
from kseq.train.time_budget import Timing, plan

# A small autoencoder: 9 training batches an epoch, 1 validation batch.
SPEC = str(SPECS / "autoencoder_dense.yaml")
SMALL = [
    "data.synthetic.samples=288",
    "train.batch_size=32",
    "train.verbose=0",
    "train.early_stopping=null",
    "train.tensorboard=false",
    "train.optimizer.schedule.type=warmup_cosine",
    "train.optimizer.schedule.warmup_steps=4",
]


def test_plan_counts_epochs_and_cuts_one_epoch_to_the_steps_that_fit():
    timing = Timing(step=0.1, eval_step=0.05, epoch_overhead=1.0)
    # An epoch: 100 steps x 0.1 + 10 x 0.05 + 1.0 = 11.5 s; (600 - 60) x 0.9 = 486 s -> 42.
    found = plan(10, 60.0, 1000, 100, 10, timing)
    assert (found.epochs, found.steps_per_epoch) == (42, None)
    assert found.epoch_seconds == pytest.approx(11.5)
    assert plan(10, 60.0, 5, 100, 10, timing).epochs == 5  # train.epochs is the most
    # 1 minute, 30 s gone: (30 x 0.9 - 1.5) / 0.1 = 255 steps of a 1000-step epoch.
    one = plan(1, 30.0, 1000, 1000, 10, timing)
    assert (one.epochs, one.steps_per_epoch) == (1, 255)
    assert plan(1, 59.0, 1000, 1000, 10, timing).steps_per_epoch == 1  # at least one step


def _fake_probe(monkeypatch, timing: Timing, takes: float = 0.0) -> list:
    calls = []

    def probe(model, dataset, scratch):
        calls.append(Path(scratch))
        time.sleep(takes)
        return timing

    monkeypatch.setattr(time_budget, "probe", probe)
    return calls


def _history(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "history.json").read_text())


# 9 steps x 0.9 s + 1 x 0.5 s + 0.4 s = 9 s an epoch; with 0.5 min, (30 s - what data and model
# took before the probe) x 0.9 buys 2 epochs as long as that took under 10 s.
TIMING = Timing(step=0.9, eval_step=0.5, epoch_overhead=0.4)


def test_the_schedule_spans_exactly_the_planned_steps(tmp_path, monkeypatch, capsys):
    calls = _fake_probe(monkeypatch, TIMING)
    spec = kseq.load_spec(SPEC, [*SMALL, "train.epochs=50", "train.time_budget=0.5"])
    run_dir = kseq.train(spec, output=tmp_path / "run")
    out = capsys.readouterr().out
    assert len(calls) == 1
    assert (
        "time budget 0.5 min: 900 ms a step, 9 s an epoch with validation: training 2 epochs "
        "of 9 steps" in out
    )
    assert re.search(r"time budget 0.5 min: 2 epochs, 18 steps in \d+ s \(as planned", out)
    epochs = _history(run_dir)
    assert [e["steps"] for e in epochs] == [9, 18]
    assert 0 < epochs[0]["seconds"] <= epochs[1]["seconds"], epochs
    saved = yaml.safe_load((run_dir / "spec.yaml").read_text())["train"]
    schedule = saved["optimizer"]["schedule"]
    assert saved["epochs"] == 2
    assert schedule["warmup_steps"] + schedule["decay_steps"] == 18  # the steps trained
    assert saved["time_budget"] == 0.5


def test_a_plan_that_is_too_hopeful_is_shortened_and_its_rate_decays_to_the_end(
    tmp_path, monkeypatch, capsys
):
    """The probe says a step is free: the plan is the most epochs; from the epochs it times the
    clock re-plans, the run ends before the deadline and the rate reaches its final value."""
    import keras

    _fake_probe(monkeypatch, Timing(step=1e-6, eval_step=1e-6, epoch_overhead=0.0))
    budget = 0.25  # minutes: 15 s, counted from the start of kseq.train
    spec = kseq.load_spec(SPEC, [*SMALL, "train.epochs=100000", f"train.time_budget={budget}"])
    run_dir = kseq.train(spec, output=tmp_path / "run")
    out = capsys.readouterr().out
    planned = re.findall(r"training (\d+) epochs instead of 100000", out)
    assert planned, out
    assert "(re-planned from 100000 epochs;" in out
    epochs = _history(run_dir)
    assert len(epochs) == int(planned[-1]) >= 3
    assert epochs[-1]["seconds"] <= budget * 60
    optimizer = keras.saving.load_model(run_dir / "model.keras").optimizer
    assert int(optimizer.iterations) == len(epochs) * 9
    assert float(optimizer.learning_rate) == pytest.approx(0.0, abs=1e-7)  # decayed to the end


def test_a_plan_that_is_too_hopeful_stops_at_the_deadline(tmp_path, monkeypatch, capsys):
    """Epochs that time as fitting (no re-plan) until the machine slows: the deadline ends the
    run inside an epoch."""
    _fake_probe(monkeypatch, Timing(step=1e-6, eval_step=1e-6, epoch_overhead=0.0))
    monkeypatch.setattr(time_budget.BudgetClock, "epochs_that_fit", lambda clock: 10**6)
    budget = 0.1  # minutes: 6 s, counted from the start of kseq.train
    spec = kseq.load_spec(SPEC, [*SMALL, "train.epochs=100000", f"train.time_budget={budget}"])
    run_dir = kseq.train(spec, output=tmp_path / "run")
    out = capsys.readouterr().out
    assert "(stopped at the deadline;" in out
    last = _history(run_dir)[-1]
    # Past the deadline only the batch that crossed it, the epoch's validation and checkpoint.
    assert budget * 60 <= last["seconds"] <= budget * 60 + 3.0
    assert (run_dir / "model.keras").is_file()


class _Model:
    stop_training = False


def _clock_at(monkeypatch, times: list[float], schedule=None, epochs=50):
    """A clock with a 100 s budget whose `time.monotonic()` returns `times` in turn."""
    ticks = iter(times)
    monkeypatch.setattr(time_budget.time, "monotonic", lambda: next(ticks))
    found = time_budget.Plan(100.0, epochs, None, 0.1, 5.0)
    clock = time_budget.BudgetClock(found, 0.0, schedule=schedule, steps_per_epoch=10)
    clock.set_model(_Model())
    return clock


def test_the_clock_replans_from_the_epochs_after_the_first(monkeypatch, capsys):
    from kseq.train.schedules import WarmupCosineDecay

    schedule = WarmupCosineDecay(1.0, 5, 495).shortenable()
    # train begins at 0; epoch ends at 12 (tracing), 22, 52 (one slow epoch), 62.
    clock = _clock_at(monkeypatch, [0.0, 12.0, 22.0, 22.0, 52.0, 52.0, 62.0, 62.0, 62.0], schedule)
    clock.on_train_begin()
    clock.on_epoch_end(0)
    assert clock.plan.epochs == 50  # one epoch timed, and it traced: no re-plan yet
    clock.on_epoch_end(1)
    # 10 s an epoch, 78 s left: 7 more epochs, 9 in all; the decay ends at their last step.
    assert clock.plan.epochs == 9 and schedule.decay_steps == 9 * 10 - 5
    assert "training 9 epochs instead of 50" in capsys.readouterr().out
    # One slow epoch: of 10 and 30 s the lower median, 10 s, is read: 48 s left buys 4 -> 7 in
    # all (the upper one, 30 s, would cut the plan to 4 for good: a plan never grows back).
    clock.on_epoch_end(2)
    assert clock.plan.epochs == 7 and schedule.decay_steps == 7 * 10 - 5
    clock.on_epoch_end(3)  # 10, 30, 10: median 10, 38 s left: 3 more, 7 in all
    assert clock.plan.epochs == 7 and not clock.model.stop_training
    assert "re-planned from 50 epochs" in clock.summary(4)


def test_the_clock_shrinks_a_plan_again_when_epochs_stay_slow(monkeypatch):
    # Epoch ends at 12 (tracing), 22, 62 (40 s) and 82 (20 s): the slowness lasts.
    clock = _clock_at(monkeypatch, [0.0, 12.0, 22.0, 22.0, 62.0, 62.0, 82.0, 82.0])
    clock.on_train_begin()
    clock.on_epoch_end(0)
    clock.on_epoch_end(1)  # 10 s an epoch, 78 s left: 7 more, 9 in all
    assert clock.plan.epochs == 9
    clock.on_epoch_end(2)  # of 10 and 40 s, 10: 38 s left buys 3 more, 6 in all
    assert clock.plan.epochs == 6
    clock.on_epoch_end(3)  # 10, 40, 20: median 20, 18 s left buys none more: 4 in all
    assert clock.plan.epochs == 4 and clock.model.stop_training is True


def test_the_clock_stops_at_the_deadline_after_the_crossing_batch(monkeypatch):
    clock = _clock_at(monkeypatch, [99.0, 100.5])
    clock.on_train_batch_end(0)
    assert not clock.model.stop_training
    clock.on_train_batch_end(1)
    assert clock.model.stop_training and clock.stopped_by_clock and clock.steps == 2


def test_a_resumed_run_keeps_its_plan_and_the_time_already_spent(tmp_path, monkeypatch, capsys):
    # The first session takes 2 s more than the resumed one can (its probe is slow).
    calls = _fake_probe(monkeypatch, TIMING, takes=2.0)
    # Two epochs at most, in a budget with room to spare: a loaded machine (the suite's other
    # workers) must not reach the deadline before the second epoch ends.
    spec = kseq.load_spec(SPEC, [*SMALL, "train.epochs=2", "train.time_budget=2"])
    with monkeypatch.context() as patch:
        crash_after_epoch(patch, 1)
        with pytest.raises(Crash):
            kseq.train(spec, output=tmp_path / "run")
    capsys.readouterr()
    run_dir = kseq.train(spec, output=tmp_path / "run")
    out = capsys.readouterr().out
    assert len(calls) == 1  # the resumed run did not probe again: the saved plan holds
    assert "resuming" in out and "after epoch 1 of 2" in out
    epochs = _history(run_dir)
    assert [e["steps"] for e in epochs] == [9, 18]
    assert epochs[0]["seconds"] >= 2.0
    assert epochs[1]["seconds"] > epochs[0]["seconds"]  # the earlier session's time counts
    schedule = yaml.safe_load((run_dir / "spec.yaml").read_text())["train"]["optimizer"]
    assert schedule["schedule"]["decay_steps"] == 14


def test_a_budget_is_refused_under_a_strategy():
    with pytest.raises(kseq.KseqError, match="train.time_budget: is timed on one device"):
        kseq.load_spec(SPEC, ["train.time_budget=5", "train.distribute.strategy=mirrored", *SMALL])


def test_the_probe_times_real_steps_and_leaves_the_weights_as_they_were(tmp_path):
    import numpy as np

    from kseq.models.family import family_for

    spec = kseq.load_spec(SPEC, SMALL)
    family = family_for(spec)
    data = family.load_data(spec)
    model = kseq.build(spec)
    before = [w.copy() for w in model.get_weights()]
    timing = time_budget.probe(model, data.validation, tmp_path)
    assert timing.eval_step > 0 and 0 < timing.step < 5
    assert timing.epoch_overhead > 0  # at least the checkpoint write
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert list(tmp_path.iterdir()) == []  # the timed checkpoint is gone
