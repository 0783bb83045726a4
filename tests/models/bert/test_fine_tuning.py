"""The fine-tuning recipe's arithmetic, by hand."""

from __future__ import annotations

import pytest
from helpers import SPECS

import kseq
from kseq.models.bert.fine_tuning import fine_tuning_recipe, peak_learning_rate


def test_recipe_warms_up_a_tenth_then_decays_at_a_rate_for_the_width():
    spec = kseq.load_spec(
        SPECS / "bert_span_qa.yaml",
        ["train.epochs=3", "train.batch_size=32", "model.hidden_size=384", "model.num_heads=4"],
    )
    recipe, line = fine_tuning_recipe(spec, training_rows=1000)
    # ceil(1000 / 32) = 32 steps an epoch, 96 in 3 epochs, a tenth of them rounded: 10.
    assert recipe.schedule.type == "warmup_linear"
    assert recipe.schedule.warmup_steps == 10 and recipe.schedule.decay_steps is None
    assert recipe.learning_rate == 1e-4 and recipe.type == spec.train.optimizer.type
    assert "peak learning rate 0.0001" in line and "warmup over 10 of 96 steps" in line


@pytest.mark.parametrize("width, rate", [(128, 1e-4), (384, 1e-4), (768, 5e-5), (1024, 3e-5)])
def test_peak_rate_by_width(width, rate):
    assert peak_learning_rate(width) == rate


def test_a_schedule_in_the_spec_is_kept():
    spec = kseq.load_spec(
        SPECS / "bert_span_qa.yaml", ["train.optimizer.schedule.type=warmup_cosine"]
    )
    assert fine_tuning_recipe(spec, training_rows=1000) == (None, None)
