"""Spec sections shared by every family: train, export, and the bases of model and data."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from kseq.errors import KseqError
from kseq.registry import Registry
from kseq.spec.fields import Variant, option, variant
from kseq.train.components import losses, optimizers


class ModelSpec(Variant):
    """Base of `model:` sections; each family registers one subclass under its `type:` name.

    `data_spec` names the family's `data:` section class; `default_loss` its loss.
    """

    variants = Registry("model type")
    data_spec: ClassVar[type]
    default_loss: ClassVar[str]


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
@dataclass
class ConstantScheduleSpec(ScheduleSpec):
    """`learning_rate` for every step."""

    type: str = "constant"


@variant("inverse_sqrt")
@dataclass
class InverseSqrtScheduleSpec(ScheduleSpec):
    """Linear warmup to `learning_rate`, then decay as 1/sqrt(step) (the Transformer paper's)."""

    type: str = "inverse_sqrt"
    warmup_steps: int = option(4000, min=1, max=1 << 30, help="steps of the linear warmup")

    def keras_learning_rate(self, learning_rate):
        from kseq.train.schedules import InverseSqrtDecay

        return InverseSqrtDecay(learning_rate, self.warmup_steps)


@dataclass
class _WarmupDecaySpec(ScheduleSpec):
    type: str = ""
    warmup_steps: int = option(
        0, min=0, max=1 << 30, help="steps of the linear warmup from 0 to learning_rate"
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
        return self.decay_steps is None

    def with_total_steps(self, total_steps: int) -> ScheduleSpec:
        if self.decay_steps is not None:
            return self
        # A run shorter than its warmup (a smoke run of a preset) ends still warming up.
        return dataclasses.replace(self, decay_steps=max(1, total_steps - self.warmup_steps))

    def check_rates(self, checker, path, learning_rate):
        if self.final_learning_rate > learning_rate:
            checker.fail(
                f"{path}.final_learning_rate",
                "above the peak learning rate",
                f"a value <= train.optimizer.learning_rate ({learning_rate})",
                repr(self.final_learning_rate),
            )

    def _decay_steps(self) -> int:
        if self.decay_steps is None:
            raise KseqError(
                "train.optimizer.schedule.decay_steps: null (the rest of training) is resolved "
                "by `kseq train` from the data; set a number of steps to build this optimizer "
                "outside training"
            )
        return self.decay_steps


@variant("warmup_cosine")
@dataclass
class WarmupCosineScheduleSpec(_WarmupDecaySpec):
    """Linear warmup to `learning_rate`, then a half cosine down to `final_learning_rate`."""

    type: str = "warmup_cosine"

    def keras_learning_rate(self, learning_rate):
        from kseq.train.schedules import WarmupCosineDecay

        return WarmupCosineDecay(
            learning_rate, self.warmup_steps, self._decay_steps(), self.final_learning_rate
        )


@variant("warmup_linear")
@dataclass
class WarmupLinearScheduleSpec(_WarmupDecaySpec):
    """Linear warmup to `learning_rate`, then a straight line down to `final_learning_rate`."""

    type: str = "warmup_linear"

    def keras_learning_rate(self, learning_rate):
        from kseq.train.schedules import WarmupLinearDecay

        return WarmupLinearDecay(
            learning_rate, self.warmup_steps, self._decay_steps(), self.final_learning_rate
        )


@variant("reduce_on_plateau")
@dataclass
class ReduceOnPlateauScheduleSpec(ScheduleSpec):
    """Multiply the rate by `factor` when `monitor` has not improved for `patience` epochs."""

    type: str = "reduce_on_plateau"
    monitor: str = option("val_loss", nonempty=True, help="the epoch metric to watch")
    factor: float = option(0.5, above=0.0, below=1.0, help="multiplies the rate on a plateau")
    patience: int = option(2, min=1, max=10_000, help="epochs without improvement")
    min_delta: float = option(0.0, min=0.0, help="smallest change that counts as improvement")
    min_learning_rate: float = option(0.0, min=0.0, help="the rate never goes below this")
    cooldown: int = option(0, min=0, max=10_000, help="epochs after a reduction before counting")

    def epoch_callback(self, restored=None, announce=True):
        from kseq.train.schedules import PlateauDecay

        return PlateauDecay(
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


@dataclass
class OptimizerSpec:
    """The optimizer and its settings."""

    type: str = option("adam", choices=optimizers.names, help="optimizer name")
    learning_rate: float = option(1e-3, above=0.0, help="learning rate (a schedule's peak)")
    weight_decay: float | None = option(None, min=0.0, help="decoupled weight decay (adamw)")
    momentum: float = option(0.0, min=0.0, below=1.0, help="momentum (sgd, rmsprop)")
    clipnorm: float | None = option(None, above=0.0, help="clip gradients to this norm")
    schedule: ScheduleSpec = option(
        ConstantScheduleSpec(), help="how the learning rate changes while training"
    )

    def check(self, checker, path):
        self.schedule.check_rates(checker, f"{path}.schedule", self.learning_rate)


@dataclass
class EarlyStoppingSpec:
    """Stop when the monitored metric stops improving; the best weights are restored."""

    patience: int = option(5, min=1, max=10_000)
    monitor: str = option("val_loss", nonempty=True)
    min_delta: float = option(0.0, min=0.0)


@dataclass
class DistributeSpec:
    """How training is spread over devices and machines; `train.batch_size` is the global batch."""

    strategy: Literal["none", "mirrored", "multi_worker"] = option(
        "none",
        help="none: one device; mirrored: every local GPU (else every logical CPU); "
        "multi_worker: MultiWorkerMirroredStrategy over the cluster in TF_CONFIG",
    )


@dataclass
class TrainSpec:
    """How `model.fit` runs."""

    epochs: int = option(10, min=1, max=100_000, help="number of epochs")
    batch_size: int = option(32, min=1, max=1 << 20, help="global batch size")
    optimizer: OptimizerSpec = option(OptimizerSpec())
    loss: str | None = option(None, choices=losses.names, help="loss; null = family default")
    steps_per_epoch: int | None = option(None, min=1, max=1 << 30, help="limit batches per epoch")
    early_stopping: EarlyStoppingSpec | None = option(None, help="null disables early stopping")
    average_checkpoints: int | None = option(
        None,
        min=1,
        max=10_000,
        help="save the mean of the weights of this many consecutive epochs ending at the kept "
        "one (the best with early stopping, else the last); null or 1 = off",
    )
    checkpoints: bool = option(True, help="keep the best weights in RUN_DIR/checkpoints")
    tensorboard: bool = option(True, help="write TensorBoard logs to RUN_DIR/logs")
    seed: int = option(0, min=0, max=2**32 - 1, help="seed for weights, shuffling and noise")
    verbose: Literal["auto", 0, 1, 2] = option("auto", help="Keras progress bar mode")
    distribute: DistributeSpec = option(DistributeSpec())
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = option(
        "float32", help="Keras dtype policy while training; saved models are always float32"
    )
    jit_compile: Literal["auto", True, False] = option(
        "auto", help="XLA-compile the train step; auto: Keras's choice (GPU only, no strategy)"
    )
    restart: bool = option(
        False, help="discard an unfinished run of RUN_DIR instead of resuming it (--restart)"
    )


@dataclass
class ExportSpec:
    """What `kseq run` and `kseq export` write by default."""

    formats: list[Literal["saved_model", "tflite"]] = option(
        ["saved_model", "tflite"], nonempty=True
    )
    quantize: Literal["none", "dynamic", "float16", "int8"] = option("none")
    parity_samples: int = option(64, min=1, max=100_000, help="held-out rows the parity gate runs")
    calibration_samples: int = option(
        128, min=1, max=100_000, help="training rows for int8 calibration"
    )


@dataclass(kw_only=True)
class Spec:
    """A kseq spec: one model family, its data, and how to train and export it."""

    name: str = option("kseq-model", nonempty=True, help="the model's name")
    model: ModelSpec
    data: Any = option(None, help="the family's data section")
    decode: Any = option(None, help="inference decoding (sequence-to-sequence families)")
    train: TrainSpec = option(TrainSpec())
    export: ExportSpec = option(ExportSpec())

    def check(self, checker, path):
        check = getattr(self.model, "check_with_data", None)
        if check is not None:
            check(checker, self.data)
