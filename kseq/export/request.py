"""What an export is asked for: one `ExportRequest`, checked against the run's spec and family
before anything is built (`kseq.export(run_dir, request)`; the CLI's flags make one)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kseq.errors import KseqError
from kseq.export.int8_io import IO_MODES
from kseq.export.static_shapes import MAX_STATIC_BATCH

if TYPE_CHECKING:
    from kseq.export.static_shapes import StaticShape

FORMATS = ("saved_model", "tflite")


@dataclass(frozen=True)
class ExportRequest:
    """One artifact of one RUN_DIR.

    quantize: None takes the spec's `export.quantize`. static: a `StaticShape` (every shape
    fixed, no control flow: for accelerators). sequence_length: fixes the sequence axis of a
    dynamic export (families whose inputs have one). io: "int8" makes float inputs and outputs
    int8 too (with int8 quantization).
    """

    format: str = "tflite"
    quantize: str | None = None
    part: str = "full"
    output: str | Path | None = None
    sequence_length: int | None = None
    static: StaticShape | None = None
    io: str = "float"

    def resolved(self, spec, family) -> ExportRequest:
        """This request with `quantize` settled; a `KseqError` naming the flag for anything the
        format, the model or the family cannot do."""
        if self.format not in FORMATS:
            raise KseqError(
                f"--format: unknown format {self.format!r}; expected saved_model or tflite"
            )
        parts = type(spec.model).parts
        if self.part not in parts:
            raise KseqError(
                f"--part: {spec.model.type} has no part {self.part!r}; expected one of "
                + ", ".join(parts)
            )
        quantize = self.quantize or spec.export.quantize
        if self.format == "saved_model" and quantize != "none":
            raise KseqError("--quantize applies to TFLite exports only")
        if self.io not in IO_MODES:
            raise KseqError(f"--io: expected one of {', '.join(IO_MODES)}; received {self.io!r}")
        if self.io == "int8" and (self.format != "tflite" or quantize != "int8"):
            raise KseqError(
                "--io int8 needs --format tflite --quantize int8 (full-integer kernels); "
                f"received --format {self.format} --quantize {quantize}"
            )
        if self.static is not None:
            self._check_static()
        elif self.sequence_length is not None and self.sequence_length < 1:
            raise KseqError(f"--sequence-length: must be >= 1; received {self.sequence_length}")
        request = dataclasses.replace(self, quantize=quantize)
        family.check_export(request, spec)
        return request

    def _check_static(self) -> None:
        if self.format != "tflite":
            raise KseqError("--static applies to TFLite exports only")
        if self.sequence_length is not None:
            raise KseqError("with static=, give the sequence length as static.sequence_length")
        if not 1 <= self.static.batch_size <= MAX_STATIC_BATCH:
            raise KseqError(
                f"--batch-size must be in 1..{MAX_STATIC_BATCH}. Received: {self.static.batch_size}"
            )

    def endpoint_options(self) -> dict:
        """What `Family.endpoints` takes besides the model: a static shape or a fixed length."""
        if self.static is not None:
            return {"static": self.static}
        if self.sequence_length is not None:
            return {"sequence_length": self.sequence_length}
        return {}
