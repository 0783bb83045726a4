"""Read what a .tflite flatbuffer contains: ops per name, their input types, custom ops, signatures.

Ops are counted from the flatbuffer rather than `Interpreter._get_ops_details()`, which sees only
the first subgraph (one signature, no WHILE bodies) and reports XNNPACK-delegated ops as DELEGATE.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from ai_edge_litert import schema_py_generated as schema

__all__ = ["describe_signatures", "is_custom", "op_name", "op_summary"]

_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


def _builtin(code: Any) -> int:
    # Builtin codes < 127 live in the deprecated int8 field, larger ones in the int32 field.
    return max(code.BuiltinCode(), code.DeprecatedBuiltinCode())


def is_custom(code: Any) -> bool:
    return _builtin(code) == schema.BuiltinOperator.CUSTOM


def op_name(code: Any) -> str:
    """The builtin op's name (e.g. "WHILE"), or a custom op's own name."""
    if is_custom(code):
        return code.CustomCode().decode()
    return _OP_NAMES.get(_builtin(code), f"BUILTIN_{_builtin(code)}")


def op_summary(model: bytes) -> dict[str, Any]:
    """Count ops over all subgraphs.

    Returns:
        {"ops": {name: count}, "op_input_types": {name: sorted tensor types feeding it},
         "custom_ops": sorted custom op names}
    """
    root = schema.Model.GetRootAs(model, 0)
    codes = [root.OperatorCodes(i) for i in range(root.OperatorCodesLength())]
    names = [op_name(c) for c in codes]
    customs = {n for n, c in zip(names, codes, strict=True) if is_custom(c)}
    counts: Counter[str] = Counter()
    types: dict[str, set[str]] = {}
    for s in range(root.SubgraphsLength()):
        graph = root.Subgraphs(s)
        for j in range(graph.OperatorsLength()):
            op = graph.Operators(j)
            name = names[op.OpcodeIndex()]
            counts[name] += 1
            seen = types.setdefault(name, set())
            for t in op.InputsAsNumpy() if op.InputsLength() else []:
                if t >= 0:  # -1 marks an omitted optional input
                    seen.add(_TYPE_NAMES.get(graph.Tensors(int(t)).Type(), "unknown"))
    return {
        "ops": dict(sorted(counts.items())),
        "op_input_types": {k: sorted(v) for k, v in sorted(types.items())},
        "custom_ops": sorted(customs),
    }


def _tensor_dict(detail: dict[str, Any]) -> dict[str, Any]:
    shape = detail.get("shape_signature")
    if shape is None or len(shape) == 0:
        shape = detail["shape"]
    return {
        "dtype": "string"
        if np.dtype(detail["dtype"]).kind in "OSU"
        else np.dtype(detail["dtype"]).name,
        "shape": [None if int(d) < 0 else int(d) for d in shape],
    }


def describe_signatures(interpreter: Any) -> dict[str, Any]:
    """Input/output names, dtypes and shapes (None = dynamic) of every signature."""
    out = {}
    for key in sorted(interpreter.get_signature_list()):
        runner = interpreter.get_signature_runner(key)
        out[key] = {
            "inputs": {k: _tensor_dict(v) for k, v in sorted(runner.get_input_details().items())},
            "outputs": {k: _tensor_dict(v) for k, v in sorted(runner.get_output_details().items())},
        }
    return out
