"""Spec classes of the BERT family (`model.type: bert`): encoder sizes, head, data, tokenizer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kseq.data.shards import format_name, is_gzip, is_pattern
from kseq.models.bert.heads import bert_head
from kseq.models.bert.losses import LOSS  # importing registers the family's loss
from kseq.registry import Registry
from kseq.spec import data_paths
from kseq.spec.common import ModelSpec, check_heads_divide_width
from kseq.spec.errors import SpecError
from kseq.spec.fields import Variant, option, variant
from kseq.spec.source import read_spec_file


def _keyword_field(cls, attribute: str, key: str):
    """Expose dataclass field `attribute` under the YAML key `key` (a Python keyword).

    `init.from` cannot be a Python identifier; the field is stored as `attribute` and the
    spec machinery (which reads fields by name) sees it as `key`: constructor keyword,
    attribute (a property) and type hint all answer to `key`.
    """
    fields = {}
    for name, spec_field in cls.__dataclass_fields__.items():
        if name == attribute:
            spec_field.name = key
            name = key
        fields[name] = spec_field
    cls.__dataclass_fields__ = fields
    cls.__annotations__ = {
        (key if name == attribute else name): hint for name, hint in cls.__annotations__.items()
    }
    init = cls.__init__

    def __init__(self, **kwargs):
        if key in kwargs:
            kwargs[attribute] = kwargs.pop(key)
        init(self, **kwargs)

    cls.__init__ = __init__
    setattr(
        cls,
        key,
        property(
            lambda self: getattr(self, attribute), lambda self, v: setattr(self, attribute, v)
        ),
    )
    return cls


@dataclass
class InitSpec:
    """Start from the weights of a trained or imported kseq BERT run (`init.from: RUN_DIR`).

    The backbone's weights are copied and its tokenizer is reused; the architecture (sizes,
    epsilon, activation) is taken from that run. The window (`model.max_sequence_length`)
    stays the spec's, at most the run's position table, whose first rows are kept. The head
    starts fresh unless `keep_head` is set and the run has the same head type with the same
    shapes.
    """

    from_: str | None = option(
        None, help="a kseq BERT RUN_DIR (relative to the working directory); null = random init"
    )
    keep_head: bool = option(False, help="also copy the head when type and shapes match")


_keyword_field(InitSpec, "from_", "from")


@dataclass
class FreezeSpec:
    """Parts of the backbone that are not trained."""

    embeddings: bool = option(False, help="freeze token/segment/position embeddings + their norm")
    layers: int = option(0, min=0, max=1024, help="freeze the lowest N encoder layers")


def head_dropout_field():
    """A classifier head's own dropout rate (null: the model's)."""
    return option(None, min=0.0, below=1.0, help="null = model.dropout")


def label_smoothing_field():
    return option(
        0.0, min=0.0, below=1.0, help="mass spread uniformly over the labels (padding ignored)"
    )


class HeadSpec(Variant):
    """The task head on top of the encoder, chosen by `type:`."""

    variants = Registry("head type")


@variant("none")
class NoHeadSpec(HeadSpec):
    """No head: the encoder alone (sequence_output, pooled_output); for imported checkpoints."""


@variant("classification")
class ClassificationHeadSpec(HeadSpec):
    """Sentence (or sentence-pair) classification from the pooled [CLS] output."""

    dropout: float | None = head_dropout_field()
    num_classes: int | None = option(
        None, min=2, max=1_000_000, help="null = the labels found in the data"
    )
    label_smoothing: float = label_smoothing_field()


@variant("token_classification")
class TokenClassificationHeadSpec(HeadSpec):
    """A tag per word (named entities, ...); the first WordPiece of each word carries it."""

    dropout: float | None = head_dropout_field()
    num_tags: int | None = option(
        None, min=2, max=100_000, help="null = the tags found in the data"
    )
    label_smoothing: float = label_smoothing_field()


@variant("span_qa")
class SpanQAHeadSpec(HeadSpec):
    """Extractive question answering: start/end logits over the context, best-span decoding."""

    max_answer_length: int = option(30, min=1, max=100_000, help="longest answer, in tokens")
    max_query_length: int = option(
        32, min=1, max=100_000, help="questions are truncated to this many tokens"
    )
    doc_stride: int | None = option(
        128,
        min=1,
        max=100_000,
        help="a context longer than one window is split into windows starting this many "
        "tokens apart; null = cut the context after the first window",
    )
    null_threshold: float | None = option(
        None,
        help="answer nothing when the no-answer score beats the best span by more than this "
        "(SQuAD 2.0; `kseq evaluate` reports the best value); null = always answer",
    )
    no_answer_share: float | None = option(
        None,
        min=0.0,
        max=1.0,
        help="share of training windows without the answer that are kept, labelled no-answer "
        "at [CLS]; null = all of them on data with unanswerable questions (SQuAD 2.0), none "
        "otherwise",
    )
    n_best: int = option(5, min=1, max=100, help="candidate answers `kseq predict` returns")


@variant("masked_lm")
class MaskedLMHeadSpec(HeadSpec):
    """Masked-language-model pretraining; the output projection is tied to the token embedding."""

    mask_rate: float = option(0.15, above=0.0, below=1.0, help="fraction of tokens predicted")
    mask_token_rate: float = option(0.8, min=0.0, max=1.0, help="of those: replaced by [MASK]")
    random_token_rate: float = option(0.1, min=0.0, max=1.0, help="of those: a random token")
    whole_word: bool = option(False, help="mask all pieces of a word together")
    max_predictions: int = option(20, min=1, max=100_000, help="most masked positions per sequence")

    def check(self, checker, path):
        if self.mask_token_rate + self.random_token_rate > 1.0:
            checker.fail(
                f"{path}.random_token_rate",
                "mask_token_rate + random_token_rate exceeds 1",
                f"<= {1.0 - self.mask_token_rate:g}",
                repr(self.random_token_rate),
            )


@dataclass
class BertSyntheticSpec:
    """Built-in, deterministically generated data sets, one per head (see kseq.models.bert.data).

    sentiment (single texts) and sentiment_pairs (same/different sentiment) for classification,
    entities (names and numbers, BIO tags) for token classification, qa (dates and names in
    generated contexts) and qa_long (the same questions over 250-490 word contexts: the answering
    biography among distractor biographies, several sequence windows long) for span_qa,
    pretraining (general sentences) and clinical (a domain) for masked_lm. `auto` picks the
    first task of the head.
    """

    task: Literal[
        "auto",
        "sentiment",
        "sentiment_pairs",
        "entities",
        "qa",
        "qa_long",
        "pretraining",
        "clinical",
    ] = option(
        "auto",
        help="auto = the head's first task; span_qa: qa (short) or qa_long (long contexts)",
    )
    train_size: int = option(2000, min=10, max=1_000_000)
    validation_size: int = option(200, min=5, max=1_000_000)
    seed: int = option(0, min=0, max=2**32 - 1)


@dataclass
class BertTokenizerSpec:
    """BERT WordPiece: a given vocab.txt, or a vocabulary learned from the training text."""

    vocab: str | None = option(None, is_path=True, help="a BERT vocab.txt; null = learn one")
    lowercase: bool = option(True, help="uncased: lowercase the text")
    strip_accents: bool | None = option(None, help="NFD + drop accents; null = as lowercase")
    vocab_size: int = option(
        2000, min=16, max=10_000_000, help="size of a learned vocabulary (at most)"
    )
    min_count: int = option(
        1, min=1, max=1_000_000_000, help="characters seen fewer times are left out"
    )


@dataclass
class BertDataSpec:
    """Task data from files, or a built-in synthetic set when `train` is null.

    Files by head: classification — TSV (`text<TAB>label` or `text<TAB>text_pair<TAB>label`,
    optional header) or JSONL; token_classification — JSONL (`tokens`, `tags`) or CoNLL-style
    TSV (`token<TAB>tag`, blank line between sentences); span_qa — SQuAD JSON; masked_lm —
    plain text, one document per line (or per blank-line separated paragraph).
    """

    train: str | list[str] | None = data_paths.data_path_field(
        "training file (masked_lm: also a glob or a list, .gz too); null = synthetic"
    )
    validation: str | list[str] | None = data_paths.data_path_field(
        "held-out file, same forms as train; null = split off"
    )
    validation_split: float = option(0.1, above=0.0, below=1.0)
    streaming: bool | None = data_paths.streaming_field()  # masked_lm only
    shuffle_buffer: int = data_paths.shuffle_buffer_field("rows")
    vocab_sample: int = data_paths.vocab_sample_field("documents")
    sequence_length: int | None = option(
        None, min=4, max=1_000_000, help="packed length; null = model max"
    )
    text_field: str = option("text", nonempty=True, help="JSONL key of the text")
    text_pair_field: str = option("text_pair", nonempty=True, help="JSONL key of a second text")
    label_field: str = option("label", nonempty=True, help="JSONL key of the label")
    tokens_field: str = option("tokens", nonempty=True, help="JSONL key of the words")
    tags_field: str = option("tags", nonempty=True, help="JSONL key of the word tags")
    documents: Literal["lines", "paragraphs"] = option(
        "lines", help="masked_lm text: a document per line or per blank-line separated block"
    )
    synthetic: BertSyntheticSpec = option(BertSyntheticSpec())
    tokenizer: BertTokenizerSpec = option(BertTokenizerSpec())

    def check(self, checker, path):
        data_paths.check_data_paths(self, checker, path)
        head = checker.root.model.head.type
        corpus = bert_head(head).reads_corpus
        for key in ("train", "validation"):
            value = getattr(self, key)
            several = isinstance(value, list) or (value is not None and is_pattern(value))
            if not corpus and (several or (value and is_gzip(value))):
                checker.fail(
                    f"{path}.{key}",
                    f"a {head} head reads one plain file",
                    "one file (globs, lists and .gz are for masked_lm text)",
                    value,
                )
        if self.streaming and not corpus:
            checker.fail(f"{path}.streaming", f"a {head} head reads into memory", "false or null")
        if self.streaming and self.documents == "paragraphs":
            checker.fail(
                f"{path}.documents",
                "a stream reads one document per line",
                "lines (or data.streaming: false)",
                "paragraphs",
            )


@variant("bert")
class BertSpec(ModelSpec):
    """BERT: token + segment + position embeddings, a Transformer encoder and a task head."""

    family = "kseq.models.bert.family:BertFamily"
    parts = ("full", "encoder", "text", "with_tokenizer")
    vocab_size: int | None = option(
        None, min=8, max=10_000_000, help="null = the tokenizer's vocabulary size"
    )
    hidden_size: int = option(128, min=1, max=65_536)
    num_layers: int = option(2, min=1, max=64)
    num_heads: int = option(2, min=1, max=1024)
    intermediate_size: int = option(
        512, min=1, max=262_144, help="width of the feed-forward layers"
    )
    max_sequence_length: int = option(
        128,
        min=4,
        max=1_000_000,
        help="the window: rows of the position embedding (with init.from: up to the "
        "checkpoint's, whose first rows are kept)",
    )
    num_segments: int = option(2, min=1, max=1024, help="segment (token type) embeddings")
    dropout: float = option(0.1, min=0.0, below=1.0)
    attention_dropout: float | None = option(None, min=0.0, below=1.0, help="null = dropout")
    layer_norm_epsilon: float = option(1e-12, above=0.0)
    activation: Literal["gelu", "gelu_approximate", "relu"] = option(
        "gelu", help="feed-forward activation; gelu is the exact erf form"
    )
    norm_first: bool = option(False, help="pre-LN blocks (BERT is post-LN)")
    initializer_range: float = option(0.02, above=0.0, help="stddev of the truncated normal")
    init: InitSpec = option(InitSpec())
    freeze: FreezeSpec = option(FreezeSpec())
    layerwise_lr_decay: float = option(
        1.0, above=0.0, max=1.0, help="learning rate x decay^depth from the top layer down"
    )
    head: HeadSpec = option(ClassificationHeadSpec(), help="the task head")

    data_spec = BertDataSpec
    default_loss = LOSS

    def check(self, checker, path):
        check_heads_divide_width(checker, path, self.hidden_size, self.num_heads)
        table = init_position_table(self.init.from_) if self.init.from_ else None
        if table is not None and self.max_sequence_length > table:
            checker.fail(
                f"{path}.max_sequence_length",
                f"longer than the {table} positions of model.init.from (the window is at most "
                "the checkpoint's position table)",
                f"<= {table}",
                repr(self.max_sequence_length),
            )
        if self.freeze.layers > self.num_layers:
            checker.fail(
                f"{path}.freeze.layers",
                f"more than the {self.num_layers} encoder layers",
                f"<= {self.num_layers}",
                repr(self.freeze.layers),
            )

    def check_with_data(self, checker, data: BertDataSpec):
        head = self.head.type
        kind = bert_head(head)
        if data.sequence_length is not None and data.sequence_length > self.max_sequence_length:
            checker.fail(
                "data.sequence_length",
                f"longer than model.max_sequence_length ({self.max_sequence_length})",
                f"<= {self.max_sequence_length}",
                repr(data.sequence_length),
            )
        task = data.synthetic.task
        if data.train is None and task != "auto" and task not in kind.synthetic_tasks:
            checker.fail(
                "data.synthetic.task",
                f"not a task for a {head} head",
                "auto or " + ", ".join(kind.synthetic_tasks),
                repr(task),
            )
        for key in ("train", "validation"):
            for suffix, item in data_paths.path_items(getattr(data, key)):
                if not format_name(item).endswith(kind.file_types):
                    checker.fail(
                        f"data.{key}{suffix}",
                        f"unsupported file type for a {head} head",
                        " or ".join(kind.file_types) + (" (or .gz)" if kind.reads_corpus else ""),
                        item,
                    )

    def architecture(self) -> dict:
        """The fields that define the backbone's shapes and arithmetic."""
        return {name: getattr(self, name) for name in ARCHITECTURE_FIELDS}


ARCHITECTURE_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_layers",
    "num_heads",
    "intermediate_size",
    "max_sequence_length",
    "num_segments",
    "layer_norm_epsilon",
    "activation",
    "norm_first",
)


def init_position_table(run_dir: str) -> int | None:
    """Rows of the position table of the `init.from` run, from its spec.yaml; None when it
    cannot be read (training checks the run itself, with its own message)."""
    from pathlib import Path

    try:
        value = read_spec_file(Path(run_dir).expanduser() / "spec.yaml").data["model"][
            "max_sequence_length"
        ]
    except (SpecError, OSError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def synthetic_task(spec) -> str:
    task = spec.data.synthetic.task
    return bert_head(spec.model.head.type).synthetic_tasks[0] if task == "auto" else task


__all__ = [
    "ARCHITECTURE_FIELDS",
    "BertDataSpec",
    "BertSpec",
    "BertSyntheticSpec",
    "BertTokenizerSpec",
    "ClassificationHeadSpec",
    "FreezeSpec",
    "HeadSpec",
    "InitSpec",
    "MaskedLMHeadSpec",
    "NoHeadSpec",
    "SpanQAHeadSpec",
    "TokenClassificationHeadSpec",
]
