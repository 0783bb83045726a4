"""SavedModel export: one `keras.export.ExportArchive` with a signature per endpoint, parity-gated.

The archive is written into a staged directory, reloaded with plain `tf.saved_model.load` (what a
server does) and every signature is run on the endpoint's held-out samples at two batch sizes. Only
if all outputs match the Keras reference is the directory moved into place, with a `report.json`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from kseq.errors import ExportError
from kseq.export.endpoints import Endpoint
from kseq.export.parity import (
    FP32_ATOL,
    check_endpoints,
    compare_outputs,
    gate_batches,
    in_chunks,
    merge_parity,
)
from kseq.io import atomic_directory, atomic_write_text

__all__ = ["REPORT_NAME", "write_saved_model"]

# Written inside the SavedModel directory; the TFLite converter reads its "layers" to name the
# Keras layer behind an op that has no builtin kernel.
REPORT_NAME = "report.json"


def write_saved_model(
    endpoints: Sequence[Endpoint],
    path: str | os.PathLike,
    track: Any,
    *,
    atol: float = FP32_ATOL,
) -> dict[str, Any]:
    """Export `endpoints` as a SavedModel at `path` after checking them against Keras.

    Args:
        endpoints: the signatures to export; one named "serving_default" is registered first,
            otherwise the first endpoint is also aliased as "serving_default" by Keras.
        path: destination directory; replaced atomically if it exists.
        track: the Keras model/layer (or a list of them, or other trackables such as lookup
            tables) whose variables the endpoint functions use.
        atol: max abs difference allowed for float outputs of non-`exact` endpoints.

    Returns:
        The report, also written to `path/report.json`.

    Raises:
        ExportError: tracing failed, an output differs from the reference (nothing is left at
            `path` then, or the previous artifact stays untouched), or `path` is not writable.
    """
    endpoints = list(endpoints)
    check_endpoints(endpoints)
    tracked = list(track) if isinstance(track, list | tuple) else [track]
    archive = keras.export.ExportArchive()
    for obj in tracked:
        archive.track(obj)
    # sorted() is stable: "serving_default" first, the rest in the order given.
    for ep in sorted(endpoints, key=lambda e: e.name != "serving_default"):
        try:
            archive.add_endpoint(ep.name, _keyword_fn(ep), input_signature=ep.input_signature)
        except Exception as e:
            raise ExportError(f"endpoint {ep.name!r} could not be traced: {_one_line(e)}") from e

    with atomic_directory(path) as staged:
        try:
            archive.write_out(str(staged), verbose=False)
        except OSError as e:
            raise ExportError(f"cannot write SavedModel {path}: {e.strerror or e}") from e
        size = _dir_size(staged)
        loaded = tf.saved_model.load(str(staged))
        report: dict[str, Any] = {
            "format": "saved_model",
            "size_bytes": size,
            "signatures": {k: _describe(fn) for k, fn in loaded.signatures.items()},
            "parity": {ep.name: _gate(ep, loaded.signatures[ep.name], atol) for ep in endpoints},
            "layers": _layer_names(tracked),
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        }
        atomic_write_text(staged / REPORT_NAME, json.dumps(report, indent=2) + "\n")
    return report


def _keyword_fn(ep: Endpoint):
    """Adapt `ep.fn(**named)` to the positional call `tf.function(input_signature=...)` makes."""
    names = [spec.name for spec in ep.input_signature]

    def fn(*args):
        return ep.fn(**dict(zip(names, args, strict=True)))

    fn.__name__ = ep.name
    return fn


def _gate(ep: Endpoint, signature: Any, atol: float) -> dict[str, Any]:
    runs, sizes = [], []

    def run(batch):
        got = signature(**{k: tf.constant(v) for k, v in batch.items()})
        return {k: v.numpy() for k, v in got.items()}

    for batch in gate_batches(ep):
        figures = compare_outputs(
            ep.name,
            in_chunks(ep.reference, batch),
            in_chunks(run, batch),
            exact=ep.exact,
            atol=atol,
            artifact="SavedModel",
        )
        runs.append(figures)
        sizes.append(int(next(iter(batch.values())).shape[0]))
    return {"batch_sizes": sizes, "outputs": merge_parity(runs)}


def _spec_dict(spec: tf.TensorSpec) -> dict[str, Any]:
    return {"dtype": spec.dtype.name, "shape": spec.shape.as_list() if spec.shape.rank else []}


def _describe(fn: Any) -> dict[str, Any]:
    """Input/output names, dtypes and shapes (None = dynamic) of one loaded signature."""
    inputs = fn.structured_input_signature[1]
    outputs = fn.structured_outputs
    return {
        "inputs": {k: _spec_dict(v) for k, v in sorted(inputs.items())},
        "outputs": {k: _spec_dict(v) for k, v in sorted(outputs.items())},
    }


def _layer_names(tracked: list[Any]) -> list[str]:
    """Names of the tracked models and their layers, recursing into nested models only.

    Layer internals (an LSTM's cell, an encoder block's attention) are left out on purpose: an
    error should name the layer the user wrote in the spec.
    """
    names: list[str] = []

    def visit(obj: Any) -> None:
        if isinstance(obj, keras.Layer) and obj.name not in names:
            names.append(obj.name)
            if isinstance(obj, keras.Model):
                for layer in obj.layers:
                    visit(layer)

    for obj in tracked:
        visit(obj)
    return names


def _dir_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]
