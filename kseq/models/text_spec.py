"""Spec sections shared by the sequence-to-sequence families: text data, tokenizers, decoding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kseq.spec.fields import option


@dataclass
class TokenizerSpec:
    """How text becomes ids. pad=0, unk=1, bos=2, eos=3 always."""

    type: Literal["char", "word", "wordpiece"] = option("char", help="tokenizer kind")
    vocab_size: int | None = option(
        None, min=8, max=10_000_000, help="largest vocabulary; null = all tokens"
    )
    min_count: int = option(1, min=1, max=1_000_000_000, help="drop tokens seen fewer times")
    shared: bool = option(True, help="one vocabulary for source and target")


@dataclass
class SyntheticTextSpec:
    """The built-in date-normalisation task: human-written dates (English, Chinese) -> ISO 8601."""

    task: Literal["dates"] = "dates"
    train_size: int = option(20000, min=10, max=1_000_000)
    validation_size: int = option(1000, min=5, max=1_000_000)
    seed: int = option(0, min=0, max=2**32 - 1)


@dataclass
class TextPairDataSpec:
    """Parallel text from TSV (source<TAB>target) or JSONL ({"source", "target"}) files."""

    train: str | None = option(None, is_path=True, help="TSV or JSONL; null = built-in task")
    validation: str | None = option(None, is_path=True, help="held-out pairs; null = split off")
    validation_split: float = option(0.05, above=0.0, below=1.0)
    synthetic: SyntheticTextSpec = option(SyntheticTextSpec())
    tokenizer: TokenizerSpec = option(TokenizerSpec())
    max_source_length: int = option(
        64, min=1, max=1_000_000, help="tokens; longer sources follow length_policy"
    )
    max_target_length: int = option(
        32, min=1, max=1_000_000, help="tokens, without eos; also the decode limit"
    )
    length_policy: Literal["truncate", "drop"] = "drop"
    on_error: Literal["skip", "fail"] = option("fail", help="what a malformed line does")
    bucketing: bool = option(True, help="batch sequences of similar length together")

    def check(self, checker, path):
        if self.validation and not self.train:
            checker.fail(f"{path}.validation", "set without data.train", "data.train to be set")
        for key in ("train", "validation"):
            value = getattr(self, key)
            if value and not value.endswith((".tsv", ".txt", ".jsonl", ".json")):
                checker.fail(f"{path}.{key}", "unsupported file type", ".tsv or .jsonl", value)


@dataclass
class DecodeSpec:
    """How outputs are generated at inference (predict, evaluate, the exported `generate`)."""

    strategy: Literal["greedy", "beam", "sampling"] = "greedy"
    beam_width: int = option(4, min=1, max=64)
    length_penalty: float = option(0.6, min=0.0, help="GNMT length-penalty alpha (beam)")
    n_best: int = option(1, min=1, max=64, help="hypotheses returned per input (beam)")
    temperature: float = option(1.0, above=0.0, help="softmax temperature (sampling)")
    top_k: int = option(
        0, min=0, max=10_000_000, help="sample among the k most likely; 0 = all (sampling)"
    )
    seed: int = option(0, min=0, max=2**32 - 1, help="sampling seed")

    def check(self, checker, path):
        if self.n_best > self.beam_width and self.strategy == "beam":
            checker.fail(f"{path}.n_best", "larger than beam_width", f"<= {self.beam_width}")
