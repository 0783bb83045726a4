"""What a family may do beyond training and export, each a small protocol it meets by having the
method: predicting from text, tokenizing, drawing attention maps. The API asks
`require(family, capability, spec)` before the call, so a family without the capability gives
the user one line naming the command instead of a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from kseq.errors import KseqError

__all__ = ["DrawsAttention", "Predicts", "Tokenizes", "require"]


@runtime_checkable
class Predicts(Protocol):
    def predict(self, model, spec, run_dir: Path, texts: list[str], strategy=None, **options):
        """One dict per text: what `kseq predict` prints (decoded text, labels, spans)."""


@runtime_checkable
class Tokenizes(Protocol):
    def tokenize(self, run_dir: Path, texts: list[str]) -> list[list[int]]:
        """The model-input ids of each text, with the RUN_DIR's saved vocabulary."""


@runtime_checkable
class DrawsAttention(Protocol):
    def attention(self, model, spec, run_dir: Path, text: str):
        """(source tokens, output tokens, weights `(T, S)`) of one greedy decoding."""


COMMANDS = {Predicts: "predict", Tokenizes: "tokenize", DrawsAttention: "plot-attention"}


def require(family, capability: type, spec):
    """`family`, when it has `capability`; else a KseqError naming the command and the model."""
    if not isinstance(family, capability):
        raise KseqError(f"{COMMANDS[capability]} is not available for {spec.model.type} models")
    return family
