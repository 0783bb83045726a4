"""Learning-rate schedules: rates against the formulas, serialization, `decay_steps: null`, spec
errors, reduce_on_plateau's counters, and both kinds continuing exactly across a resume."""

from __future__ import annotations

import json
import math
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import SPECS, Crash, crash_after_epoch

import kseq
from kseq.errors import KseqError
from kseq.models.bert.optim import with_layer_factors
from kseq.models.family import family_for
from kseq.spec.errors import SpecError
from kseq.train import resume, schedules
from kseq.train.components import make_optimizer

SPEC = str(SPECS / "autoencoder_dense.yaml")
SMALL = [
    "data.synthetic.samples=256",
    "train.batch_size=32",
    "train.verbose=0",
    "train.early_stopping=null",
    "train.tensorboard=false",
]


def optimizer_spec(**schedule):
    overrides = [f"train.optimizer.schedule.{key}={value}" for key, value in schedule.items()]
    return kseq.load_spec(SPEC, ["train.optimizer.learning_rate=0.01", *overrides]).train.optimizer


def rate(schedule, iterations: int) -> float:
    return float(schedule(tf.constant(iterations, tf.int64)))


# Rates at the optimizer's iteration count; the formulas use the step s = iterations + 1.
INVERSE_SQRT = [  # lr 0.01, w 4: lr * min(s / w, sqrt(w / s))
    (0, 0.01 * 1 / 4),  # s = 1
    (1, 0.01 * 2 / 4),
    (3, 0.01),  # s = w: the peak
    (15, 0.01 * math.sqrt(4 / 16)),
    (99, 0.01 * math.sqrt(4 / 100)),
]
WARMUP_COSINE = [  # lr 0.01, w 4, D 10, final 0.001
    (0, 0.0025),
    (3, 0.01),  # end of warmup
    (4, 0.001 + 0.009 * 0.5 * (1 + math.cos(math.pi * 1 / 10))),
    (8, 0.001 + 0.009 * 0.5),  # half-way: cos(pi / 2) = 0
    (10, 0.001 + 0.009 * 0.5 * (1 + math.cos(math.pi * 7 / 10))),
    (13, 0.001),  # end of decay
    (500, 0.001),  # beyond
]
WARMUP_LINEAR = [  # lr 0.01, w 4, D 10, final 0.001
    (0, 0.0025),
    (3, 0.01),
    (4, 0.01 - 0.009 * 1 / 10),
    (8, 0.0055),
    (13, 0.001),
    (500, 0.001),
]


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ({"type": "inverse_sqrt", "warmup_steps": 4}, INVERSE_SQRT),
        (
            {"type": "warmup_cosine", "warmup_steps": 4, "decay_steps": 10},
            WARMUP_COSINE,
        ),
        (
            {"type": "warmup_linear", "warmup_steps": 4, "decay_steps": 10},
            WARMUP_LINEAR,
        ),
    ],
    ids=lambda v: v["type"] if isinstance(v, dict) else "",
)
def test_rates_follow_the_formulas(schedule, expected):
    if schedule["type"] != "inverse_sqrt":
        schedule = {**schedule, "final_learning_rate": 0.001}
    optimizer = make_optimizer(optimizer_spec(**schedule))
    for iterations, value in expected:
        optimizer.iterations.assign(iterations)
        assert float(optimizer.learning_rate) == pytest.approx(value, rel=1e-6), iterations


def test_no_warmup_starts_the_decay_at_the_first_step():
    spec = optimizer_spec(type="warmup_linear", warmup_steps=0, decay_steps=4)
    schedule = spec.schedule.keras_learning_rate(spec.learning_rate)
    assert [rate(schedule, i) for i in range(5)] == pytest.approx(
        [0.0075, 0.005, 0.0025, 0.0, 0.0], abs=1e-9
    )
    spec = optimizer_spec(type="warmup_cosine", warmup_steps=0, decay_steps=2)
    schedule = spec.schedule.keras_learning_rate(spec.learning_rate)
    assert [rate(schedule, i) for i in range(3)] == pytest.approx([0.005, 0.0, 0.0], abs=1e-9)


@pytest.mark.parametrize("kind", ["warmup_cosine", "warmup_linear"])
def test_a_shortened_decay_reaches_a_traced_step(kind):
    """`shorten` (a time-budgeted run re-planned) changes the rate inside an already traced
    train step, and the config records the new length."""
    spec = optimizer_spec(type=kind, warmup_steps=2, decay_steps=100)
    schedule = spec.schedule.keras_learning_rate(spec.learning_rate).shortenable()
    step = tf.function(lambda i: schedule(i))
    before = float(step(tf.constant(21)))  # s = 22: 20 of 100 decay steps done
    schedule.shorten(20)  # the decay now ends at s = 22
    after = float(step(tf.constant(21)))
    assert before > 0.001 and after == pytest.approx(0.0, abs=1e-9)
    assert step.experimental_get_tracing_count() == 1
    reloaded = type(schedule).from_config(schedule.get_config())
    assert float(reloaded(21)) == pytest.approx(after, abs=1e-9)


def test_constant_keeps_a_plain_rate_variable():
    optimizer = make_optimizer(optimizer_spec())
    assert not isinstance(optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule)
    assert float(optimizer.learning_rate) == pytest.approx(0.01)


@pytest.mark.parametrize("kind", ["inverse_sqrt", "warmup_cosine", "warmup_linear"])
def test_schedules_round_trip_through_config_and_the_bert_wrapper(kind):
    extra = {} if kind == "inverse_sqrt" else {"decay_steps": 10, "final_learning_rate": 0.001}
    spec = optimizer_spec(type=kind, warmup_steps=4, **extra)
    schedule = spec.schedule.keras_learning_rate(spec.learning_rate)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert type(again) is type(schedule) and again.get_config() == schedule.get_config()
    assert type(schedule).from_config(schedule.get_config()).get_config() == again.get_config()
    # BERT's layer-wise decay rebuilds the optimizer from its config.
    wrapped = with_layer_factors(make_optimizer(spec), {"embeddings": 0.5})
    assert type(wrapped._learning_rate) is type(schedule)
    assert wrapped._learning_rate.get_config() == schedule.get_config()
    for iterations in (0, 5, 50):
        assert rate(wrapped._learning_rate, iterations) == rate(schedule, iterations)


def test_compiled_model_with_a_schedule_saves_and_loads_in_safe_mode(tmp_path):
    spec = optimizer_spec(type="warmup_cosine", warmup_steps=2, decay_steps=10)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer=make_optimizer(spec), loss="mse")
    x = np.arange(12, dtype="float32").reshape(4, 3) / 12
    model.fit(x, x[:, :2], batch_size=1, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(loaded.optimizer._learning_rate, schedules.WarmupCosineDecay)
    assert int(loaded.optimizer.iterations) == 4
    assert float(loaded.optimizer.learning_rate) == float(model.optimizer.learning_rate)
    # Four updates: s = 5, (s - w) / D = 3 / 10 of the way down the cosine.
    assert float(loaded.optimizer.learning_rate) == pytest.approx(
        0.01 * 0.5 * (1 + math.cos(math.pi * 3 / 10)), rel=1e-6
    )


def test_null_decay_steps_is_the_rest_of_training():
    overrides = [
        *SMALL,
        "train.epochs=3",
        "train.optimizer.schedule.type=warmup_linear",
        "train.optimizer.schedule.warmup_steps=5",
    ]
    spec = kseq.load_spec(SPEC, overrides)
    data = family_for(spec).load_data(spec)
    batches = sum(1 for _ in data.train)  # counted, not the cardinality the code reads
    resolved = schedules.resolve_schedule(spec, data)
    assert resolved.train.optimizer.schedule.decay_steps == 3 * batches - 5
    assert spec.train.optimizer.schedule.decay_steps is None  # the input spec is left alone

    limited = kseq.load_spec(SPEC, [*overrides, "train.steps_per_epoch=4"])
    assert schedules.resolve_schedule(limited, data).train.optimizer.schedule.decay_steps == 7

    data.train = data.train.filter(lambda x, y: True)  # length unknown to tf.data
    with pytest.raises(KseqError, match="set decay_steps or train.steps_per_epoch"):
        schedules.resolve_schedule(spec, data)
    too_long = kseq.load_spec(
        SPEC, [*overrides, "train.steps_per_epoch=4", "train.optimizer.schedule.warmup_steps=12"]
    )
    # A run no longer than its warmup (a smoke run) ends warming up: one step of decay is kept.
    assert schedules.resolve_schedule(too_long, data).train.optimizer.schedule.decay_steps == 1
    # Outside `kseq train` nobody knows the run's length.
    with pytest.raises(KseqError, match="decay_steps null"):
        make_optimizer(spec.train.optimizer)


def test_warmup_fraction_is_a_share_of_the_run():
    """`warmup_fraction: 0.1` over a run of 3 epochs x 4 steps: round(1.2) = 1 warmup step and
    11 of decay; the resolved spec holds plain step counts. With warmup_steps too: a spec error."""
    overrides = [
        *SMALL,
        "train.epochs=3",
        "train.steps_per_epoch=4",
        "train.optimizer.schedule.type=warmup_linear",
        "train.optimizer.schedule.warmup_fraction=0.25",
    ]
    spec = kseq.load_spec(SPEC, overrides)
    schedule = schedules.resolve_schedule(spec, data=None).train.optimizer.schedule
    assert (schedule.warmup_steps, schedule.decay_steps, schedule.warmup_fraction) == (3, 9, None)
    with pytest.raises(KseqError, match="warmup_fraction"):
        make_optimizer(spec.train.optimizer)  # unresolved: only `kseq train` knows the steps
    with pytest.raises(SpecError) as error:
        kseq.load_spec(SPEC, [*overrides, "train.optimizer.schedule.warmup_steps=2"])
    assert "train.optimizer.schedule.warmup_fraction" in str(error.value)
    assert "one of warmup_steps and warmup_fraction" in str(error.value)


def test_constant_and_explicit_decay_need_no_data():
    spec = kseq.load_spec(SPEC, SMALL)
    assert schedules.resolve_schedule(spec, data=None) is spec
    fixed = kseq.load_spec(
        SPEC,
        [
            *SMALL,
            "train.optimizer.schedule.type=warmup_cosine",
            "train.optimizer.schedule.decay_steps=9",
        ],
    )
    assert schedules.resolve_schedule(fixed, data=None) is fixed


@pytest.mark.parametrize("kind", ["constant", "warmup_linear", "reduce_on_plateau"])
def test_schedule_specs_round_trip_through_yaml(kind, tmp_path):
    from kseq.spec.load import dump_spec

    spec = kseq.load_spec(SPEC, [f"train.optimizer.schedule.type={kind}"])
    path = tmp_path / "spec.yaml"
    path.write_text(dump_spec(spec))
    assert kseq.load_spec(path) == spec
    assert kseq.load_spec({"model": {"type": "autoencoder"}}).train.optimizer.schedule.type == (
        "constant"
    )


def issue(overrides):
    with pytest.raises(SpecError) as caught:
        kseq.load_spec(SPEC, overrides)
    (found,) = caught.value.issues
    return found


@pytest.mark.parametrize(
    "overrides, path, expected",
    [
        (["type=warmup_cosine", "warmup_steps=-1"], "warmup_steps", "a value >= 0"),
        (["type=warmup_linear", "decay_steps=0"], "decay_steps", "a value >= 1"),
        (["type=inverse_sqrt", "warmup_steps=0"], "warmup_steps", "a value >= 1"),
        (["type=reduce_on_plateau", "factor=1.0"], "factor", "a value < 1.0"),
        (["type=reduce_on_plateau", "patience=0"], "patience", "a value >= 1"),
    ],
)
def test_bad_values_are_located(overrides, path, expected):
    found = issue([f"train.optimizer.schedule.{item}" for item in overrides])
    assert found.path == f"train.optimizer.schedule.{path}"
    assert (found.message, found.expected) == ("out of range", expected)


def test_cross_field_and_type_errors_are_located(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            model: {type: autoencoder}
            train:
              optimizer:
                learning_rate: 0.001
                schedule:
                  type: warmup_cosine
                  final_learning_rate: 0.01
            """
        )
    )
    with pytest.raises(SpecError) as caught:
        kseq.load_spec(path)
    (found,) = caught.value.issues
    assert found.path == "train.optimizer.schedule.final_learning_rate"
    assert found.line == 7 and "above the peak" in found.message
    found = issue(["train.optimizer.schedule.type=warmup_cosin"])
    assert found.path == "train.optimizer.schedule.type" and "warmup_cosine" in found.message
    found = issue(
        [
            "train.optimizer.schedule.type=reduce_on_plateau",
            "train.optimizer.schedule.min_learning_rate=0.002",
        ]
    )
    assert found.path == "train.optimizer.schedule.min_learning_rate"
    found = issue(["train.optimizer.schedule.decay_steps=10"])  # constant has no decay
    assert found.path == "train.optimizer.schedule.decay_steps" and found.message == "unknown key"


# ---- reduce_on_plateau -------------------------------------------------------------------------
def compiled_model(learning_rate: float = 0.001):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mse")
    return model


def plateau(restored=None, **options):
    spec = kseq.load_spec(
        SPEC,
        ["train.optimizer.schedule.type=reduce_on_plateau"]
        + [f"train.optimizer.schedule.{key}={value}" for key, value in options.items()],
    )
    return spec.train.optimizer.schedule.epoch_callback(restored=restored)


def drive(callback, model, losses, first_epoch: int = 0) -> list[float]:
    """Epoch ends with these val_loss values; the rate after each."""
    rates = []
    for epoch, loss in enumerate(losses, start=first_epoch):
        callback.on_epoch_end(epoch, {"loss": 1.0, "val_loss": loss})
        rates.append(float(model.optimizer.learning_rate))
    return rates


VAL_LOSSES = [1.0, 0.9, 0.95, 0.91, 0.8, 0.85, 0.86, 0.87, 0.88]


def test_plateau_lowers_the_rate_after_patience_epochs(capsys):
    model = compiled_model()
    callback = plateau(factor=0.5, patience=2)
    callback.set_model(model)
    callback.on_train_begin()
    rates = drive(callback, model, VAL_LOSSES)
    # Epochs 3-4 and 6-7 are no better than the best so far; 8-9 no better than epoch 5.
    expected = [1e-3] * 3 + [5e-4] * 3 + [2.5e-4] * 2 + [1.25e-4]
    assert rates == pytest.approx(expected, rel=1e-6)
    assert capsys.readouterr().out.splitlines() == [
        "kseq: learning rate 0.001 -> 0.0005 after epoch 4 (val_loss no better for 2 epochs)",
        "kseq: learning rate 0.0005 -> 0.00025 after epoch 7 (val_loss no better for 2 epochs)",
        "kseq: learning rate 0.00025 -> 0.000125 after epoch 9 (val_loss no better for 2 epochs)",
    ]


def test_plateau_respects_min_delta_floor_and_cooldown(capsys):
    model = compiled_model()
    callback = plateau(factor=0.5, patience=1, min_learning_rate=0.0003, cooldown=1)
    callback.set_model(model)
    callback.on_train_begin()
    rates = drive(callback, model, [1.0, 1.1, 1.2, 1.3, 1.4, 1.5])
    # 2: reduce; 3: cooldown; 4: reduce to the floor; 5: cooldown; 6: at the floor already.
    assert rates == pytest.approx([1e-3, 5e-4, 5e-4, 3e-4, 3e-4, 3e-4], rel=1e-6)
    model = compiled_model()
    callback = plateau(factor=0.5, patience=1, min_delta=0.5)
    callback.set_model(model)
    callback.on_train_begin()
    assert drive(callback, model, [1.0, 0.6, 0.4]) == pytest.approx([1e-3, 5e-4, 5e-4])
    capsys.readouterr()


def test_plateau_state_continues_where_it_stopped(capsys):
    model = compiled_model()
    callback = plateau(factor=0.5, patience=2)
    callback.set_model(model)
    callback.on_train_begin()
    before = drive(callback, model, VAL_LOSSES[:6])
    state = json.loads(json.dumps(callback.state()))  # as it goes through state.json
    assert state == {
        "wait": 1,
        "best": 0.8,
        "cooldown_counter": 0,
        "learning_rate": pytest.approx(5e-4, rel=1e-6),  # a float32 variable's value
    }

    fresh = compiled_model()  # a new process: the rate is back at the spec's value
    resumed = plateau(restored=state, factor=0.5, patience=2)
    resumed.set_model(fresh)
    resumed.on_train_begin()
    assert float(fresh.optimizer.learning_rate) == pytest.approx(5e-4)
    after = drive(resumed, fresh, VAL_LOSSES[6:], first_epoch=6)
    assert before + after == pytest.approx(
        [1e-3] * 3 + [5e-4] * 3 + [2.5e-4] * 2 + [1.25e-4], rel=1e-6
    )
    capsys.readouterr()


def test_plateau_on_a_missing_metric_is_a_clear_error():
    model = compiled_model()
    callback = plateau(monitor="val_acc")
    callback.set_model(model)
    callback.on_train_begin()
    with pytest.raises(KseqError, match="'val_acc' is not an epoch metric.*val_loss"):
        callback.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.0})


def test_keras_saves_the_rate_variable_with_the_optimizer_weights(tmp_path):
    """Why a resumed reduce_on_plateau run keeps its lowered rate: the checkpoint's weights file
    holds `optimizer.learning_rate` (Keras 3 tracks it as an optimizer variable)."""
    model = compiled_model(0.1)
    model.optimizer.build(model.trainable_variables)
    model.optimizer.learning_rate = 0.025
    model.save_weights(tmp_path / "w.weights.h5")
    fresh = compiled_model(0.1)
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(tmp_path / "w.weights.h5")
    assert float(fresh.optimizer.learning_rate) == pytest.approx(0.025)


# ---- across a resume ---------------------------------------------------------------------------
def trained_model(run_dir):
    return keras.saving.load_model(run_dir / "model.keras", safe_mode=True)


def interrupted_and_resumed(spec, target, monkeypatch, after_epoch: int):
    with monkeypatch.context() as patch:
        crash_after_epoch(patch, after_epoch)
        with pytest.raises(Crash):
            kseq.train(spec, target)
    state = json.loads((resume.partial_dir(target) / resume.STATE_FILE).read_text())
    kseq.train(spec, target)
    return state


def assert_same_weights(first, second):
    for ours, theirs in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


def test_a_per_step_schedule_continues_exactly_after_a_resume(tmp_path, monkeypatch, capsys):
    overrides = [
        *SMALL,
        "train.epochs=2",
        "train.optimizer.learning_rate=0.01",
        "train.optimizer.schedule.type=warmup_cosine",
        "train.optimizer.schedule.warmup_steps=3",
        "train.optimizer.schedule.decay_steps=50",
        "train.optimizer.schedule.final_learning_rate=0.001",
    ]
    spec = kseq.load_spec(SPEC, overrides)
    reference = trained_model(kseq.train(spec, tmp_path / "reference"))
    state = interrupted_and_resumed(spec, tmp_path / "resumed", monkeypatch, after_epoch=1)
    assert "resuming" in capsys.readouterr().out
    resumed = trained_model(tmp_path / "resumed")

    steps = int(reference.optimizer.iterations)
    assert steps % 2 == 0 and steps >= 8
    assert int(resumed.optimizer.iterations) == steps
    assert state["epoch"] == 1
    assert_same_weights(resumed, reference)
    final = float(resumed.optimizer.learning_rate)
    assert final == float(reference.optimizer.learning_rate)
    expected = 0.001 + 0.009 * 0.5 * (1 + math.cos(math.pi * (steps + 1 - 3) / 50))
    assert final == pytest.approx(expected, rel=1e-6)


def test_null_decay_steps_through_training_ends_at_the_final_rate(tmp_path):
    overrides = [
        *SMALL,
        "train.epochs=2",
        "train.optimizer.schedule.type=warmup_linear",
        "train.optimizer.schedule.warmup_steps=2",
        "train.optimizer.schedule.final_learning_rate=0.0005",
    ]
    spec = kseq.load_spec(SPEC, overrides)
    run_dir = kseq.train(spec, tmp_path / "run")
    model = trained_model(run_dir)
    steps = int(model.optimizer.iterations)
    saved = kseq.load_spec(run_dir / "spec.yaml")  # the spec as trained: decay_steps fixed
    assert saved.train.optimizer.schedule.decay_steps == steps - 2
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0005, rel=1e-6)
    model.optimizer.iterations.assign(steps - 2)  # the update before the last: s = steps - 1
    assert float(model.optimizer.learning_rate) == pytest.approx(
        0.002 + (0.0005 - 0.002) * (steps - 1 - 2) / (steps - 2), rel=1e-6
    )


def test_reduce_on_plateau_continues_exactly_after_a_resume(tmp_path, monkeypatch, capsys):
    # min_delta so large that only epoch 1 counts as an improvement: the rate halves after
    # epochs 3 and 5. The crash after epoch 4 falls mid-count (wait 1, rate already halved).
    overrides = [
        *SMALL,
        "train.epochs=6",
        "train.optimizer.schedule.type=reduce_on_plateau",
        "train.optimizer.schedule.patience=2",
        "train.optimizer.schedule.min_delta=1000000000.0",
    ]
    spec = kseq.load_spec(SPEC, overrides)
    reference_dir = kseq.train(spec, tmp_path / "reference")
    lines = [line for line in capsys.readouterr().out.splitlines() if "learning rate" in line]
    assert lines == [
        "kseq: learning rate 0.002 -> 0.001 after epoch 3 (val_loss no better for 2 epochs)",
        "kseq: learning rate 0.001 -> 0.0005 after epoch 5 (val_loss no better for 2 epochs)",
    ]
    state = interrupted_and_resumed(spec, tmp_path / "resumed", monkeypatch, after_epoch=4)
    plateau_state = state["reduce_on_plateau"]
    assert plateau_state["wait"] == 1 and plateau_state["cooldown_counter"] == 0
    assert plateau_state["learning_rate"] == pytest.approx(0.001)
    assert plateau_state["best"] == pytest.approx(state["history"]["val_loss"][0])
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if "learning rate" in line] == lines
    assert out.count("after epoch 5 (val_loss") == 1  # the resumed run's only reduction

    reference, resumed = trained_model(reference_dir), trained_model(tmp_path / "resumed")
    assert float(resumed.optimizer.learning_rate) == pytest.approx(0.0005)
    assert float(resumed.optimizer.learning_rate) == float(reference.optimizer.learning_rate)
    assert_same_weights(resumed, reference)
    history = json.loads((tmp_path / "resumed" / "history.json").read_text())
    assert "learning_rate" not in history[0]  # the epoch logs are as before


def test_a_resumed_seq2seq_run_sees_the_batches_of_the_uninterrupted_one(tmp_path, monkeypatch):
    """Bucketed, shuffled batches: the resumed epoch must draw the order the uninterrupted run
    drew in the same epoch, or the weights part after the first resumed step."""
    overrides = [
        "train.epochs=3",
        "train.batch_size=16",
        "data.synthetic.train_size=160",
        "data.synthetic.validation_size=16",
        "train.verbose=0",
        "train.tensorboard=false",
        "train.early_stopping=null",
        "train.optimizer.schedule.type=warmup_linear",
        "train.optimizer.schedule.warmup_steps=4",
    ]
    spec = kseq.load_spec(SPECS / "rnn_seq2seq_none.yaml", overrides)
    reference = trained_model(kseq.train(spec, tmp_path / "reference"))
    interrupted_and_resumed(spec, tmp_path / "resumed", monkeypatch, after_epoch=2)
    assert_same_weights(trained_model(tmp_path / "resumed"), reference)
