"""The contract every model family fulfils; the one path (train, evaluate, export) calls it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kseq.errors import KseqError
from kseq.spec.fields import named_object
from kseq.tokenizers import TextTokenizer


@dataclass
class PreparedData:
    """A family's data, ready for `model.fit`.

    Args:
        train / validation: tf.data datasets yielding (inputs, targets) batches.
        samples: held-out model inputs (dict name -> array) for parity checks and reports.
        calibration: training inputs (dict name -> array) for int8 calibration.
        info: the family's own dataclass of what else it knows (tokenizers, shapes, the
            held-out examples): `Seq2SeqInfo`, `BertInfo`, `AutoencoderInfo`.
        spec: the spec with every value taken from the data made concrete (`auto` lengths);
            None when the data settles nothing. The model is built from it and RUN_DIR records it.
    """

    train: Any
    validation: Any
    samples: dict
    calibration: dict
    info: Any = None
    spec: Any = None

    def concrete(self, spec):
        """`spec` with what the data settled (the spec itself when nothing)."""
        return self.spec if self.spec is not None else spec


class Family:
    """Base of a model family, named by its spec class (`ModelSpec.family`)."""

    def load_data(self, spec, run_dir: Path | None = None, data_file: str | None = None):
        """Read (or generate) the data; with `run_dir`, reuse the assets saved there."""
        raise NotImplementedError

    def build(self, spec, data: PreparedData):
        """An uncompiled keras.Model for the spec."""
        raise NotImplementedError

    def compile(self, model, spec) -> None:
        raise NotImplementedError

    def networks(self, model) -> list:
        """The networks the spec describes inside `model` (one; an ensemble's members)."""
        return [model]

    def activation_length(self, spec) -> int:
        """Longest sequence axis of a training batch, for the memory estimate (1: none)."""
        return 1

    def save_assets(self, run_dir: Path, data: PreparedData) -> None:
        """Write tokenizer/vocabulary files the family needs at inference (none by default)."""

    def saved_tokenizers(self, run_dir: Path) -> dict[str, TextTokenizer]:
        """The tokenizers saved in a RUN_DIR by role (`source`, `target`, `text`); none here."""
        return {}

    def evaluate(self, model, spec, data: PreparedData) -> dict:
        return {
            k: float(v)
            for k, v in model.evaluate(data.validation, return_dict=True, verbose=0).items()
        }

    # The lengths of `kseq.export.static_shapes.StaticShape` that a `--static` export of this
    # family fixes (the batch is always fixed); a length given for another family is an error.
    static_lengths: tuple[str, ...] = ()

    # Why `--io int8` needs `--static` for this family, or None when it does not.
    int8_io_needs_static: str | None = None

    def check_export(self, request, spec) -> None:
        """Refuse (KseqError, naming the flag) what this family's exports cannot do; `request`
        is a `kseq.export.request.ExportRequest` already checked for the format and the model."""
        if request.io == "int8" and request.static is None and self.int8_io_needs_static:
            raise KseqError(
                f"--io int8 needs --static for {spec.model.type}: {self.int8_io_needs_static}"
            )
        if request.static is not None:
            if self.custom_ops(request.part):
                raise KseqError(
                    f"--static: --part {request.part} runs tensorflow-text custom ops, which "
                    "accelerators do not compile; export the numeric part"
                )
            for name in ("sequence_length", "target_length"):
                if getattr(request.static, name) is not None and name not in self.static_lengths:
                    flag = "--" + name.replace("_", "-")
                    raise KseqError(f"{flag}: {spec.model.type} exports have no such axis")
        elif request.sequence_length is not None:  # a family that fixes one says so itself
            raise KseqError(f"--sequence-length: {spec.model.type} exports have no sequence axis")

    def endpoints(self, model, spec, data: PreparedData, part: str, static=None) -> list:
        """Serving signatures (kseq.export.Endpoint) of one part of the model.

        With `static` (a `StaticShape`): loop-free signatures whose every dimension but the
        batch is fixed; the exporter fixes the batch.
        """
        raise NotImplementedError

    def custom_ops(self, part: str) -> bool:
        """Whether the TFLite export of `part` needs tensorflow-text custom ops (tokenizers)."""
        return False

    def trackables(self, model, data: PreparedData) -> list:
        """Objects whose variables and tables the endpoints use (saved with the SavedModel)."""
        return [model]

    def quality(self, spec, data: PreparedData, part: str):
        """Optional task metric for quantized exports: fn(reference, candidate) -> dict."""
        return None

    def app_loop_check(self, model, spec, data: PreparedData, static=None):
        """Optional task score of a TFLite file run as an app runs it (a family whose apps may
        run a loop over the file's signatures): `check(signature) -> dict`, where
        `signature(name)` calls the file's signature with float inputs and outputs. `static`:
        the file's `StaticShape`, or None."""
        return None


def family_for(spec) -> Family:
    """A new instance of the `Family` class that the spec's model section names."""
    return named_object(type(spec.model).family)()
