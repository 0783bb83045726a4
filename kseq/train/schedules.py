"""Learning-rate schedules (`train.optimizer.schedule`) as Keras objects.

With `lr` = `train.optimizer.learning_rate`, `w` = `warmup_steps`, `D` = `decay_steps`,
`final` = `final_learning_rate` and the step `s = optimizer.iterations + 1` (so the first
update does not get rate 0):

```
constant           lr
inverse_sqrt       lr * min(s / w, sqrt(w / s))          the Transformer paper's, peak lr at s = w
warmup_cosine      s <= w: lr * s / w
                   else:   final + (lr - final) * 0.5 * (1 + cos(pi * min(s - w, D) / D))
warmup_linear      s <= w: lr * s / w
                   else:   lr + (final - lr) * min(s - w, D) / D
reduce_on_plateau  lr, times `factor` whenever `monitor` has not improved for `patience` epochs
```

`warmup_steps: 0` skips the ramp. `decay_steps: null` is the rest of training, fixed by `kseq
train` before the optimizer is built (`resolve_schedule`). The per-step schedules are pure
functions of `optimizer.iterations`, which the epoch checkpoint saves, so a resumed run continues
them exactly; `reduce_on_plateau` is a callback whose counters go into `state.json` (the rate
itself is an optimizer variable, saved with the checkpoint's weights).
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
from keras import ops

from kseq.errors import KseqError


def _step(step):
    return ops.cast(step, "float32") + 1.0


def _after_warmup(step, learning_rate: float, warmup_steps: int, after):
    """`lr * s / w` while `s <= w`, then `after`."""
    if warmup_steps == 0:
        return after
    return ops.where(ops.less_equal(step, warmup_steps), learning_rate * step / warmup_steps, after)


@keras.saving.register_keras_serializable(package="kseq")
class InverseSqrtDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`lr * min(s / w, sqrt(w / s))`: linear warmup to `lr` at step `w`, then 1/sqrt(s).

    Args:
        learning_rate: the peak rate, reached at step `warmup_steps`.
        warmup_steps: length of the warmup (>= 1).
    """

    def __init__(self, learning_rate: float, warmup_steps: int):
        super().__init__()
        self.learning_rate = float(learning_rate)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        s = _step(step)
        w = float(self.warmup_steps)
        return self.learning_rate * ops.minimum(s / w, ops.sqrt(w / s))

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}


class _WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(
        self,
        learning_rate: float,
        warmup_steps: int,
        decay_steps: int,
        final_learning_rate: float = 0.0,
    ):
        super().__init__()
        self.learning_rate = float(learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.decay_steps = int(decay_steps)
        self.final_learning_rate = float(final_learning_rate)
        self._length = None  # a variable once `shortenable()`: the train step reads it

    def shortenable(self):
        """This schedule, its decay length read from a variable by the train step, so that
        `shorten` takes effect in a traced step (a time-budgeted run that will end early)."""
        if self._length is None:
            self._length = keras.Variable(
                float(self.decay_steps), trainable=False, name="decay_steps"
            )
        return self

    def shorten(self, decay_steps: int) -> None:
        """Decay over `decay_steps` from now on (fewer than before: the rate only drops)."""
        self.decay_steps = max(1, int(decay_steps))
        self._length.assign(float(self.decay_steps))

    def __call__(self, step):
        s = _step(step)
        length = float(self.decay_steps) if self._length is None else self._length
        length = ops.cast(length, "float32")
        progress = ops.clip(s - self.warmup_steps, 0.0, length) / length
        return _after_warmup(s, self.learning_rate, self.warmup_steps, self._decay(progress))

    def _decay(self, progress):
        raise NotImplementedError

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "final_learning_rate": self.final_learning_rate,
        }


@keras.saving.register_keras_serializable(package="kseq")
class WarmupCosineDecay(_WarmupDecay):
    """Linear warmup to `learning_rate`, then a half cosine to `final_learning_rate` over
    `decay_steps` steps, then `final_learning_rate`."""

    def _decay(self, progress):
        final = self.final_learning_rate
        return final + (self.learning_rate - final) * 0.5 * (1.0 + ops.cos(math.pi * progress))


@keras.saving.register_keras_serializable(package="kseq")
class WarmupLinearDecay(_WarmupDecay):
    """Linear warmup to `learning_rate`, then a straight line to `final_learning_rate` over
    `decay_steps` steps, then `final_learning_rate`."""

    def _decay(self, progress):
        return self.learning_rate + (self.final_learning_rate - self.learning_rate) * progress


class PlateauDecay(keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau whose counters survive a resume, and which reports in one kseq line.

    Two differences from Keras's `on_epoch_end`: it leaves the epoch's logs alone (Keras adds a
    `learning_rate` column to the progress line and history.json), and `cooldown=N` skips the N
    epochs after a reduction (in Keras the first of them already counts, so 1 changes nothing).

    Args:
        restored: `state()` of the interrupted run, or None.
        announce: print a line when the rate goes down (the chief worker only).
        **kwargs: ReduceLROnPlateau's arguments.
    """

    def __init__(self, restored: dict | None = None, announce: bool = True, **kwargs):
        super().__init__(verbose=0, **kwargs)
        self._restored = restored
        self.announce = announce

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)  # resets the counters; put the saved ones back
        if self._restored:
            self.wait = int(self._restored["wait"])
            self.best = self._restored["best"]
            self.cooldown_counter = int(self._restored["cooldown_counter"])
            # The checkpoint's optimizer variables hold the rate too; this keeps both in step.
            self.model.optimizer.learning_rate = float(self._restored["learning_rate"])

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        current = logs.get(self.monitor)
        if current is None:
            raise KseqError(
                f"train.optimizer.schedule.monitor: {self.monitor!r} is not an epoch metric of "
                f"this run; expected one of {', '.join(sorted(logs))}"
            )
        if self.monitor_op is None:
            try:
                self._set_monitor_op()  # needs the compiled metrics, known only now
            except ValueError:
                raise KseqError(
                    f"train.optimizer.schedule.monitor: cannot tell whether {self.monitor!r} "
                    "should go up or down"
                ) from None
        improved = bool(self._is_improvement(current, self.best))
        if improved:
            self.best = float(current)
            self.wait = 0
        if self.in_cooldown():  # the epochs right after a reduction don't count
            self.cooldown_counter -= 1
            return
        if not improved:
            self.wait += 1
            if self.wait >= self.patience and self._reduce(epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0

    def _reduce(self, epoch: int) -> bool:
        optimizer = self.model.optimizer
        old = float(ops.convert_to_numpy(optimizer.learning_rate))
        if old <= np.float32(self.min_lr):
            return False
        optimizer.learning_rate = max(old * self.factor, self.min_lr)
        new = float(ops.convert_to_numpy(optimizer.learning_rate))
        if self.announce:
            print(
                f"kseq: learning rate {old:g} -> {new:g} after epoch {epoch + 1} "
                f"({self.monitor} no better for {self.wait} epoch{'s' if self.wait != 1 else ''})"
            )
        return True

    def state(self) -> dict:
        rate = ops.convert_to_numpy(self.model.optimizer.learning_rate)
        return {
            "wait": int(self.wait),
            "best": None if self.best is None else float(self.best),
            "cooldown_counter": int(self.cooldown_counter),
            "learning_rate": float(rate),
        }


def steps_per_epoch(spec, data) -> int:
    """Batches in one epoch: `train.steps_per_epoch`, else the training data's length."""
    if spec.train.steps_per_epoch is not None:
        return spec.train.steps_per_epoch
    batches = int(data.train.cardinality())
    if batches < 0:  # tf.data's UNKNOWN (-2) or INFINITE (-1)
        raise KseqError(
            "train.optimizer.schedule.decay_steps: null means the rest of training, but the "
            "number of batches per epoch of the training data is unknown; set decay_steps or "
            "train.steps_per_epoch"
        )
    return batches


def resolve_schedule(spec, data):
    """The spec with `decay_steps: null` replaced by the run's remaining steps (epochs x steps
    per epoch minus the warmup); unchanged when the schedule needs no step count."""
    optimizer = spec.train.optimizer
    if not optimizer.schedule.needs_total_steps:
        return spec
    total = spec.train.epochs * steps_per_epoch(spec, data)
    schedule = optimizer.schedule.with_total_steps(total)
    optimizer = dataclasses.replace(optimizer, schedule=schedule)
    return dataclasses.replace(spec, train=dataclasses.replace(spec.train, optimizer=optimizer))
