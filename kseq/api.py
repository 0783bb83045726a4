"""The Python API; the CLI is a thin layer over these functions.

Imports TensorFlow: `import kseq` resolves these names on first use (`kseq.__getattr__`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

import kseq.layers  # noqa: F401  (registers every kseq layer for safe-mode loading)
import kseq.train.sequence_losses  # noqa: F401
from kseq.errors import KseqError
from kseq.export import convert, write_saved_model, write_tflite
from kseq.export.request import ExportRequest
from kseq.export.static_shapes import with_fixed_batch
from kseq.importers import importers
from kseq.io import atomic_write_bytes, atomic_write_text
from kseq.io import run_dir as layout
from kseq.models.capabilities import DrawsAttention, Predicts, Tokenizes, require
from kseq.models.family import family_for
from kseq.models.seq2seq.ensemble_run import write_ensemble
from kseq.plots import attention_png
from kseq.spec.common import Spec
from kseq.spec.load import load_spec
from kseq.tokenizers import TextTokenizer
from kseq.train import distribute
from kseq.train.budget import shape_only_model
from kseq.train.fit import prepare
from kseq.train.fit import train as fit_and_save


def _spec(spec, overrides=()):
    if isinstance(spec, Spec) and not overrides:
        return spec
    return load_spec(spec, overrides)


def build(spec, overrides=()):
    """A compiled keras.Model for the spec, ready for plain `model.fit` on the family's data:
    the model `kseq train` starts from (the same data preparation, seed and checks)."""
    spec = _spec(spec, overrides)
    _, _, model = prepare(spec, family_for(spec), distribute.placement(spec))
    return model


def train(spec, output=None, overrides=(), overwrite: bool = False) -> Path:
    """Train and write RUN_DIR (model.keras, spec.yaml, history.json, learning_curve.png).

    A RUN_DIR that already holds files (a finished run and its exports) is replaced only with
    `overwrite=True`.
    """
    return fit_and_save(_spec(spec, overrides), output, overwrite=overwrite)


def _first_sentence(error: Exception) -> str:
    """Keras's load errors run to paragraphs; the first sentence says what is wrong."""
    text = " ".join(str(error).split())
    head = text.split(". ")[0].rstrip(".")
    if "safe_mode" in text:
        return f"refused in safe mode: {head}"
    return head[:300]


def load_run(run_dir, overrides=()):
    """(spec, family, model) of a RUN_DIR; the model is loaded in Keras safe mode."""
    run_dir = layout.require_run_dir(run_dir)
    spec = load_spec(run_dir / layout.SPEC_FILE, overrides)
    family = family_for(spec)
    model_file = run_dir / layout.MODEL_FILE
    if not zipfile.is_zipfile(model_file):
        raise KseqError(f"{model_file}: not a .keras archive (truncated or corrupt zip file)")
    try:
        model = keras.saving.load_model(model_file, safe_mode=True, compile=False)
    except (ValueError, OSError, TypeError, KeyError, zipfile.BadZipFile) as error:
        raise KseqError(f"{model_file}: cannot load the model: {_first_sentence(error)}") from None
    family.compile(model, spec)  # metrics as the spec defines them, whatever was saved
    return spec, family, model


@dataclass(frozen=True)
class Run:
    """A trained RUN_DIR in memory: `kseq.load(RUN_DIR)`.

    Attributes:
        path: the RUN_DIR.
        spec: its effective spec.
        model: the trained `keras.Model` (loaded in safe mode, compiled as the spec says).
        tokenizers: the saved tokenizers by role (`kseq.tokenizers.TextTokenizer`s): `source`
            and `target` for sequence-to-sequence models, `text` for BERT, none for
            autoencoders.
    """

    path: Path
    spec: Any
    model: Any
    tokenizers: dict[str, TextTokenizer]

    def predict(self, texts, strategy=None, **decode_options) -> list[dict]:
        """Decode or classify texts, as `kseq predict` does."""
        family = require(family_for(self.spec), Predicts, self.spec)
        return family.predict(
            self.model, self.spec, self.path, list(texts), strategy, **decode_options
        )


def load(run_dir, overrides=()) -> Run:
    """A trained RUN_DIR: its model, spec and tokenizers (`Run`)."""
    spec, family, model = load_run(run_dir, overrides)
    path = Path(run_dir)
    return Run(path=path, spec=spec, model=model, tokenizers=family.saved_tokenizers(path))


def _require_spec_matches_model(family, spec, data, model, run_dir: Path) -> None:
    """A hand-edited RUN_DIR/spec.yaml must still describe model.keras (same weight shapes)."""
    expected = sorted(tuple(v.shape) for v in shape_only_model(family, spec, data).weights)
    for network in family.networks(model):  # an ensemble's members: each one the spec's
        found = sorted(tuple(v.shape) for v in network.weights)
        if expected != found:
            described = sum(math.prod(shape) for shape in expected)
            raise KseqError(
                f"{run_dir / layout.SPEC_FILE}: does not describe {run_dir / layout.MODEL_FILE} "
                f"(the spec builds {len(expected)} weights with {described:,} parameters, the "
                f"model has {len(found)} with {network.count_params():,}); was spec.yaml edited?"
            )


def evaluate(run_dir, data=None, overrides=()) -> dict:
    """Metrics of the trained model on the validation data (or on `data`), as a dict."""
    spec, family, model = load_run(run_dir, overrides)
    prepared = family.load_data(spec, run_dir=Path(run_dir), data_file=data)
    _require_spec_matches_model(family, spec, prepared, model, Path(run_dir))
    return family.evaluate(model, spec, prepared)


def _default_export_path(
    run_dir: Path, fmt: str, part: str, quantize: str, static: bool = False, io: str = "float"
) -> Path:
    stem = "model" if part == "full" else part
    if fmt == "saved_model":
        return run_dir / layout.EXPORT_DIR / f"{stem}_saved_model"
    suffix = ("_static" if static else "") + ("" if quantize == "none" else f"_{quantize}")
    suffix += "_int8io" if io == "int8" else ""
    return run_dir / layout.EXPORT_DIR / f"{stem}{suffix}.tflite"


def export(run_dir, request: ExportRequest | None = None, *, overrides=(), **fields) -> dict:
    """Export a RUN_DIR to SavedModel or builtin-only TFLite; returns the artifact's report.

    `request`: a `kseq.export.request.ExportRequest`, or its fields as keywords (`format=`,
    `quantize=`, `part=`, `output=`, `sequence_length=`, `static=`, `io=`). `overrides`: spec
    fields set for this export (`export.parity_samples=...`). Every artifact passes the parity
    gate against the Keras model before it is moved into place. A static request (a
    `kseq.export.static_shapes.StaticShape`) makes a TFLite file for accelerators, every shape
    fixed and no control flow (checked on the file); `io="int8"` (with int8 quantization) makes
    float inputs and outputs int8 too, for all-int8 accelerators.
    """
    if request is None:
        request = ExportRequest(**fields)
    elif fields:
        raise TypeError("export: give an ExportRequest or its fields as keywords, not both")
    run_dir = Path(run_dir)
    spec, family, model = load_run(run_dir, overrides)
    request = request.resolved(spec, family)
    # The endpoints read the quantization from the spec: a copy that says this request's.
    spec = dataclasses.replace(
        spec, export=dataclasses.replace(spec.export, quantize=request.quantize)
    )
    format, quantize, part, static, io = (
        request.format,
        request.quantize,
        request.part,
        request.static,
        request.io,
    )
    output = request.output
    data = family.load_data(spec, run_dir=run_dir)
    _require_spec_matches_model(family, spec, data, model, run_dir)
    endpoints = family.endpoints(model, spec, data, part, **request.endpoint_options())
    if static is not None:
        endpoints = [with_fixed_batch(ep, static.batch_size) for ep in endpoints if ep.tflite]
    custom_ops = family.custom_ops(part)  # tokenizer-in-graph parts need tensorflow-text ops
    path = (
        Path(output)
        if output
        else _default_export_path(run_dir, format, part, quantize, static is not None, io)
    )
    if format == "saved_model":
        report = write_saved_model(endpoints, path, track=family.trackables(model, data))
        return {**report, "path": str(path)}
    with tempfile.TemporaryDirectory(prefix="kseq-export-") as scratch:
        saved = Path(scratch) / "saved_model"
        # Only what goes into the .tflite: string signatures and their lookup tables stay out,
        # unless the part runs its tokenizer in the graph (custom ops).
        endpoints = [ep for ep in endpoints if ep.tflite]
        track = family.trackables(model, data) if custom_ops else model
        write_saved_model(endpoints, saved, track=track)
        float32_size = None
        if quantize != "none":  # the size ratio is the point of quantizing: measure the baseline
            names = [ep.name for ep in endpoints]
            float32_size = len(convert(saved, names, "none", allow_custom_ops=custom_ops))
        report = write_tflite(
            endpoints,
            saved,
            path,
            quantize,
            metric=family.quality(spec, data, part),
            app_loop=family.app_loop_check(model, spec, data, static),
            custom_ops=custom_ops,
            float32_size_bytes=float32_size,
            static=static is not None,
            io=io,
        )
    return {**report, "path": str(path)}


def run(spec, output=None, overrides=(), overwrite: bool = False) -> list[dict]:
    """The main job: train, then export every format the spec names; returns the reports."""
    spec = _spec(spec, overrides)
    run_dir = train(spec, output, overwrite=overwrite)
    reports = []
    for fmt in spec.export.formats:
        quantize = spec.export.quantize if fmt == "tflite" else "none"
        reports.append(export(run_dir, format=fmt, quantize=quantize))
    atomic_write_text(run_dir / "export" / "summary.json", json.dumps(reports, indent=2) + "\n")
    return reports


def predict(run_dir, texts, strategy=None, overrides=(), **decode_options) -> list[dict]:
    """Decode texts with a trained sequence model: one dict per text (input, output, ids)."""
    spec, family, model = load_run(run_dir, overrides)
    require(family, Predicts, spec)
    return family.predict(model, spec, Path(run_dir), list(texts), strategy, **decode_options)


def tokenize(run_dir, texts, overrides=()) -> list[list[int]]:
    """Source-side token ids of each text, with the RUN_DIR's saved vocabulary."""
    run_dir = layout.require_run_dir(run_dir)
    spec = load_spec(run_dir / layout.SPEC_FILE, overrides)
    return require(family_for(spec), Tokenizes, spec).tokenize(run_dir, list(texts))


def plot_attention(run_dir, text, output, overrides=()) -> Path:
    """Draw the attention weights of one greedy decoding to a PNG file."""
    spec, family, model = load_run(run_dir, overrides)
    require(family, DrawsAttention, spec)
    source, target, weights = family.attention(model, spec, Path(run_dir), text)
    title = f"{layout.plot_title(run_dir, spec)} · {text}"
    return atomic_write_bytes(output, attention_png(source, target, weights, title=title))


def ensemble(run_dirs, output, overwrite: bool = False, overrides=()) -> Path:
    """One RUN_DIR whose model averages the next-token log-probabilities of `run_dirs` (runs
    of one sequence-to-sequence spec on the same data); `evaluate`, `predict` and `export`
    read it like any run. `overrides` set fields of the members' specs (the first member's,
    so set, is the ensemble's: `decode.strategy=beam`). An `output` holding files is replaced
    only with `overwrite=True`."""
    output = Path(output)
    layout.refuse_to_replace(output, overwrite, when="once the ensemble is written")
    members = [(Path(run_dir), *load_run(run_dir, overrides)) for run_dir in run_dirs]
    return write_ensemble(members, output)


def import_checkpoint(kind: str, directory, output, overwrite: bool = False) -> Path:
    """Import a pretrained checkpoint (`hf-bert`: a Hugging Face BERT folder) into a RUN_DIR.

    An `output` that already holds files is replaced only with `overwrite=True`.
    """
    if kind not in importers:
        raise KseqError(f"import: {importers.unknown_message(kind)}")
    layout.refuse_to_replace(Path(output), overwrite, when="once the import is complete")
    return importers.get(kind)(directory, output)
