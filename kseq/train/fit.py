"""`kseq train`: spec -> data -> model -> model.fit -> RUN_DIR.

Training runs inside a persistent staging directory next to RUN_DIR (`kseq.train.resume`): a run
killed at any moment resumes from its last finished epoch when started again with the same
command, and RUN_DIR appears only complete, by one rename. Distribution (`kseq.train.distribute`)
and precision (`kseq.train.precision`) are applied around the family's own build and compile.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

from kseq import interrupt
from kseq.errors import DiskFullError, WorkerLost, write_error
from kseq.interrupt import Interrupted
from kseq.io import atomic_write_text, swap_into_place
from kseq.io import run_dir as layout
from kseq.models.family import family_for
from kseq.spec.fields import to_data
from kseq.spec.load import dump_spec
from kseq.train import averaging, distribute, precision, resume, time_budget
from kseq.train.budget import check_model_fits
from kseq.train.resume import (
    TMP_PREFIX,
    PartialRun,
    describe,
    ensure_space,
    find_partial,
    remove_temporaries,
    saved_size,
)
from kseq.train.schedules import resolve_schedule, steps_per_epoch


def _callbacks(
    spec,
    directory: Path,
    partial,
    state: dict | None,
    chief: bool = True,
    clock=None,
    batches_per_epoch: int | None = None,
    multi_worker: bool = False,
) -> tuple[list, object]:
    """The spec's callbacks, restored from `state`, and the checkpoint callback (last)."""
    import keras

    callbacks: list = []
    stopping = None
    if spec.train.early_stopping is not None:
        options = spec.train.early_stopping
        stopping = resume.ResumableEarlyStopping(
            restored=(state or {}).get("early_stopping"),
            best_weights=resume.restored_best_weights(partial, state),
            monitor=options.monitor,
            patience=options.patience,
            min_delta=options.min_delta,
            restore_best_weights=True,
        )
        callbacks.append(stopping)
    best = None
    if spec.train.checkpoints:
        best = resume.BestWeights(
            partial.path,
            directory / "checkpoints" / "best.weights.h5",
            (state or {}).get("best_val_loss"),
            (state or {}).get("best_val_file"),
        )
        callbacks.append(best)
    if spec.train.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(directory / "logs")))
    plateau = spec.train.optimizer.schedule.epoch_callback(
        restored=(state or {}).get("reduce_on_plateau"), announce=chief
    )
    if plateau is not None:
        callbacks.append(plateau)
    snapshots = None
    if (spec.train.average_checkpoints or 1) > 1:
        snapshots = averaging.WeightSnapshots(
            partial.path, spec.train.average_checkpoints, int((state or {}).get("epoch", 0))
        )
        callbacks.append(snapshots)
    if clock is not None:  # before the checkpoint, which records its state
        callbacks.append(clock)
    checkpoint = resume.RunCheckpoint(
        partial,
        state,
        spec.train.epochs,
        spec.train.checkpoint_every,
        batches_per_epoch,
        stopping,
        best,
        plateau,
        snapshots,
        clock,
        multi_worker=multi_worker,
    )
    callbacks.append(checkpoint)  # last: it records the others' state after each epoch
    return callbacks, checkpoint


def _verbosity(setting) -> int:
    """`auto`: the progress bar on a terminal, one line per epoch anywhere else (logs, pipes)."""
    if setting != "auto":
        return setting
    return 1 if sys.stdout.isatty() else 2


def fit(spec, data, model, directory: Path, partial, state: dict | None, where, clock=None) -> dict:
    """Run model.fit (resuming from `state`); returns the history of every epoch, earlier runs'
    epochs included. `clock`: a `kseq.train.time_budget.BudgetClock` that stops at the deadline.

    A checkpoint inside an epoch resumes in two `fit` calls: the rest of that epoch (the data
    without the batches already trained), then the remaining epochs, restored from the first
    call's end-of-epoch checkpoint (so early stopping's end-of-fit restore of its best weights
    in between changes nothing).
    """

    train = distribute.shard_by_data(data.train, where)
    validation = distribute.shard_by_data(data.validation, where)
    batches = spec.train.steps_per_epoch or max(0, int(train.cardinality())) or None
    finished = int(state["epoch"]) if state else 0
    _replay_epoch_orders(train, finished, spec.train.steps_per_epoch)
    step = int(state.get("step", 0)) if state and not state.get("stopped") else 0
    with distribute.multi_worker_logs(where), warnings.catch_warnings():
        if spec.train.steps_per_epoch is None or step:
            # Bucketed datasets have no known length, and a resumed epoch is shorter: an epoch
            # ends when the data does, which Keras reports as a warning. That is intended here.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
        if step:
            rest = train if spec.train.steps_per_epoch else train.skip(step)
            steps = spec.train.steps_per_epoch and spec.train.steps_per_epoch - step
            checkpoint = _fit_epochs(
                spec, model, rest, validation, directory, partial, state, where, clock, batches,
                epochs=finished + 1, steps=steps,
            )  # fmt: skip
            state = partial.read_state()
        checkpoint = _fit_epochs(
            spec, model, train, validation, directory, partial, state, where, clock, batches,
            epochs=spec.train.epochs, steps=spec.train.steps_per_epoch,
        )  # fmt: skip
    stopping = checkpoint.early_stopping
    if stopping is not None and stopping.stopped_epoch > 0 and where.chief:
        print(early_stop_message(stopping, spec.train.epochs))
    snapshots = checkpoint.snapshots
    if snapshots is not None:  # before anything is saved; redone from the files on a resume
        kept = averaging.kept_epoch(stopping, snapshots.last_epoch)
        epochs = snapshots.average_into(model, kept)
        if where.chief:
            print(averaging.averaged_message(epochs))
    return checkpoint.history


def _fit_epochs(
    spec, model, train, validation, directory, partial, state, where, clock, batches, epochs, steps
):
    """One `model.fit` from the checkpoint `state` up to `epochs`; returns its checkpoint
    callback. SIGTERM/SIGINT inside an epoch's training leaves a checkpoint of the step reached."""
    callbacks, checkpoint = _callbacks(
        spec,
        directory,
        partial,
        state,
        where.chief,
        clock,
        batches_per_epoch=batches,
        multi_worker=where.multi_worker,
    )
    with where.scope():
        checkpoint.restore(model)
    try:  # with nothing left to run, fit still ends the run (early stopping's best weights)
        model.fit(
            train,
            validation_data=validation,
            epochs=epochs,
            initial_epoch=checkpoint.initial_epoch,
            steps_per_epoch=steps,
            callbacks=callbacks,
            verbose=_verbosity(spec.train.verbose),
            shuffle=False,  # the dataset shuffles itself, with the spec's seed
        )
    except Interrupted:
        checkpoint.stop_holding()
        checkpoint.save_interrupted()
        raise
    finally:
        checkpoint.stop_holding()
    return checkpoint


def _replay_epoch_orders(dataset, finished_epochs: int, steps_per_epoch: int | None) -> None:
    """Give a resumed run the shuffle orders the uninterrupted run would see.

    A dataset reshuffled each iteration takes its orders from seeded sequences that start over
    in a new process, and iterators take the next seeds: some shuffles when the iterator is
    opened, others (those behind a stage that batches, as in a streamed corpus) at its first
    element. Keras 3 opens per whole epoch one iterator it reads and, when the dataset's
    length is known, one more it leaves unread (ready for an epoch that never uses it);
    opening as many, the first read for one element, replays both kinds of sequence (one
    shuffle buffer filled per replayed epoch). A resumed epoch reads the same dataset without
    its first batches (`skip`: the same shuffles). With `train.steps_per_epoch` an iterator
    spans epochs, and a resumed run starts a fresh pass over the data.
    """
    if steps_per_epoch is not None or not finished_epochs:
        return

    known = int(dataset.cardinality()) >= 0
    for _ in range(finished_epochs):
        read = iter(dataset)
        next(read, None)
        del read
        if known:
            iter(dataset)


def early_stop_message(stopping, epochs: int) -> str:
    """What early stopping did, e.g. `kseq: stopped after epoch 5 of 12 (val_loss no better for
    3 epochs); kept the weights of epoch 2`."""
    return (
        f"kseq: stopped after epoch {stopping.stopped_epoch + 1} of {epochs} ({stopping.monitor} "
        f"no better for {stopping.patience} epoch{'s' if stopping.patience != 1 else ''}); "
        "kept the weights of epoch "
        f"{stopping.best_epoch + 1}"
    )


def _target(spec, output) -> Path:
    """RUN_DIR: `--output`, else the newest unfinished run of this spec, else a fresh name."""

    if output is not None:
        target = Path(output)
        return target if target.name else target.resolve()
    found = find_partial(Path("runs"), layout.safe_name(spec.name), _spec_data(spec))
    return found or layout.default_run_dir(spec.name)


def _spec_data(spec) -> dict:
    data = to_data(spec)
    data["train"]["restart"] = False  # an action, not part of what was trained
    return data


def _saved_spec(spec) -> str:
    import dataclasses

    return dump_spec(
        dataclasses.replace(spec, train=dataclasses.replace(spec.train, restart=False))
    )


def _finish(spec, family, data, model, history: dict, directory: Path, target: Path) -> None:
    """Write model, spec, history, curve and assets into the staging `run/` directory; each file
    under a temporary name first, so a kill here leaves nothing half-written for the resume."""

    remove_temporaries(directory)
    model = precision.float32_copy(spec, family, data, model)
    tmp = directory / f"{TMP_PREFIX}{layout.MODEL_FILE}"
    ensure_space(tmp, saved_size([model]))
    try:
        model.save(tmp)
        tmp.replace(directory / layout.MODEL_FILE)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise write_error(directory / layout.MODEL_FILE, error) from None
    atomic_write_text(directory / layout.SPEC_FILE, _saved_spec(spec))
    layout.write_history(directory, history)
    layout.plot_learning_curve(directory, history, layout.plot_title(target, spec))
    shutil.rmtree(directory / layout.ASSETS_DIR, ignore_errors=True)
    family.save_assets(directory, data)


def _interrupted(signal: Interrupted, partial, epochs: int) -> Interrupted:
    state = partial.read_state()
    if state is None:
        message = "interrupted before the first checkpoint; nothing was kept"
    elif state.get("step"):
        message = (
            f"interrupted at step {state['step']} of epoch {state['epoch'] + 1}; run the same "
            "command to resume"
        )
    else:
        message = (
            f"interrupted after epoch {state['epoch']} of {epochs}; run the same command to resume"
        )
    return Interrupted(signal.signum, message)


def _budgeted(spec, family, data, model, state, started: float, scratch: Path, where):
    """`train.time_budget`: the plan (a resumed run's saved one, else probed now), the spec it
    trains (epochs, steps, the schedule over them) and the clock; the model is compiled afresh."""

    concrete = data.concrete(spec)
    saved = (state or {}).get("time_budget")
    if saved:
        plan = time_budget.Plan.from_dict(saved["plan"])
        clock = time_budget.BudgetClock(plan, time.monotonic(), saved["seconds"], saved["steps"])
    else:
        timing = time_budget.probe(model, data.validation, scratch)
        plan = time_budget.plan(
            spec.train.time_budget,
            time.monotonic() - started,
            spec.train.epochs,
            steps_per_epoch(concrete, data),
            int(data.validation.cardinality()),
            timing,
        )
        clock = time_budget.BudgetClock(plan, started)
        print(time_budget.plan_message(plan, steps_per_epoch(concrete, data)))
    planned = dataclasses.replace(
        concrete.train,
        epochs=plan.epochs,
        steps_per_epoch=plan.steps_per_epoch or concrete.train.steps_per_epoch,
    )
    trained = resolve_schedule(dataclasses.replace(concrete, train=planned), data)
    with where.scope():
        family.compile(model, trained)  # a fresh optimizer: the probe's updates are gone
        optimizer = trained.train.optimizer
        schedule = optimizer.schedule.keras_learning_rate(optimizer.learning_rate)
        if hasattr(schedule, "shortenable"):  # the clock may shorten its decay: see BudgetClock
            model.optimizer.learning_rate = schedule.shortenable()
            clock.schedule = schedule
            clock.steps_per_epoch = planned.steps_per_epoch or steps_per_epoch(concrete, data)
    precision.set_jit_compile(model, spec.train.jit_compile)
    return trained, clock


def train(spec, output: str | Path | None = None, overwrite: bool = False) -> Path:
    """Train the spec's model; write model, spec, history, curve and assets to RUN_DIR.

    Resumes an unfinished run of the same RUN_DIR unless `spec.train.restart`. A RUN_DIR that
    already holds files is replaced only when `overwrite`. Top-down: prepare the data and the
    model, resume or start, fit, finish the run in its staging directory, then publish it.
    """
    started = time.monotonic()  # a time budget counts from here
    where = distribute.placement(spec)  # before any TensorFlow op (multi_worker needs that)
    family = family_for(spec)
    target = _target(spec, output)
    if where.chief:
        layout.refuse_to_replace(target, overwrite, when="when training ends")
    with precision.dtype_policy(spec.train.precision):
        data, trained, model = prepare(spec, family, where)
        partial = PartialRun(target, where.task)
        partial.open(_spec_data(spec), spec.train.restart)
        with _checkpoint_kept_on_failure(partial, where, spec.train.epochs):
            state = _resume_or_start(spec, partial, where)
            clock = None
            if spec.train.time_budget is not None:
                trained, clock = _budgeted(
                    spec, family, data, model, state, started, partial.path, where
                )
            _say_where_training_starts(state, trained, target, partial)
            history = fit(trained, data, model, partial.run, partial, state, where, clock)
            with interrupt.deferred():
                _finish(trained, family, data, model, history, partial.run, target)
            if clock is not None:
                print(clock.summary(len(next(iter(history.values()), []))))
    _publish(partial, target, where)
    return target


def prepare(spec, family, where):
    """The data, the spec it settles, and the compiled model (in the strategy's scope): the
    first phase of `train`, and all of `kseq.build`."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(spec.train.seed)
    data = family.load_data(spec)
    # What the data settles (`auto` lengths) and `decay_steps: null` made concrete for this
    # run; the resume still compares `spec`, so a resume with more epochs stretches the decay
    # over the new length.
    trained = resolve_schedule(data.concrete(spec), data)
    check_model_fits(family, trained, data)  # before a byte of the model is allocated
    with where.scope():  # model, optimizer and metric variables belong to the strategy
        model = family.build(trained, data)
        family.compile(model, trained)
    precision.set_jit_compile(model, spec.train.jit_compile)
    on_gpu = bool(tf.config.list_logical_devices("GPU"))
    slow = precision.jit_warning(spec.train.jit_compile, data.train.element_spec, on_gpu)
    if slow and where.chief:
        print(slow, file=sys.stderr)
    distribute.prepare_model(model, data.train.element_spec, where)
    if where.replicas > 1:
        print(f"kseq: {spec.train.distribute.strategy} training on {where.replicas} replicas")
    return data, trained, model


def _resume_or_start(spec, partial, where) -> dict | None:
    """The checkpoint this run continues from (every worker's common one), or None."""
    state = distribute.agree_on_checkpoint(where, partial.states)
    every = spec.train.checkpoint_every
    if where.multi_worker and where.chief and every and every.steps is None:
        print(
            "kseq: multi-worker training checkpoints at epoch ends only "
            "(train.checkpoint_every.minutes would differ between workers; "
            "{steps: N} checkpoints inside epochs)"
        )
    return state


def _say_where_training_starts(state, trained, target, partial) -> None:
    if not state:
        return
    epoch = int(state["epoch"])
    where = f"checkpoint in {partial.path}; --restart starts afresh"
    if state.get("step"):
        print(
            f"kseq: resuming epoch {epoch + 1} at step {state['step']} of "
            f"{state.get('batches_per_epoch') or '?'} ({target}; {where})"
        )
    else:
        print(f"kseq: resuming {target} after epoch {epoch} of {trained.train.epochs} ({where})")


@contextlib.contextmanager
def _checkpoint_kept_on_failure(partial, where, epochs: int):
    """A failure keeps the checkpoint for the resume (an empty staging directory goes) and
    says what is kept: a full disk, a signal, a lost worker."""
    try:
        yield
    except DiskFullError as error:
        state = partial.read_state()
        partial.abandon_if_empty()
        if state is None:
            raise
        raise DiskFullError(
            error.args[0].removeprefix("no space left on device while writing "),
            f"; the checkpoint of epoch {state['epoch']} is intact: free some space and run "
            "the same command to resume",
        ) from None
    except Interrupted as signal:
        error = _interrupted(signal, partial, epochs)
        partial.abandon_if_empty()
        raise error from None
    except Exception as error:
        lost = where.multi_worker and distribute.lost_worker(error)
        partial.abandon_if_empty()
        if lost:
            if os.environ.get("KSEQ_DEBUG"):
                print(f"kseq: debug: {type(error).__name__}: {error}", file=sys.stderr)
            state = partial.read_state()
            kept = f"this worker's checkpoint ({describe(state)})" if state else "no checkpoint"
            raise WorkerLost(
                f"a worker of the cluster was lost ({distribute.lost_worker_cause(error)}); "
                f"{kept} is kept: run the same command on every worker lost to resume"
            ) from None
        raise
    except BaseException:
        partial.abandon_if_empty()  # keep a checkpoint for the resume, drop an empty dir
        raise


def _publish(partial, target: Path, where) -> None:
    """RUN_DIR appears by one rename (the chief's); the staging directory goes."""
    if where.chief:
        try:
            with interrupt.deferred():
                swap_into_place(partial.run, target)
        except BaseException:
            partial.unlock()  # the complete checkpoint stays: a rerun only writes RUN_DIR
            raise
    partial.discard()  # a non-chief worker's copy only kept the collectives in step
    if where.chief:
        print(f"kseq: trained model written to {target}")
