"""The fine-tuning recipe: how a pretrained BERT (`model.init.from`) trains when the spec gives
no schedule of its own.

A constant rate fit for training from scratch (the example specs' 1e-3 and 2e-3) wipes out what
the checkpoint knows, and a rate fit for fine-tuning but without warmup learns nothing visible
in a first epoch (measured on `qa_long` with MiniLM: start accuracy 1.5% after an epoch at a
constant 1e-4). The field's recipe (BERT, Devlin et al. 2019; its distilled small models): a
linear warmup over the first tenth of the steps to a peak rate chosen by the model's width,
then a linear decay to zero over the rest of the run.
"""

from __future__ import annotations

import dataclasses
import math

from kseq.spec.schedules import ConstantScheduleSpec, WarmupLinearScheduleSpec

__all__ = ["WARMUP_SHARE", "fine_tuning_recipe", "peak_learning_rate"]

WARMUP_SHARE = 0.1


def peak_learning_rate(hidden_size: int) -> float:
    """BERT-base (768) and larger fine-tune at 5e-5 or less, small distilled models
    (MiniLM's 384, BERT-mini's 256) at about 1e-4."""
    if hidden_size <= 384:
        return 1e-4
    if hidden_size <= 768:
        return 5e-5
    return 3e-5


def fine_tuning_recipe(spec, training_rows: int):
    """`spec.train.optimizer` with the recipe, and the one line that says so; `(None, None)`
    when the spec has a schedule of its own (anything but `constant`)."""
    optimizer = spec.train.optimizer
    if not isinstance(optimizer.schedule, ConstantScheduleSpec):
        return None, None
    steps = spec.train.steps_per_epoch or max(1, math.ceil(training_rows / spec.train.batch_size))
    total = spec.train.epochs * steps
    warmup = max(1, round(WARMUP_SHARE * total))
    rate = peak_learning_rate(spec.model.hidden_size)
    schedule = WarmupLinearScheduleSpec(type="warmup_linear", warmup_steps=warmup)
    recipe = dataclasses.replace(optimizer, learning_rate=rate, schedule=schedule)
    line = (
        f"fine-tuning recipe (model.init.from, no schedule in the spec): peak learning rate "
        f"{rate:g} (width {spec.model.hidden_size}), linear warmup over {warmup} of {total} "
        f"steps, then linear decay to 0; train.optimizer.schedule chooses otherwise"
    )
    return recipe, line
