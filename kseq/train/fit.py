"""`kseq train`: spec -> data -> model -> model.fit -> RUN_DIR, written atomically."""

from __future__ import annotations

from pathlib import Path

from kseq.export.atomic import atomic_directory, atomic_write_text
from kseq.spec.load import dump_spec
from kseq.train import run_dir as layout


def _callbacks(spec, directory: Path) -> list:
    import keras

    callbacks = []
    if spec.train.early_stopping is not None:
        stopping = spec.train.early_stopping
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=stopping.monitor,
                patience=stopping.patience,
                min_delta=stopping.min_delta,
                restore_best_weights=True,
            )
        )
    if spec.train.checkpoints:
        (directory / "checkpoints").mkdir(exist_ok=True)
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                str(directory / "checkpoints" / "best.weights.h5"),
                monitor="val_loss",
                save_best_only=True,
                save_weights_only=True,
            )
        )
    if spec.train.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(directory / "logs")))
    return callbacks


def fit(spec, family, data, model, directory: Path) -> dict:
    """Run model.fit with the spec's callbacks; returns the Keras history dict."""
    history = model.fit(
        data.train,
        validation_data=data.validation,
        epochs=spec.train.epochs,
        steps_per_epoch=spec.train.steps_per_epoch,
        callbacks=_callbacks(spec, directory),
        verbose=spec.train.verbose,
        shuffle=False,  # the dataset shuffles itself, with the spec's seed
    )
    return history.history


def train(spec, output: str | Path | None = None) -> Path:
    """Train the spec's model; write model, spec, history, curve and assets to RUN_DIR."""
    import keras

    from kseq.models.family import family_for

    family = family_for(spec)
    keras.utils.set_random_seed(spec.train.seed)
    data = family.load_data(spec)
    model = family.build(spec, data)
    family.compile(model, spec)
    target = Path(output) if output is not None else layout.default_run_dir(spec.name)
    with atomic_directory(target) as staging:
        history = fit(spec, family, data, model, staging)
        model.save(staging / layout.MODEL_FILE)
        atomic_write_text(staging / layout.SPEC_FILE, dump_spec(spec))
        layout.write_history(staging, history)
        layout.plot_learning_curve(staging, history, spec.name)
        family.save_assets(staging, data)
    print(f"kseq: trained model written to {target}")
    return target
