"""Running a .tflite signature on LiteRT's CompiledModel API, on the CPU.

CompiledModel is the API that GPU/NPU accelerators and `litert-benchmark` use; a file can run
on the older Interpreter and still fail here, so the parity gate runs both. The app hands over
its own buffers: inputs are resized to the batch, and outputs are sized by the caller, because
CompiledModel keeps the output sizes of the shapes it was built with until it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["COMPILED_MODEL_API", "close_compiled_model", "load_compiled_model", "run_compiled"]

COMPILED_MODEL_API = "ai_edge_litert.compiled_model.CompiledModel (CPU)"


def load_compiled_model(model: bytes) -> Any:
    """The model compiled for the CPU accelerator, as an app using CompiledModel would load it.

    Raises:
        RuntimeError / ValueError: from LiteRT, when it rejects the model.
    """
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator

    return CompiledModel.from_buffer(model, hardware_accel=HardwareAccelerator.CPU)


def close_compiled_model(compiled: Any) -> None:
    """Release the model and its LiteRT environment now, not at interpreter exit (where LiteRT
    logs every accelerator it destroys, after the CLI's own output)."""
    import gc

    environment = compiled.environment
    compiled.close()
    environment.close()
    gc.collect()


def run_compiled(
    compiled: Any,
    signature: str,
    inputs: Mapping[str, np.ndarray],
    output_like: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Run `signature` on `inputs`; outputs get the shapes and dtypes of `output_like`.

    Raises:
        RuntimeError / ValueError: from LiteRT, when the signature cannot run (the gate turns
            these into an ExportError naming the endpoint).
    """
    from ai_edge_litert.tensor_buffer import TensorBuffer

    index = compiled.get_signature_index(signature)
    names = compiled.get_signature_list()[signature]
    if set(names["outputs"]) != set(output_like):
        # Two output names on one tensor: CompiledModel keeps only one of them.
        raise ValueError(
            f"CompiledModel lists outputs {sorted(names['outputs'])}, the signature has "
            f"{sorted(output_like)} (outputs sharing one tensor lose their names)"
        )
    for i, name in enumerate(names["inputs"]):
        # Non-strict: the same call serves dynamic dimensions and static ones given their size.
        compiled.resize_input_tensor(i, inputs[name].shape, index, strict=False)
    input_buffers = dict(zip(names["inputs"], compiled.create_input_buffers(index), strict=True))
    for name, buffer in input_buffers.items():
        buffer.write(np.ascontiguousarray(inputs[name]))
    output_buffers = {
        name: TensorBuffer.create_from_host_memory(np.zeros_like(output_like[name]))
        for name in names["outputs"]
    }
    compiled.run_by_name(signature, input_buffers, output_buffers)
    results = {}
    for name, buffer in output_buffers.items():
        like = np.asarray(output_like[name])
        results[name] = buffer.read(like.size, like.dtype).reshape(like.shape)
    return results
