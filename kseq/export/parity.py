"""The parity gate: run an artifact on an endpoint's held-out samples and compare with Keras.

Shared by the SavedModel and TFLite writers so both apply the same rule: float outputs within an
absolute tolerance, integer/string outputs (and `exact` endpoints) equal; every batch is run at the
sample batch size and at a second size, because dynamic-batch bugs only show at a size other than
the one traced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from kseq.errors import ExportError
from kseq.export.endpoints import Endpoint

__all__ = [
    "FP32_ATOL",
    "check_endpoints",
    "compare_outputs",
    "fixed_batch_size",
    "gate_batches",
    "jsonable",
    "merge_parity",
    "prepare_inputs",
    "repeat_rows",
    "run_metric",
]

# fp32 artifacts must match Keras to this tolerance (kernels differ only in summation order).
FP32_ATOL = 1e-4


def check_endpoints(endpoints: Sequence[Endpoint]) -> None:
    """Validate what a family handed over, so mistakes fail before any (slow) export work."""
    if not endpoints:
        raise ExportError("no endpoints to export")
    seen: set[str] = set()
    for ep in endpoints:
        if not ep.name.isidentifier():
            raise ExportError(f"endpoint name must be an identifier. Received: name={ep.name!r}")
        if ep.name in seen:
            raise ExportError(f"duplicate endpoint name {ep.name!r}")
        seen.add(ep.name)
        names = [spec.name for spec in ep.input_signature]
        if any(not n for n in names):
            raise ExportError(f"endpoint {ep.name!r}: every input TensorSpec needs a name=")
        if set(ep.samples) != set(names):
            raise ExportError(
                f"endpoint {ep.name!r}: samples must have exactly the inputs {sorted(names)}. "
                f"Received: samples keys={sorted(ep.samples)}"
            )
        sizes = {np.shape(v)[0] if np.ndim(v) else 0 for v in ep.samples.values()}
        if len(sizes) != 1 or 0 in sizes:
            raise ExportError(
                f"endpoint {ep.name!r}: samples need one common, non-zero batch size. "
                f"Received: batch sizes={sorted(sizes)}"
            )


def prepare_inputs(ep: Endpoint, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Cast a batch to the dtypes of the endpoint's input signature (e.g. float64 -> float32)."""
    out = {}
    for spec in ep.input_signature:
        value = np.asarray(batch[spec.name])
        if spec.dtype.is_floating or spec.dtype.is_integer or spec.dtype.is_bool:
            value = value.astype(spec.dtype.as_numpy_dtype, copy=False)
        out[spec.name] = value
    return out


def fixed_batch_size(ep: Endpoint) -> int | None:
    """The batch size every input of `ep` is traced at (a static export), or None."""
    sizes = {spec.shape[0] if spec.shape.rank else None for spec in ep.input_signature}
    return sizes.pop() if len(sizes) == 1 and None not in sizes else None


def repeat_rows(rows: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
    """`rows` with at least `count` rows: all of them repeated as often as needed."""
    have = len(next(iter(rows.values())))
    if have >= count:
        return rows
    times = -(-count // have)
    return {k: np.concatenate([v] * times) for k, v in rows.items()}


# Rows per call when the gate runs a large sample batch. A LiteRT runtime keeps the arena of
# its largest call: at 256 rows the G2P preset's decoding loop held 160 MB (Interpreter) +
# 110 MB (CompiledModel) after the gate, measured; 64 rows hold a quarter of that.
GATE_CHUNK_ROWS = 64


def in_chunks(
    run: Callable[[dict[str, np.ndarray]], Mapping[str, Any]],
    batch: Mapping[str, np.ndarray],
    rows: int = GATE_CHUNK_ROWS,
) -> dict[str, np.ndarray]:
    """`run(batch)`, called on at most `rows` rows at a time, outputs joined along the batch.

    The gate's sample batch is every held-out row (all of them feed the task metric); run at
    once, a decoder's Keras reference and the file each hold the whole batch's activations, so
    memory grew with the held-out set. In chunks it is bounded by `rows`.
    """
    n = len(next(iter(batch.values())))
    if n <= rows:
        return dict(run(dict(batch)))
    parts = [run({k: v[i : i + rows] for k, v in batch.items()}) for i in range(0, n, rows)]
    parts = [{k: np.asarray(v) for k, v in part.items()} for part in parts]
    if any({p[k].shape[1:] for p in parts} != {parts[0][k].shape[1:]} for k in parts[0]):
        return dict(run(dict(batch)))  # outputs sized by their chunk (e.g. in-graph tokenizing)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def gate_batches(ep: Endpoint) -> list[dict[str, np.ndarray]]:
    """The full sample batch and a batch of another size (first row, or the row repeated).

    At a fixed batch size N (a static export): the first N rows and the next N.
    """
    full = prepare_inputs(ep, ep.samples)
    fixed = fixed_batch_size(ep)
    if fixed is not None:
        full = repeat_rows(full, 2 * fixed)
        return [{k: v[i * fixed : (i + 1) * fixed] for k, v in full.items()} for i in (0, 1)]
    n = next(iter(full.values())).shape[0]
    if n > 1:
        other = {k: v[:1] for k, v in full.items()}
    else:
        other = {k: np.concatenate([v, v]) for k, v in full.items()}
    return [full, other]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 1.0 if na == nb else 0.0
    return float(np.dot(a, b) / (na * nb))


def compare_outputs(
    endpoint: str,
    reference: Mapping[str, Any],
    got: Mapping[str, Any],
    *,
    exact: bool,
    atol: float | None,
    artifact: str,
    against: str = "the Keras reference",
) -> dict[str, dict[str, Any]]:
    """Compare one batch's outputs; return figures per output.

    Args:
        atol: tolerance for float outputs; None means report only (quantized artifacts).
        artifact: what is being checked, for the error message ("SavedModel", "TFLite").
        against: what `reference` is, for the error message.

    Raises:
        ExportError: outputs missing/extra, shape mismatch, or (when `atol` is set) a difference
            above the tolerance; the message names endpoint, output and the difference.
    """
    if set(reference) != set(got):
        raise ExportError(
            f"{artifact} endpoint {endpoint!r}: outputs {sorted(got)} do not match the reference "
            f"outputs {sorted(reference)}"
        )
    figures: dict[str, dict[str, Any]] = {}
    for name in sorted(reference):
        ref, out = np.asarray(reference[name]), np.asarray(got[name])
        if ref.shape != out.shape:
            raise ExportError(
                f"{artifact} endpoint {endpoint!r} output {name!r}: shape {out.shape} != "
                f"reference shape {ref.shape}"
            )
        is_float = np.issubdtype(ref.dtype, np.floating) and np.issubdtype(out.dtype, np.floating)
        if exact or not is_float:
            equal = np.asarray(ref == out)
            fraction = float(np.mean(equal)) if equal.size else 1.0
            figures[name] = {"compare": "exact", "equal_fraction": fraction}
            if atol is not None and fraction < 1.0:
                raise ExportError(
                    f"{artifact} endpoint {endpoint!r} output {name!r}: differs from {against} "
                    f"in {1.0 - fraction:.2%} of values (exact match required)"
                )
            continue
        diff = np.abs(ref.astype(np.float64) - out.astype(np.float64))
        max_diff = float(diff.max()) if diff.size else 0.0
        figures[name] = {
            "compare": "tolerance" if atol is not None else "report",
            "max_abs_diff": max_diff,
            "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
            "cosine_similarity": _cosine(ref.astype(np.float64), out.astype(np.float64)),
        }
        if atol is not None:
            figures[name]["atol"] = atol
            if not max_diff <= atol:  # also catches NaN
                raise ExportError(
                    f"{artifact} endpoint {endpoint!r} output {name!r}: max abs diff "
                    f"{max_diff:.3g} exceeds {atol:g} against {against}"
                )
    return figures


def merge_parity(runs: Sequence[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Combine per-batch figures into one entry per output (worst case across batches)."""
    merged: dict[str, dict[str, Any]] = {}
    for figures in runs:
        for name, fig in figures.items():
            cur = merged.setdefault(name, dict(fig))
            for key, value in fig.items():
                if key in ("max_abs_diff", "mean_abs_diff"):
                    cur[key] = max(cur[key], value)
                elif key in ("cosine_similarity", "equal_fraction"):
                    cur[key] = min(cur[key], value)
    return merged


def run_metric(metric: Callable[..., Any] | None, reference: Any, got: Any) -> Any:
    """Call a user metric(reference_outputs, artifact_outputs) and make the result JSON-able."""
    return None if metric is None else jsonable(metric(reference, got))


def jsonable(value: Any) -> Any:
    """Numpy scalars/arrays and tuples -> plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value
