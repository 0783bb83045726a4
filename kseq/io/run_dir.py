"""The layout of a RUN_DIR and the files training writes into it."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

from kseq.errors import KseqError
from kseq.io.atomic import atomic_write_bytes, atomic_write_text

MODEL_FILE = "model.keras"
SPEC_FILE = "spec.yaml"
HISTORY_FILE = "history.json"
CURVE_FILE = "learning_curve.png"
ASSETS_DIR = "assets"
EXPORT_DIR = "export"


def safe_name(name: str) -> str:
    """The spec's name as a file name."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


def default_run_dir(name: str) -> Path:
    """runs/NAME-YYYYmmdd-HHMMSS: a fresh folder per run, so reruns never clobber results."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = safe_name(name)
    path = Path("runs") / f"{safe}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path("runs") / f"{safe}-{stamp}-{suffix}"
    return path


def require_run_dir(path: str | Path) -> Path:
    path = Path(path)
    if not (path / MODEL_FILE).is_file() or not (path / SPEC_FILE).is_file():
        raise KseqError(f"{path}: not a kseq run directory (expected {MODEL_FILE} and {SPEC_FILE})")
    return path


def refuse_to_replace(target: Path, overwrite: bool, when: str) -> None:
    """A finished run (or any folder with files) at `target` is replaced only with --overwrite;
    with it, say what goes (`when`: when the new run replaces it)."""
    if not target.is_dir() or not any(target.iterdir()):
        return
    finished = (target / MODEL_FILE).is_file()
    exports = sorted(p.name for p in (target / EXPORT_DIR).glob("*")) if finished else []
    what = "a finished run" if finished else "files that are not a kseq run"
    if exports:
        shown = ", ".join(exports[:3]) + (", …" if len(exports) > 3 else "")
        what += f" with {len(exports)} export(s) ({shown})"
    if not overwrite:
        raise KseqError(
            f"{target} already holds {what}; pass --overwrite to replace it, "
            "or choose another --output"
        )
    print(f"kseq: --overwrite: {target} (holding {what}) is replaced {when}")


def write_history(directory: Path, history: dict) -> None:
    epochs = [
        {"epoch": index + 1, **{key: float(values[index]) for key, values in history.items()}}
        for index in range(len(next(iter(history.values()), [])))
    ]
    atomic_write_text(directory / HISTORY_FILE, json.dumps(epochs, indent=2) + "\n")


def plot_title(run_dir: Path, spec) -> str:
    """What a plot of this run shows: `RUN_DIR name: model type on its data`."""
    train = spec.data.train
    if train is None:
        task = getattr(getattr(spec.data, "synthetic", None), "task", None)
        data = f"built-in {task}" if task else "built-in data"
    elif isinstance(train, str):
        data = Path(train).name
    else:
        data = f"{len(train)} training files"
    return f"{Path(run_dir).name}: {spec.model.type} on {data}"


def plot_learning_curve(directory: Path, history: dict, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no screen on servers and CI
    from matplotlib import pyplot as plt

    losses = [key for key in history if key.endswith("loss")]
    figure, axis = plt.subplots(figsize=(6, 4))
    for key in losses:
        epochs = range(1, len(history[key]) + 1)
        axis.plot(epochs, history[key], marker="o", label=key)
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss")
    axis.set_title(title)
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    atomic_write_bytes(directory / CURVE_FILE, buffer.getvalue())
