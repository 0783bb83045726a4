"""`train.optimizer.schedule`: how the learning rate changes while training, one kind per `type:`.

Each kind builds its own Keras object (formulas in `kseq.train.schedules`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from kseq.errors import KseqError
from kseq.registry import Registry
from kseq.spec.fields import Variant, named_object, option, variant


class ScheduleSpec(Variant):
    """How the learning rate changes while training; `learning_rate` is its peak or start.

    A per-step schedule becomes a Keras LearningRateSchedule of the step (its formulas are in
    `kseq.train.schedules`); `reduce_on_plateau` becomes an epoch callback instead.
    """

    variants = Registry("schedule type")
    default_type = "constant"

    def keras_learning_rate(self, learning_rate: float):
        """The optimizer's `learning_rate` argument: a float or a LearningRateSchedule."""
        return learning_rate

    def epoch_callback(self, restored: dict | None = None, announce: bool = True):
        """A Keras callback that sets the rate between epochs, or None."""
        return None

    @property
    def needs_total_steps(self) -> bool:
        """Whether the schedule depends on the run's number of steps (`decay_steps: null`)."""
        return False

    def with_total_steps(self, total_steps: int) -> ScheduleSpec:
        """This schedule with its step counts fixed for a run of `total_steps` steps."""
        return self

    def check_rates(self, checker, path: str, learning_rate: float) -> None:
        """Cross-field rules against the optimizer's `learning_rate`."""


@variant("constant")
class ConstantScheduleSpec(ScheduleSpec):
    """`learning_rate` for every step."""


@variant("inverse_sqrt")
class InverseSqrtScheduleSpec(ScheduleSpec):
    """Linear warmup to `learning_rate`, then decay as 1/sqrt(step) (the Transformer paper's)."""

    warmup_steps: int = option(4000, min=1, max=1 << 30, help="steps of the linear warmup")

    def keras_learning_rate(self, learning_rate):
        decay = named_object("kseq.train.schedules:InverseSqrtDecay")
        return decay(learning_rate, self.warmup_steps)


@dataclass
class _WarmupDecaySpec(ScheduleSpec):
    type: str = ""
    warmup_steps: int = option(
        0, min=0, max=1 << 30, help="steps of the linear warmup from 0 to learning_rate"
    )
    warmup_fraction: float | None = option(
        None,
        above=0.0,
        below=1.0,
        help="the warmup as a share of the run's steps (instead of warmup_steps), "
        "e.g. 0.1 as BERT fine-tuning does; resolved to warmup_steps when training starts",
    )
    decay_steps: int | None = option(
        None,
        min=1,
        max=100_000 << 30,  # any run's epochs x steps_per_epoch, so a resolved value reloads
        help="steps after the warmup to reach final_learning_rate; null = the rest of training",
    )
    final_learning_rate: float = option(0.0, min=0.0, help="the rate after the decay")

    @property
    def needs_total_steps(self) -> bool:
        return self.decay_steps is None or self.warmup_fraction is not None

    def with_total_steps(self, total_steps: int) -> ScheduleSpec:
        warmup = self.warmup_steps
        if self.warmup_fraction is not None:
            warmup = max(1, round(self.warmup_fraction * total_steps))
        decay = self.decay_steps
        if decay is None:
            # A run shorter than its warmup (a smoke run of a preset) ends still warming up.
            decay = max(1, total_steps - warmup)
        return dataclasses.replace(
            self, warmup_steps=warmup, warmup_fraction=None, decay_steps=decay
        )

    def check_rates(self, checker, path, learning_rate):
        if self.warmup_fraction is not None and self.warmup_steps:
            checker.fail(
                f"{path}.warmup_fraction",
                "given together with warmup_steps",
                "one of warmup_steps and warmup_fraction",
                repr(self.warmup_fraction),
            )
        if self.final_learning_rate > learning_rate:
            checker.fail(
                f"{path}.final_learning_rate",
                "above the peak learning rate",
                f"a value <= train.optimizer.learning_rate ({learning_rate})",
                repr(self.final_learning_rate),
            )

    def _decay_steps(self) -> int:
        if self.decay_steps is None or self.warmup_fraction is not None:
            raise KseqError(
                "train.optimizer.schedule: decay_steps null (the rest of training) and "
                "warmup_fraction are resolved by `kseq train` from the data; set numbers of "
                "steps to build this optimizer outside training"
            )
        return self.decay_steps


@variant("warmup_cosine")
class WarmupCosineScheduleSpec(_WarmupDecaySpec):
    """Linear warmup to `learning_rate`, then a half cosine down to `final_learning_rate`."""

    def keras_learning_rate(self, learning_rate):
        return named_object("kseq.train.schedules:WarmupCosineDecay")(
            learning_rate, self.warmup_steps, self._decay_steps(), self.final_learning_rate
        )


@variant("warmup_linear")
class WarmupLinearScheduleSpec(_WarmupDecaySpec):
    """Linear warmup to `learning_rate`, then a straight line down to `final_learning_rate`."""

    def keras_learning_rate(self, learning_rate):
        return named_object("kseq.train.schedules:WarmupLinearDecay")(
            learning_rate, self.warmup_steps, self._decay_steps(), self.final_learning_rate
        )


@variant("reduce_on_plateau")
class ReduceOnPlateauScheduleSpec(ScheduleSpec):
    """Multiply the rate by `factor` when `monitor` has not improved for `patience` epochs."""

    monitor: str = option("val_loss", nonempty=True, help="the epoch metric to watch")
    factor: float = option(0.5, above=0.0, below=1.0, help="multiplies the rate on a plateau")
    patience: int = option(2, min=1, max=10_000, help="epochs without improvement")
    min_delta: float = option(0.0, min=0.0, help="smallest change that counts as improvement")
    min_learning_rate: float = option(0.0, min=0.0, help="the rate never goes below this")
    cooldown: int = option(0, min=0, max=10_000, help="epochs after a reduction before counting")

    def epoch_callback(self, restored=None, announce=True):
        return named_object("kseq.train.schedules:PlateauDecay")(
            restored=restored,
            announce=announce,
            monitor=self.monitor,
            factor=self.factor,
            patience=self.patience,
            min_delta=self.min_delta,
            cooldown=self.cooldown,
            min_lr=self.min_learning_rate,
        )

    def check_rates(self, checker, path, learning_rate):
        if self.min_learning_rate >= learning_rate:
            checker.fail(
                f"{path}.min_learning_rate",
                "not below the starting learning rate",
                f"a value < train.optimizer.learning_rate ({learning_rate})",
                repr(self.min_learning_rate),
            )
