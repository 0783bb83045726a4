"""Export: SavedModel and builtin-only TFLite artifacts, each checked against Keras (parity gate).

`Endpoint` is light; the writers import TensorFlow, so they load on first use (keeps `kseq --help`
and spec validation fast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kseq.export.endpoints import Endpoint

if TYPE_CHECKING:
    from kseq.export.saved_model import write_saved_model
    from kseq.export.tflite import convert, write_tflite

__all__ = ["Endpoint", "convert", "write_saved_model", "write_tflite"]

_LAZY = {
    "write_saved_model": "kseq.export.saved_model",
    "convert": "kseq.export.tflite",
    "write_tflite": "kseq.export.tflite",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kseq.export' has no attribute {name!r}")
