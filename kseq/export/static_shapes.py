"""Static accelerator profile: fixed shapes, no control flow, checked on the flatbuffer itself.

Mobile GPU delegates and NPU compilers need every tensor's shape known when the file is
compiled and no loops: a dynamic dimension brings SHAPE / STRIDED_SLICE / REDUCE_PROD / FILL
chains that drag their neighbours back to the CPU, and WHILE/IF are compiled piecewise if at
all. A `--static` export is traced with fully defined input shapes (batch included) and then
read back op by op and tensor by tensor; anything outside the profile fails the export with the
op and the Keras layer that made it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from kseq.errors import ExportError
from kseq.export.converter_errors import layer_for_scopes
from kseq.export.endpoints import Endpoint
from kseq.export.parity import repeat_rows
from kseq.export.tflite_inspect import is_custom, op_name

__all__ = [
    "FORBIDDEN_OPS",
    "StaticShape",
    "check_static",
    "static_profile",
    "with_fixed_batch",
]

# Ops accelerators reject or that only exist for run-time shapes and loops; custom ops too.
FORBIDDEN_OPS = (
    "WHILE",
    "IF",
    "SHAPE",
    "FILL",
    "REDUCE_PROD",
    "ONE_HOT",
    "RANGE",
    "UNSORTED_SEGMENT_PROD",
    "TOPK_V2",
)
MAX_STATIC_BATCH = 256  # the gate runs Keras on two such batches of every signature
MAX_CALIBRATION_BATCHES = 256


@dataclass(frozen=True)
class StaticShape:
    """The fixed shapes of a `--static` export.

    Args:
        batch_size: rows per call (the app pads a short batch).
        sequence_length: the input sequence axis (source tokens, BERT tokens); None = the
            spec's maximum.
        target_length: the decoder's length (seq2seq); None = the spec's maximum.
    """

    batch_size: int = 1
    sequence_length: int | None = None
    target_length: int | None = None


def with_fixed_batch(ep: Endpoint, batch_size: int) -> Endpoint:
    """`ep` with `batch_size` rows in every input; its other dimensions must be fixed already.

    Calibration rows are regrouped into batches of that size (the converter calibrates a
    signature at its traced shape); the parity gate runs the samples in such batches too.
    """
    import tensorflow as tf

    specs = []
    for spec in ep.input_signature:
        shape = spec.shape.as_list()
        if any(d is None for d in shape[1:]):
            raise ExportError(
                f"--static: input {spec.name!r} of endpoint {ep.name!r} still has a dynamic "
                f"dimension: {shape}"
            )
        specs.append(tf.TensorSpec([batch_size, *shape[1:]], spec.dtype, name=spec.name))
    original = ep.calibration_batches

    def calibration():
        batches = original()
        if not batches:
            return []
        rows = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
        count = len(next(iter(rows.values())))
        rows = repeat_rows(rows, batch_size)
        starts = list(range(0, max(count, batch_size) - batch_size + 1, batch_size))
        if len(starts) > MAX_CALIBRATION_BATCHES:  # batch 1: an even spread is enough
            keep = np.linspace(0, len(starts) - 1, MAX_CALIBRATION_BATCHES).round().astype(int)
            starts = [starts[i] for i in keep]
        return [{k: v[start : start + batch_size] for k, v in rows.items()} for start in starts]

    return dataclasses.replace(ep, input_signature=specs, calibration=calibration)


def static_profile(model: bytes, layer_names: Collection[str] | None = None) -> dict[str, Any]:
    """What in `model` is outside the static profile, read from the flatbuffer.

    Returns:
        {"ops_outside_allowlist": [{"op", "subgraph", "layer"}...] (one entry per op kind and
         layer), "dynamic_tensors": [{"tensor", "subgraph", "shape"}...] (shape signatures
         with -1), "subgraphs": count}
    """
    root = schema.Model.GetRootAs(model, 0)
    codes = [root.OperatorCodes(i) for i in range(root.OperatorCodesLength())]
    outside: dict[tuple[str, str, str | None], None] = {}
    dynamic = []
    for s in range(root.SubgraphsLength()):
        graph = root.Subgraphs(s)
        subgraph = (graph.Name() or b"").decode() or f"subgraph {s}"
        for j in range(graph.OperatorsLength()):
            op = graph.Operators(j)
            code = codes[op.OpcodeIndex()]
            name = op_name(code)
            if name in FORBIDDEN_OPS or is_custom(code):
                outputs = op.OutputsAsNumpy() if op.OutputsLength() else []
                scopes = [graph.Tensors(int(t)).Name().decode() for t in outputs if t >= 0]
                outside[(name, subgraph, layer_for_scopes(scopes, layer_names))] = None
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            signature = tensor.ShapeSignatureAsNumpy() if tensor.ShapeSignatureLength() else []
            if any(int(d) < 0 for d in signature):
                dynamic.append(
                    {
                        "tensor": tensor.Name().decode(),
                        "subgraph": subgraph,
                        "shape": [int(d) for d in signature],
                    }
                )
    return {
        "ops_outside_allowlist": [
            {"op": op, "subgraph": subgraph, "layer": layer} for op, subgraph, layer in outside
        ],
        "dynamic_tensors": dynamic,
        "subgraphs": root.SubgraphsLength(),
    }


def check_static(profile: dict[str, Any]) -> None:
    """Raise naming the ops (and their layers) or the dynamic tensors a static file still has."""
    ops = profile["ops_outside_allowlist"]
    if ops:
        named = "; ".join(
            f"{o['op']} in {o['subgraph']}" + (f" (layer {o['layer']!r})" if o["layer"] else "")
            for o in ops[:8]
        )
        raise ExportError(
            f"--static: the file still holds ops outside the static profile: {named}. Those "
            "layers need a loop-free, fixed-shape form"
        )
    tensors = profile["dynamic_tensors"]
    if tensors:
        named = ", ".join(f"{t['tensor']} {t['shape']}" for t in tensors[:5])
        raise ExportError(
            f"--static: {len(tensors)} tensor(s) still have a dynamic shape, e.g. {named}"
        )
