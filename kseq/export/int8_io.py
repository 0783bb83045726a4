"""int8 inputs and outputs of a full-integer TFLite file (`--io int8`).

With `--io int8` every float input and output of a signature is int8 (integer ones, such as
token ids and masks, stay as they are), so an all-int8 accelerator needs no float at the edges.
The app then quantizes what it feeds, `q = round(x / scale) + zero_point` clipped to -128..127,
and reads `x = (q - zero_point) * scale` back, with each tensor's scale and zero point from the
file (also in the report's `io_quantization`). `Int8Io` does exactly that for the parity gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["IO_MODES", "Int8Io"]

IO_MODES = ("float", "int8")


def _int8_tensors(details: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[float, int]]:
    return {
        name: (float(d["quantization"][0]), int(d["quantization"][1]))
        for name, d in details.items()
        if np.dtype(d["dtype"]) == np.int8
    }


class Int8Io:
    """Quantizes a signature's float inputs and reads its int8 outputs back as float.

    Made from an Interpreter's signature runner; a file without int8 inputs or outputs gives an
    `Int8Io` that passes everything through unchanged.
    """

    def __init__(self, runner: Any) -> None:
        self.inputs = _int8_tensors(runner.get_input_details())
        self.outputs = _int8_tensors(runner.get_output_details())

    def encode(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Float inputs -> the int8 values the file takes."""
        out = dict(batch)
        for name, (scale, zero_point) in self.inputs.items():
            q = np.round(np.asarray(batch[name], np.float64) / scale) + zero_point
            out[name] = np.clip(q, -128, 127).astype(np.int8)
        return out

    def decode(self, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The file's int8 outputs -> float32 values."""
        out = dict(outputs)
        for name, (scale, zero_point) in self.outputs.items():
            out[name] = ((np.asarray(outputs[name], np.int32) - zero_point) * scale).astype(
                np.float32
            )
        return out

    def describe(self) -> dict[str, dict[str, dict[str, float]]]:
        """`{"inputs"|"outputs": {name: {"scale", "zero_point"}}}`, for the report."""
        return {
            side: {n: {"scale": s, "zero_point": z} for n, (s, z) in sorted(tensors.items())}
            for side, tensors in (("inputs", self.inputs), ("outputs", self.outputs))
        }
