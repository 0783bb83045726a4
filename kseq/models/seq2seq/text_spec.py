"""Spec sections shared by the sequence-to-sequence families: text data, tokenizers, decoding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from kseq.data.lengths import MAX_LENGTH
from kseq.data.shards import format_name
from kseq.spec.data_paths import (
    check_data_paths,
    data_path_field,
    path_items,
    shuffle_buffer_field,
    streaming_field,
    vocab_sample_field,
)
from kseq.spec.fields import option

PAIR_SUFFIXES = (".tsv", ".txt", ".jsonl", ".json")


@dataclass
class TokenizerSpec:
    """How text becomes ids. pad=0, unk=1, bos=2, eos=3 always."""

    type: Literal["char", "whitespace", "word", "wordpiece"] = option("char", help="tokenizer kind")
    vocab_size: int | None = option(
        None, min=8, max=10_000_000, help="largest vocabulary; null = all tokens"
    )
    min_count: int = option(1, min=1, max=1_000_000_000, help="drop tokens seen fewer times")
    shared: bool | None = option(
        None,
        help="one vocabulary for source and target (data.tokenizer only; null = true); "
        "per-side tokenizers always have their own",
    )


@dataclass
class TokenizerSides:
    """The tokenizer options of each side, as `TextPairDataSpec.sides()` resolves them."""

    source: TokenizerSpec
    target: TokenizerSpec
    shared: bool  # one tokenizer fitted on both sides
    source_path: str  # where the user sets the source side's options, for messages
    target_path: str


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

    train: str | list[str] | None = data_path_field(
        "TSV or JSONL (.gz too): a file, a glob or a list of them; null = built-in task"
    )
    validation: str | list[str] | None = data_path_field(
        "held-out pairs, same forms as train; null = split off"
    )
    validation_split: float = option(0.05, above=0.0, below=1.0)
    streaming: bool | None = streaming_field()
    shuffle_buffer: int = shuffle_buffer_field("pairs")
    vocab_sample: int = vocab_sample_field("training pairs")
    synthetic: SyntheticTextSpec = option(SyntheticTextSpec())
    tokenizer: TokenizerSpec | None = option(
        None, help="both sides (shorthand); null = type char, shared"
    )
    source_tokenizer: TokenizerSpec | None = option(
        None, help="the source side's own tokenizer (instead of data.tokenizer)"
    )
    target_tokenizer: TokenizerSpec | None = option(
        None, help="the target side's own tokenizer (instead of data.tokenizer)"
    )
    max_source_length: int | Literal["auto"] = option(
        "auto",
        min=1,
        max=MAX_LENGTH,
        help="tokens; longer sources follow length_policy; auto = the longest training source "
        "(the number used is saved in RUN_DIR/spec.yaml)",
    )
    max_target_length: int | Literal["auto"] = option(
        "auto",
        min=1,
        max=MAX_LENGTH,
        help="tokens, without eos; also the decode limit; auto = the longest training target",
    )
    length_policy: Literal["truncate", "drop"] = "drop"
    max_dropped_share: float = option(
        0.01,
        min=0.0,
        max=1.0,
        help="training stops before it starts when length_policy would drop or truncate more "
        "than this share of the training pairs",
    )
    on_error: Literal["skip", "fail"] = option("fail", help="what a malformed line does")
    bucketing: bool = option(True, help="batch sequences of similar length together")

    preflight: ClassVar[str] = "kseq.models.seq2seq.preflight:check_text_pairs"  # kseq validate

    def require_shared_vocabulary(self, checker, path: str) -> None:
        """A model option at `path` that needs one vocabulary for both sides."""
        sides = self.sides()
        if not sides.shared:
            per_side = sides.source_path != "data.tokenizer"
            checker.fail(
                path,
                "needs one vocabulary for source and target",
                "data.tokenizer with shared: true (not per-side tokenizers)",
                "per-side tokenizers" if per_side else "data.tokenizer.shared: false",
            )

    def check(self, checker, path):
        check_data_paths(self, checker, path)
        for key in ("train", "validation"):
            for suffix, item in path_items(getattr(self, key)):
                if not format_name(item).endswith(PAIR_SUFFIXES):
                    checker.fail(
                        f"{path}.{key}{suffix}",
                        "unsupported file type",
                        ".tsv or .jsonl (optionally .gz)",
                        item,
                    )
        per_side = [
            k for k in ("source_tokenizer", "target_tokenizer") if getattr(self, k) is not None
        ]
        if self.tokenizer is not None and per_side:
            checker.fail(
                f"{path}.tokenizer",
                f"given together with {' and '.join(f'{path}.{k}' for k in per_side)}",
                f"either {path}.tokenizer (both sides) or per-side tokenizers",
                "both forms",
            )
        for key in per_side:
            if getattr(self, key).shared:
                checker.fail(
                    f"{path}.{key}.shared",
                    "per-side tokenizers always have their own vocabulary",
                    f"false or unset (for one shared vocabulary use {path}.tokenizer)",
                    "true",
                )

    def sides(self) -> TokenizerSides:
        """The tokenizer options of source and target: read them here, never field by field."""
        if self.source_tokenizer is not None or self.target_tokenizer is not None:
            return TokenizerSides(
                source=self.source_tokenizer or TokenizerSpec(),
                target=self.target_tokenizer or TokenizerSpec(),
                shared=False,
                source_path="data.source_tokenizer",
                target_path="data.target_tokenizer",
            )
        options = self.tokenizer or TokenizerSpec()
        return TokenizerSides(
            source=options,
            target=options,
            shared=options.shared is not False,
            source_path="data.tokenizer",
            target_path="data.tokenizer",
        )


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
