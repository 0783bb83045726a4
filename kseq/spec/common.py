"""Spec sections shared by every family: train, export, and the bases of model and data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from kseq.registry import Registry
from kseq.spec.components import losses, optimizers
from kseq.spec.fields import Variant, option
from kseq.spec.schedules import ConstantScheduleSpec, ScheduleSpec


class ModelSpec(Variant):
    """Base of `model:` sections; each family registers one subclass under its `type:` name.

    That registration is the family's only one: `family` names its `Family` class as
    `"module:Class"`, imported when a model is built or loaded (so reading a spec never
    imports TensorFlow). `data_spec` names the family's `data:` section class; `default_loss`
    its loss.
    """

    variants = Registry("model type")
    family: ClassVar[str]
    data_spec: ClassVar[type]
    default_loss: ClassVar[str]
    # What `kseq export --part` accepts (the whole model first).
    parts: ClassVar[tuple[str, ...]] = ("full",)


def check_heads_divide_width(checker, path: str, hidden_size: int, num_heads: int) -> None:
    """Attention heads split the width evenly: `{path}.num_heads` must divide `hidden_size`."""
    if hidden_size % num_heads:
        checker.fail(
            f"{path}.num_heads",
            f"does not divide hidden_size ({hidden_size})",
            "a divisor of hidden_size",
            repr(num_heads),
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
class CheckpointEverySpec:
    """How often training writes a checkpoint inside an epoch (whichever comes first), besides
    the one at every epoch's end; a killed run resumes at the next unseen batch."""

    steps: int | None = option(None, min=1, max=1 << 30, help="every N training steps")
    minutes: float | None = option(
        None, above=0.0, max=60 * 24 * 7, help="every M minutes of training"
    )

    def check(self, checker, path):
        if self.steps is None and self.minutes is None:
            checker.fail(
                path,
                "names no interval",
                "{steps: N} or {minutes: M} (or null: at epoch ends only)",
                "{}",
            )


@dataclass
class TrainSpec:
    """How `model.fit` runs."""

    epochs: int = option(
        10, min=1, max=100_000, help="number of epochs (with time_budget: the most)"
    )
    time_budget: float | None = option(
        None,
        above=0.0,
        max=60 * 24 * 30,
        help="minutes: train as many epochs as fit (timed on the first steps), the schedule "
        "stretched over them, and stop at the deadline; null = train.epochs",
    )
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
    checkpoint_every: CheckpointEverySpec | None = option(
        CheckpointEverySpec(minutes=10.0),
        help="checkpoints inside an epoch; null: at epoch ends only",
    )

    def check(self, checker, path):
        if self.time_budget is not None and self.distribute.strategy != "none":
            checker.fail(
                f"{path}.time_budget",
                "is timed on one device (each worker would plan alone)",
                f"null with {path}.distribute.strategy: {self.distribute.strategy}",
                self.time_budget,
            )


# Measured, and why; kept in one place for the spec check and the exporter.
SEQ2SEQ_INT8_REFUSAL = (
    "int8 files decode greedily or with beam search, not by sampling: sampling cuts the logits "
    "off at a temperature and top-k that int8 logits do not keep"
)
SEQ2SEQ_INT8_ADVICE = "decode.strategy: greedy or beam (kseq export --set decode.strategy=beam)"


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
        strategy = getattr(self.decode, "strategy", None)  # None: not a seq2seq spec
        int8_tflite = self.export.quantize == "int8" and "tflite" in self.export.formats
        if int8_tflite and strategy == "sampling":
            checker.fail(
                "export.quantize",
                SEQ2SEQ_INT8_REFUSAL,
                f"{SEQ2SEQ_INT8_ADVICE}, or quantize: dynamic or float16",
                "int8",
            )
