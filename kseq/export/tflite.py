"""TFLite export from a SavedModel: builtin ops only, optional quantization, parity-gated.

Conversion is restricted to `TFLITE_BUILTINS` (or `TFLITE_BUILTINS_INT8`): an op without a builtin
kernel fails the conversion with a message naming the op and its Keras layer, instead of Flex ops
sneaking in that the plain LiteRT interpreter cannot run. The converted model is then run on the
plain `ai_edge_litert` Interpreter (no Flex, no custom ops unless asked) and on LiteRT's
CompiledModel API, and compared with Keras on both, before anything is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, InterpreterWithCustomOps

from kseq.errors import ExportError
from kseq.export.compiled_model import (
    COMPILED_MODEL_API,
    close_compiled_model,
    load_compiled_model,
    run_compiled,
)
from kseq.export.converter_errors import describe_conversion_error
from kseq.export.endpoints import Endpoint
from kseq.export.int8_io import IO_MODES, Int8Io
from kseq.export.parity import (
    FP32_ATOL,
    check_endpoints,
    compare_outputs,
    fixed_batch_size,
    gate_batches,
    in_chunks,
    jsonable,
    merge_parity,
    prepare_inputs,
    repeat_rows,
    run_metric,
)
from kseq.export.saved_model import REPORT_NAME
from kseq.export.selective_int8 import quantize_keeping_float
from kseq.export.static_shapes import FORBIDDEN_OPS, check_static, static_profile
from kseq.export.tflite_inspect import describe_signatures, op_summary
from kseq.io import atomic_write_bytes, atomic_write_text

__all__ = ["QUANTIZE_MODES", "convert", "load_interpreter", "report_path", "write_tflite"]

QUANTIZE_MODES = ("none", "dynamic", "float16", "int8")
CUSTOM_OPS_NOTE = (
    "this model uses TFLite custom ops from tensorflow-text: the app must link tensorflow-text's "
    "TFLite ops (tensorflow_text.tflite_registrar) into its interpreter"
)
Calibration = Mapping[str, Sequence[Mapping[str, np.ndarray]]]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the converter's C++ logging (fd 2) and Python warnings for the duration."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as sink, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def convert(
    saved_model_dir: str | os.PathLike,
    signature_keys: Sequence[str],
    quantize: str = "none",
    calibration: Calibration | None = None,
    allow_custom_ops: bool = False,
    *,
    layer_names: Sequence[str] | None = None,
    io: str = "float",
    float_scopes: Sequence[str] = (),
) -> bytes:
    """Convert SavedModel signatures to a TFLite flatbuffer using builtin ops only.

    Args:
        saved_model_dir: a SavedModel (e.g. from `write_saved_model`).
        signature_keys: the signatures to convert; each becomes a TFLite signature.
        quantize: "none" (fp32), "dynamic" (int8 weights), "float16" (fp16 weights) or "int8"
            (full-integer kernels; float inputs/outputs are kept, quantized at the edges).
        calibration: for int8, signature key -> batches (dicts of input arrays) of training data.
        allow_custom_ops: let tensorflow-text ops through as TFLite custom ops.
        layer_names: Keras layer names to name in errors; read from the SavedModel's report.json
            when omitted (without one, Keras's scope naming is used to guess the layer).
        io: "float", or "int8" (with int8 quantization): float inputs and outputs become int8
            (`kseq.export.int8_io`).
        float_scopes: with int8, TF name scopes whose ops stay float
            (`kseq.export.selective_int8`).

    Raises:
        ExportError: an op has no builtin kernel (the message names the op and layer), int8
            without calibration data, or any other conversion failure.
    """
    keys = list(signature_keys)
    if quantize not in QUANTIZE_MODES:
        raise ExportError(
            f"quantize must be one of {', '.join(QUANTIZE_MODES)}. Received: quantize={quantize!r}"
        )
    if not keys:
        raise ExportError("no signatures to convert to TFLite")
    if io not in IO_MODES or (io == "int8" and quantize != "int8"):
        raise ExportError(f"io={io!r} needs quantize='int8'; io must be one of {IO_MODES}")
    if layer_names is None:
        layer_names = _layers_from_report(Path(saved_model_dir))
    with _quiet():
        try:
            converter = tf.lite.TFLiteConverter.from_saved_model(
                str(saved_model_dir), signature_keys=keys
            )
        except Exception as e:
            raise ExportError(f"cannot read SavedModel {saved_model_dir}: {e}") from e
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        converter.allow_custom_ops = allow_custom_ops
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8":
            converter.representative_dataset = _representative_dataset(keys, calibration)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io == "int8":  # float tensors only: ids and masks keep their integer types
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        try:
            if quantize == "int8" and float_scopes:
                return quantize_keeping_float(converter, float_scopes)
            return converter.convert()
        except ExportError:
            raise
        except Exception as e:
            message = describe_conversion_error(e, keys, layer_names, allow_custom_ops)
            raise ExportError(message) from e


def _representative_dataset(keys: list[str], calibration: Calibration | None):
    """Calibration generator for a multi-signature model.

    The calibrator takes `(signature_key, {input_name: array})` tuples and calibrates each
    signature on the samples tagged with its key; batches may differ in size and length.
    """
    calibration = calibration or {}
    missing = [k for k in keys if not calibration.get(k)]
    if missing:
        raise ExportError(
            f"int8 quantization needs calibration batches for endpoint(s) {', '.join(missing)} "
            "(Endpoint.calibration is empty)"
        )

    for key in keys:  # TF's calibrator sizes a signature's tensors on its first batch only
        shapes = {tuple((n, np.shape(v)) for n, v in sorted(b.items())) for b in calibration[key]}
        if len(shapes) > 1:
            raise ExportError(
                f"int8 calibration batches of endpoint {key!r} differ in shape; they must all "
                f"have one shape. Received: {sorted(shapes)[:2]}"
            )

    def dataset() -> Iterator[tuple[str, dict[str, np.ndarray]]]:
        for key in keys:
            for batch in calibration[key]:
                yield (
                    key,
                    {
                        name: np.asarray(v, np.float32) if np.asarray(v).dtype == np.float64 else v
                        for name, v in batch.items()
                    },
                )

    return dataset


def _layers_from_report(saved_model_dir: Path) -> list[str] | None:
    """Layer names recorded by `write_saved_model`; None when there is no such report."""
    try:
        return list(json.loads((saved_model_dir / REPORT_NAME).read_text())["layers"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_interpreter(model: bytes, custom_ops: bool = False) -> Any:
    """Load `model` as an app would: the plain LiteRT interpreter, or with tensorflow-text ops.

    Raises:
        ExportError: the interpreter rejects the model (e.g. an unresolved custom op).
    """
    try:
        with _quiet():
            if custom_ops:
                import tensorflow_text  # heavy; registers the TF ops too, so only on demand

                interpreter = InterpreterWithCustomOps(
                    model_content=model,
                    custom_op_registerers=tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS,
                )
            else:
                interpreter = Interpreter(model_content=model)
            interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as e:
        raise ExportError(f"the LiteRT interpreter cannot load the model: {_first_line(e)}") from e
    return interpreter


def report_path(path: str | os.PathLike) -> Path:
    """Where the report of the .tflite file at `path` goes: `PATH.report.json`."""
    return Path(f"{os.fspath(path)}.report.json")


def write_tflite(
    endpoints: Sequence[Endpoint],
    saved_model_dir: str | os.PathLike,
    path: str | os.PathLike,
    quantize: str = "none",
    metric: Any = None,
    *,
    custom_ops: bool = False,
    atol: float = FP32_ATOL,
    float32_size_bytes: int | None = None,
    latency_runs: int = 20,
    static: bool = False,
    io: str = "float",
    app_loop: Any = None,
) -> dict[str, Any]:
    """Convert the `tflite=True` endpoints, check them on both LiteRT APIs, then write atomically.

    Args:
        endpoints: all endpoints of the model; those with `tflite=False` are skipped.
        saved_model_dir: the SavedModel written by `write_saved_model` for the same endpoints.
        path: destination .tflite file; the report goes to `PATH.report.json`.
        quantize: "none", "dynamic", "float16" or "int8" (see `convert`).
        metric: optional `metric(reference_outputs, tflite_outputs)` per endpoint, reported.
        custom_ops: allow and load tensorflow-text custom ops (tokenizer-in-graph exports).
        atol: fp32 tolerance; quantized models are not gated on differences, only reported.
        float32_size_bytes: size of the fp32 .tflite, to report the size ratio when quantized.
        latency_runs: timed runs for `latency_ms_batch1` (at the traced batch size when it is
            fixed).
        static: the file must fit the static profile (`kseq.export.static_shapes`): checked on
            the flatbuffer before anything runs, and reported.
        io: "int8" makes float inputs and outputs int8 (with `quantize="int8"`); the gate feeds
            the file quantized inputs and compares its outputs read back as float.
        app_loop: optional `check(signature) -> dict`, the task score of the file run as an
            app runs it (`signature(name)`: that signature on the Interpreter, float in and
            out); reported under "app_loop".

    Returns:
        The report (also written next to the model).

    Raises:
        ExportError: conversion failed, the Interpreter or CompiledModel cannot run a signature,
            (fp32) an output differs from the Keras reference on either, or (quantized) a
            decoder's ids differ between the two; nothing is written at `path` then.
    """
    eps = [ep for ep in endpoints if ep.tflite]
    if not eps:
        raise ExportError("no endpoint is marked for TFLite (tflite=True)")
    check_endpoints(eps)
    calibration = None
    if quantize == "int8":
        calibration = {
            ep.name: [prepare_inputs(ep, b) for b in ep.calibration_batches()] for ep in eps
        }
    model = convert(
        saved_model_dir,
        [ep.name for ep in eps],
        quantize,
        calibration,
        allow_custom_ops=custom_ops,
        io=io,
        float_scopes=sorted({scope for ep in eps for scope in ep.float_scopes}),
    )
    profile = None
    if static:
        profile = static_profile(model, _layers_from_report(Path(saved_model_dir)))
        check_static(profile)
    interpreter = load_interpreter(model, custom_ops)
    # Before any run: a non-strict input resize also overwrites the reported shape signature.
    signatures = describe_signatures(interpreter)
    gate_atol = atol if quantize == "none" else None
    summary = op_summary(model)
    # CompiledModel has no way to register tensorflow-text's kernels, so only builtin-only files
    # (every file but a tokenizer-in-graph one) can run there.
    compiled = None if summary["custom_ops"] else _load_compiled(model)
    try:
        parity, parity_compiled = {}, {}
        for ep in eps:
            parity[ep.name], parity_compiled[ep.name] = _gate(
                interpreter, compiled, ep, gate_atol, metric
            )
        compiled_latency = (
            None
            if compiled is None
            else _latency_ms_compiled(compiled, interpreter, eps[0], latency_runs)
        )
        app_loop_report = None if app_loop is None else app_loop(_float_signature(interpreter))
    finally:
        if compiled is not None:
            _quietly(close_compiled_model, compiled)

    report: dict[str, Any] = {
        "format": "tflite",
        "quantize": quantize,
        "size_bytes": len(model),
        "ops": summary["ops"],
        "op_input_types": summary["op_input_types"],
        "signatures": signatures,
        "parity": parity,
        "latency_ms_batch1": _latency_ms(interpreter, eps[0], latency_runs),
        "io": io,
        "latency_batch_size": fixed_batch_size(eps[0]) or 1,
        "interpreter": "ai_edge_litert.interpreter."
        + ("InterpreterWithCustomOps (tensorflow-text ops)" if custom_ops else "Interpreter"),
    }
    if compiled is not None:
        report["compiled_model"] = COMPILED_MODEL_API
        report["parity_compiled_model"] = parity_compiled
        report["latency_ms_batch1_compiled_model"] = compiled_latency
    else:
        report["compiled_model"] = "not run: CompiledModel cannot load tensorflow-text custom ops"
    if profile is not None:
        report["static_profile"] = {
            "ops_outside_allowlist": profile["ops_outside_allowlist"],
            "dynamic_tensors": len(profile["dynamic_tensors"]),
            "subgraphs": profile["subgraphs"],
            "checked_ops": list(FORBIDDEN_OPS) + ["custom ops"],
        }
    if app_loop_report is not None:
        report["app_loop"] = jsonable(app_loop_report)
    if io == "int8":
        report["io_quantization"] = {
            ep.name: Int8Io(interpreter.get_signature_runner(ep.name)).describe() for ep in eps
        }
    if float32_size_bytes:
        report["float32_size_bytes"] = float32_size_bytes
        report["size_ratio_vs_float32"] = len(model) / float32_size_bytes
    if summary["custom_ops"]:
        report["requires_custom_ops"] = summary["custom_ops"]
        report["note"] = CUSTOM_OPS_NOTE

    atomic_write_bytes(path, model)
    atomic_write_text(report_path(path), json.dumps(report, indent=2) + "\n")
    return report


def _quietly(fn: Any, *args: Any) -> Any:
    """LiteRT's runtime logs every accelerator it registers to fd 2; keep the CLI output clean."""
    with _quiet():
        return fn(*args)


def _float_signature(interpreter: Any) -> Any:
    """`signature(name)`: a call of that signature with float inputs and outputs (int8 ones
    quantized in and read back)."""

    def signature(name: str) -> Any:
        runner = interpreter.get_signature_runner(name)
        io = Int8Io(runner)
        return lambda **inputs: io.decode(runner(**io.encode(inputs)))

    return signature


def _run(runner: Any, ep: Endpoint, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    try:
        return runner(**batch)  # the runner resizes inputs to the batch's shapes on every call
    except (RuntimeError, ValueError) as e:
        n = next(iter(batch.values())).shape[0]
        raise ExportError(
            f"TFLite endpoint {ep.name!r} failed at run time (batch size {n}): {_first_line(e)}"
        ) from e


def _load_compiled(model: bytes) -> Any:
    try:
        return _quietly(load_compiled_model, model)
    except (RuntimeError, ValueError) as e:
        raise ExportError(f"LiteRT's CompiledModel cannot load the model: {_first_line(e)}") from e


def _run_compiled(
    compiled: Any, ep: Endpoint, batch: dict[str, np.ndarray], like: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    try:
        return _quietly(run_compiled, compiled, ep.name, batch, like)
    except (RuntimeError, ValueError, KeyError) as e:
        n = next(iter(batch.values())).shape[0]
        raise ExportError(
            f"TFLite endpoint {ep.name!r} fails on LiteRT's CompiledModel API (batch size {n}): "
            f"{_first_line(e)}"
        ) from e


def _gate(
    interpreter: Any, compiled: Any, ep: Endpoint, atol: float | None, metric: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Figures on the Interpreter and on CompiledModel, the same batches and the same rule."""
    runner = interpreter.get_signature_runner(ep.name)
    io = Int8Io(runner)  # int8 inputs/outputs: quantized in, read back as float
    runs, compiled_runs, sizes, result = [], [], [], {}
    for i, batch in enumerate(gate_batches(ep)):
        file_batch = io.encode(batch)
        raw = in_chunks(lambda b: _run(runner, ep, b), file_batch)
        got = io.decode(raw)
        reference = in_chunks(ep.reference, batch)
        runs.append(
            compare_outputs(ep.name, reference, got, exact=ep.exact, atol=atol, artifact="TFLite")
        )
        sizes.append(int(next(iter(batch.values())).shape[0]))
        if i == 0 and metric is not None:
            result["metric"] = run_metric(metric, reference, got)
        if compiled is None:
            continue
        got_compiled = io.decode(
            in_chunks(
                lambda b, raw=raw: _run_compiled(compiled, ep, b, _shaped_like(raw, b)), file_batch
            )
        )
        artifact = "TFLite on CompiledModel"
        compiled_runs.append(
            compare_outputs(
                ep.name, reference, got_compiled, exact=ep.exact, atol=atol, artifact=artifact
            )
        )
        if ep.exact and atol is None:  # quantized decoders: still the same ids on both APIs
            compare_outputs(
                ep.name,
                got,
                got_compiled,
                exact=True,
                atol=0.0,
                artifact=artifact,
                against="the Interpreter's output",
            )
    parity = {"batch_sizes": sizes, "outputs": merge_parity(runs), **result}
    compiled_parity = {"batch_sizes": sizes, "outputs": merge_parity(compiled_runs)}
    return parity, compiled_parity


def _shaped_like(outputs: Mapping[str, np.ndarray], batch: Mapping[str, np.ndarray]) -> dict:
    """Arrays with `outputs`' dtypes and row shapes, at `batch`'s number of rows."""
    rows = len(next(iter(batch.values())))
    return {k: np.zeros((rows, *np.shape(v)[1:]), np.asarray(v).dtype) for k, v in outputs.items()}


def _median_ms(call: Any, runs: int) -> float:
    """Median wall time of `call()` over `runs` calls, after a warm-up of three."""
    for _ in range(3):
        call()
    times = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def _first_row(interpreter: Any, ep: Endpoint) -> dict[str, np.ndarray]:
    """One held-out row (the first N for a file traced at batch size N), as the file takes it."""
    rows = fixed_batch_size(ep) or 1
    row = {k: v[:rows] for k, v in repeat_rows(prepare_inputs(ep, ep.samples), rows).items()}
    return Int8Io(interpreter.get_signature_runner(ep.name)).encode(row)


def _latency_ms(interpreter: Any, ep: Endpoint, runs: int) -> float:
    """Batch-1 latency on the Interpreter, on a real held-out row."""
    runner, row = interpreter.get_signature_runner(ep.name), _first_row(interpreter, ep)
    return _median_ms(lambda: runner(**row), runs)


def _latency_ms_compiled(compiled: Any, interpreter: Any, ep: Endpoint, runs: int) -> float:
    """The same on CompiledModel; each call resizes and makes its buffers, as an app whose
    batch shape changes between calls would."""
    row = _first_row(interpreter, ep)
    like = interpreter.get_signature_runner(ep.name)(**row)  # the file's own output dtypes
    return _median_ms(lambda: _run_compiled(compiled, ep, row, like), runs)


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:300] if lines else type(e).__name__
