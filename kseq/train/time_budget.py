"""`train.time_budget`: as many epochs as fit in N minutes, a schedule as long as the steps run.

The clock starts when `kseq train` starts (data preparation counts). Before `fit`, a probe times
training steps and evaluation steps on held-out batches (the probe's updates are undone: the
weights are restored and the optimizer rebuilt), and `plan` sets the epochs (at most
`train.epochs`) and, when not even one epoch fits, the steps of that one epoch; the learning-rate
schedule is then stretched over exactly those steps. `BudgetClock` times each epoch and, when
the plan was optimistic (a noisy machine), ends the run after the epochs that still fit, the
schedule shortened to them; at the deadline it stops training after the batch that crosses it
(the epoch then ends as usual: validation, checkpoint, averaging, export).

A resumed run keeps its plan (saved with each checkpoint) and the budget left: the training time
of earlier sessions counts against it.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras

# Probe: held-out batches timed, in calls after a first one that traces their shapes.
PROBE_BATCHES = 11
PROBE_CALLS = 2
# Share of the budget the plan uses: the rest absorbs checkpoints, noise and the final save.
PLAN_SHARE = 0.9


@dataclass
class Plan:
    """What the budget buys: `epochs` of `steps_per_epoch` steps (None: the whole data)."""

    budget_seconds: float
    epochs: int
    steps_per_epoch: int | None
    step_seconds: float
    epoch_seconds: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Plan:
        return cls(**values)


@dataclass
class Timing:
    """What the probe measured, in seconds: a training step, an evaluation step, and what an
    epoch costs besides its steps (starting `fit`'s epoch and `evaluate`, the checkpoint)."""

    step: float
    eval_step: float
    epoch_overhead: float


class _StepTimes(keras.callbacks.Callback):
    """Seconds between consecutive batch ends of one `fit` or `evaluate` call: a step with its
    input fetch, without the call's own start and finish."""

    def __init__(self):
        super().__init__()
        self.ends: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())

    on_test_batch_end = on_train_batch_end

    def steps(self) -> list[float]:
        return [b - a for a, b in zip(self.ends[:-1], self.ends[1:], strict=True)]


def probe(model, dataset, scratch: Path) -> Timing:
    """Time `model` on batches of `dataset` (held-out batches: the shapes of training, and no
    shuffle order of the training data spent) through `fit` and `evaluate`, and a checkpoint
    written into the folder `scratch`.

    A step is timed between batch ends inside the calls: the time a call takes to start and
    finish varies by hundreds of milliseconds here (measured on two cores: 11 steps took 0.8 s
    in one call and 1.3 s in the next), which a difference of two calls' times put into the
    step (60% too long for the G2P preset). That cost is counted once per epoch instead.

    The model's weights are restored afterwards; its optimizer has taken steps, so the caller
    compiles the model again (a fresh optimizer) before training.
    """
    # The same batches for every call, each shape traced in a first pass: bucketed batches
    # differ in length, and a shape seen first inside the timed calls would time its tracing.
    sample = dataset.repeat().take(PROBE_BATCHES).cache()
    weights = model.get_weights()

    def timed(run) -> tuple[float, float]:
        """(a step, the constant cost of a call) from the timed calls after a tracing one."""
        run(sample, [])
        steps, calls = [], []
        for _ in range(PROBE_CALLS):
            times = _StepTimes()
            start = time.perf_counter()
            run(sample, [times])
            calls.append(time.perf_counter() - start)
            steps += times.steps()
        step = sum(steps) / len(steps)
        per_call = [total - step * PROBE_BATCHES for total in calls]
        return step, max(0.0, sum(per_call) / len(per_call))

    step, fit_cost = timed(
        lambda steps, callbacks: model.fit(
            steps, epochs=1, verbose=0, shuffle=False, callbacks=callbacks
        )
    )
    eval_step, eval_cost = timed(
        lambda steps, callbacks: model.evaluate(steps, verbose=0, callbacks=callbacks)
    )
    model.set_weights(weights)
    start = time.perf_counter()
    model.save_weights(scratch / "probe.weights.h5")
    save = time.perf_counter() - start
    (scratch / "probe.weights.h5").unlink()
    # An epoch writes its weights and, when they improve, the best ones too.
    return Timing(step, eval_step, fit_cost + eval_cost + 2 * save)


def plan(
    budget_minutes: float,
    elapsed: float,
    max_epochs: int,
    steps_per_epoch: int,
    validation_steps: int,
    timing: Timing,
) -> Plan:
    """The epochs (and, below one epoch, the steps) that fit in what is left of the budget."""
    budget = budget_minutes * 60.0
    left = (budget - elapsed) * PLAN_SHARE
    besides_steps = validation_steps * timing.eval_step + timing.epoch_overhead
    epoch = steps_per_epoch * timing.step + besides_steps
    epochs = min(max_epochs, math.floor(left / epoch))
    if epochs >= 1:
        return Plan(budget, epochs, None, timing.step, epoch)
    steps = max(1, math.floor((left - besides_steps) / timing.step))
    return Plan(budget, 1, min(steps, steps_per_epoch), timing.step, epoch)


class BudgetClock(keras.callbacks.Callback):
    """Stops training once the budget is spent. The checkpoint callback (after it) records its
    `state()` and writes `steps` and `seconds` (since the run started, earlier sessions
    included) into each epoch of the history, so history.json shows what the budget bought.

    After each epoch it also re-plans from the epochs it has timed: when the rest of the budget
    buys fewer epochs than planned (a noisy machine, a probe that missed some of an epoch's
    work), the run ends after those epochs and `schedule` (a `shortenable()` warmup-decay
    schedule, or None) decays over them, so the rate still reaches its end instead of being cut
    off at the deadline halfway down. A plan is never lengthened.

    Args:
        plan: the run's `Plan` (a resumed run's saved one); `plan.epochs` shrinks on a re-plan.
        started: `time.monotonic()` when this session's run started.
        earlier_seconds: the training time of earlier sessions of the run.
        steps: the steps the run has taken (earlier sessions included).
        schedule: the optimizer's schedule to shorten with the plan, or None.
        steps_per_epoch: the steps of one epoch, with `schedule`.
    """

    # Epoch times the re-plan reads: the median of the last few (one slow epoch is noise).
    TIMED_EPOCHS = 3

    def __init__(
        self,
        plan: Plan,
        started: float,
        earlier_seconds: float = 0.0,
        steps=0,
        schedule=None,
        steps_per_epoch: int | None = None,
    ):
        super().__init__()
        self.plan = plan
        self.started = started  # time.monotonic() when this session's run started
        self.earlier_seconds = earlier_seconds
        self.steps = int(steps)
        self.schedule = schedule
        self.steps_per_epoch = steps_per_epoch
        self.stopped_by_clock = False
        self.replanned_from: int | None = None
        self._epoch_seconds: list[float] = []  # epoch end to epoch end: checkpoints included
        self._mark = None

    def seconds(self) -> float:
        return self.earlier_seconds + time.monotonic() - self.started

    def on_train_begin(self, logs=None):
        self._mark = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.seconds() >= self.plan.budget_seconds:
            self.stopped_by_clock = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        now = time.monotonic()
        if self._mark is not None:
            self._epoch_seconds.append(now - self._mark)
        self._mark = now
        done = epoch + 1
        fits = done + self.epochs_that_fit()
        if fits < self.plan.epochs and not self.stopped_by_clock:
            self._shorten(fits)
        if done >= self.plan.epochs:
            self.model.stop_training = True

    def epochs_that_fit(self) -> int:
        """Whole epochs the rest of the budget buys at the epochs timed so far, from the second
        on (the first traces the train step); before that, the plan's."""
        timed = self._epoch_seconds[1:]
        if not timed:
            return self.plan.epochs
        recent = sorted(timed[-self.TIMED_EPOCHS :])
        # The lower median: of two, the faster. A plan only ever shrinks, so one slow epoch must
        # not cut it for good; a plan that is really too hopeful shrinks at the next epoch.
        epoch = recent[(len(recent) - 1) // 2]
        return max(0, math.floor((self.plan.budget_seconds - self.seconds()) / epoch))

    def _shorten(self, epochs: int) -> None:
        if self.replanned_from is None:
            self.replanned_from = self.plan.epochs
        self.plan.epochs = epochs
        if self.schedule is not None and self.steps_per_epoch:
            self.schedule.shorten(epochs * self.steps_per_epoch - self.schedule.warmup_steps)
        print(
            f"kseq: time budget: epochs take {_duration(self._epoch_seconds[-1])}; training "
            f"{epochs} epochs instead of {self.replanned_from}"
            + (", the learning rate decaying over them" if self.schedule is not None else "")
        )

    def state(self) -> dict:
        return {"plan": self.plan.to_dict(), "seconds": self.seconds(), "steps": self.steps}

    def summary(self, epochs_run: int) -> str:
        """The final line: what the budget bought."""
        minutes = self.plan.budget_seconds / 60
        if self.stopped_by_clock:
            how = "stopped at the deadline"
        elif self.replanned_from is not None:
            how = f"re-planned from {self.replanned_from} epochs"
        else:
            how = "as planned"
        return (
            f"kseq: time budget {minutes:g} min: {epochs_run} epoch{'s' if epochs_run != 1 else ''}"
            f", {self.steps:,} steps in {_duration(self.seconds())} ({how}; "
            f"{self.plan.step_seconds * 1000:.0f} ms a step)"
        )


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def plan_message(plan: Plan, steps_per_epoch: int) -> str:
    """The first line of a budgeted run: what the probe measured and what the plan is."""
    minutes = plan.budget_seconds / 60
    if plan.steps_per_epoch is not None and plan.steps_per_epoch < steps_per_epoch:
        bought = f"{plan.steps_per_epoch:,} of the epoch's {steps_per_epoch:,} steps"
    else:
        bought = (
            f"{plan.epochs} epoch{'s' if plan.epochs != 1 else ''} of {steps_per_epoch:,} steps"
        )
    return (
        f"kseq: time budget {minutes:g} min: {plan.step_seconds * 1000:.0f} ms a step, "
        f"{_duration(plan.epoch_seconds)} an epoch with validation: training {bought}"
    )
