"""The BERT family on the one path: data, model, compile, evaluate, predict, export endpoints."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kseq.data.shards import data_files, streams
from kseq.data.split import train_and_validation
from kseq.data.streaming import worker_files
from kseq.data.unknown_input import warn_unknown_input
from kseq.errors import KseqError
from kseq.io.run_dir import SPEC_FILE, require_run_dir
from kseq.models.bert import data as bert_data
from kseq.models.bert import head_layers as _head_layers  # noqa: F401  (registers its layers for loading)
from kseq.models.bert import stream, synthetic
from kseq.models.bert.export import bert_endpoints, quality_metric
from kseq.models.bert.fine_tuning import fine_tuning_recipe
from kseq.models.bert.heads import bert_head
from kseq.models.bert.losses import LOSS, ignore_index_crossentropy, masked_accuracy
from kseq.models.bert.network import (
    BertConfig,
    backbone_layer_names,
    build_model,
    freeze,
    head_type,
    learning_rate_factors,
)
from kseq.models.bert.optim import with_layer_factors
from kseq.models.bert.spec import ARCHITECTURE_FIELDS, synthetic_task
from kseq.models.family import Family, PreparedData
from kseq.spec.load import load_spec
from kseq.tokenizers import TextTokenizer
from kseq.tokenizers.bert import BertTokenizer, read_vocab
from kseq.train.components import make_optimizer
from kseq.train.distribute import worker_shard

# What `model.init.from` takes from the checkpoint: every field that shapes or computes the
# network, except the window (`max_sequence_length`), which stays the user's.
ADOPTED_FIELDS = tuple(f for f in ARCHITECTURE_FIELDS if f != "max_sequence_length")

ASSETS = "assets"
# Held-out documents a streamed run keeps in memory for the export gate's samples.
STREAM_HELD_OUT_DOCUMENTS = 10_000
LABELS_FILE = "labels.json"


def assets_dir(run_dir) -> Path:
    return Path(run_dir) / ASSETS


def load_tokenizer(run_dir) -> BertTokenizer:
    directory = assets_dir(run_dir)
    if not (directory / "vocab.txt").is_file():
        raise KseqError(f"{run_dir}: no BERT vocabulary in {directory}")
    return BertTokenizer.load(directory)


def load_labels(run_dir) -> list[str] | None:
    path = assets_dir(run_dir) / LABELS_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))["labels"]


def _examples(spec, data_file, run_dir):
    """(train, validation) examples from a file, the spec's files, or the synthetic task."""

    head = spec.model.head.type
    data = spec.data
    read = bert_head(head).read_examples
    if data_file is not None:
        examples = read(data_file, data)
        return examples, examples
    if data.train is None:
        options = data.synthetic
        train_size = options.train_size
        if run_dir is not None:  # export/evaluate: a few rows are enough for calibration
            train_size = min(train_size, 16)
        return synthetic.generate(
            synthetic_task(spec), train_size, options.validation_size, options.seed
        )

    def read_all(value):
        return [example for path in data_files(value) for example in read(path, data)]

    return train_and_validation(data, read_all, spec.train.seed, "examples")


def _adopt_init(spec) -> dict:
    """Read `init.from`: its spec (architecture adopted into `spec.model`) and tokenizer."""

    path = Path(spec.model.init.from_).expanduser()
    try:
        require_run_dir(path)
    except KseqError as e:
        raise KseqError(f"model.init.from: {e}") from None
    source = load_spec(path / SPEC_FILE)
    if source.model.type != "bert":
        raise KseqError(
            f"model.init.from: {path} holds a {source.model.type} model; expected a bert run"
        )
    tokenizer = load_tokenizer(path)
    table = source.model.max_sequence_length
    if spec.model.max_sequence_length > table:  # also a located spec error (BertSpec.check)
        raise KseqError(
            f"model.max_sequence_length: {spec.model.max_sequence_length} is longer than the "
            f"{table} positions of model.init.from ({path}); at most {table}"
        )
    changed = []
    for name in ADOPTED_FIELDS:
        value = getattr(source.model, name)
        if name == "vocab_size" and value is None:
            value = tokenizer.vocab_size
        if getattr(spec.model, name) != value:
            changed.append(f"{name}={value}")
            setattr(spec.model, name, value)
    if changed:
        bert_data.warn(f"model.init.from: architecture taken from {path}: {', '.join(changed)}")
    if spec.model.max_sequence_length < table:
        bert_data.warn(
            f"model.init.from: a window of {spec.model.max_sequence_length} tokens "
            f"(model.max_sequence_length), the first rows of the checkpoint's {table} positions"
        )
    return {"path": path, "spec": source, "tokenizer": tokenizer}


def _tokenizer(spec, train_examples) -> BertTokenizer:
    options = spec.data.tokenizer
    if options.vocab is not None:
        return BertTokenizer(
            read_vocab(options.vocab),
            lowercase=options.lowercase,
            strip_accents=options.strip_accents,
        )
    texts = bert_head(spec.model.head.type).vocabulary_texts(train_examples)
    return BertTokenizer.learn(
        texts,
        vocab_size=options.vocab_size,
        min_count=options.min_count,
        lowercase=options.lowercase,
        strip_accents=options.strip_accents,
    )


def _check_labels(spec, labels):
    head = spec.model.head
    wanted = getattr(head, "num_classes", None) or getattr(head, "num_tags", None)
    if wanted is not None and wanted != len(labels):
        key = "num_classes" if getattr(head, "num_classes", None) is not None else "num_tags"
        raise KseqError(
            f"model.head.{key} is {wanted} but the training data has {len(labels)} "
            f"label(s): {', '.join(labels[:10])}"
        )
    if len(labels) < 2:
        raise KseqError(f"data: a {head.type} head needs at least 2 labels; found {labels}")


def _sample_rows(encoded, count):
    rows = encoded.take(np.arange(min(count, len(encoded))))
    width = max(1, int(rows.inputs["padding_mask"].sum(axis=1).max()))
    return {k: v[:, :width] for k, v in rows.inputs.items()}


@dataclass
class BertInfo:
    """What a BERT family's prepared data knows besides its datasets: the tokenizer, the
    labels (None for heads without), the `init.from` source, the window, and the held-out data
    (encoded, as examples, and its row count)."""

    tokenizer: Any
    labels: list[str] | None
    init: Any
    sequence_length: int
    validation: Any
    validation_examples: list
    validation_rows: int


class BertFamily(Family):
    """BERT encoders with a classification, tagging, span-QA or masked-LM head."""

    # ---- data ----------------------------------------------------------------------------------
    def load_data(self, spec, run_dir=None, data_file=None) -> PreparedData:
        head = spec.model.head.type
        kind = bert_head(head)
        if run_dir is None and data_file is None and not kind.trains:
            raise KseqError(
                "model.head: type none has no training objective; choose classification, "
                "token_classification, span_qa or masked_lm"
            )
        source = None
        if run_dir is None and spec.model.init.from_ is not None:
            source = _adopt_init(spec)
        streamed = (
            kind.reads_corpus
            and data_file is None
            and spec.data.documents == "lines"
            and streams(spec.data)
        )
        if streamed:  # a sample of the documents: the vocabulary's, the first held-out ones
            wanted = spec.export.calibration_samples if run_dir else spec.data.vocab_sample
            train_examples = stream.first_documents(data_files(spec.data.train), wanted)
            validation_examples = stream.first_documents(
                data_files(spec.data.validation), STREAM_HELD_OUT_DOCUMENTS
            )
        else:
            train_examples, validation_examples = _examples(spec, data_file, run_dir)
        if run_dir is not None:
            tokenizer = load_tokenizer(run_dir)
            labels = load_labels(run_dir)
        else:
            tokenizer = source["tokenizer"] if source else _tokenizer(spec, train_examples)
            labels = kind.label_names(train_examples)
            if labels is not None:
                _check_labels(spec, labels)
        if spec.model.vocab_size is not None and spec.model.vocab_size < tokenizer.vocab_size:
            raise KseqError(
                f"model.vocab_size is {spec.model.vocab_size} but the vocabulary has "
                f"{tokenizer.vocab_size} tokens"
            )
        length = spec.data.sequence_length or spec.model.max_sequence_length
        if run_dir is not None or streamed:
            train_examples = train_examples[: spec.export.calibration_samples]

        # Unanswerable training questions (SQuAD 2.0) make [CLS] the no-answer label everywhere.
        no_answer = kind.no_answer_labels(train_examples, spec.model.head)

        def encode(examples, training=False):
            if not examples:
                raise KseqError("data: no examples")
            return kind.encode_examples(
                examples, tokenizer, labels, length, spec.model.head, training, no_answer
            )

        train = encode(train_examples, training=run_dir is None)
        validation = encode(validation_examples)
        segments = max(int(e.inputs["segment_ids"].max()) for e in (train, validation)) + 1
        if segments > spec.model.num_segments:
            raise KseqError(
                f"data: text pairs need model.num_segments >= 2. "
                f"Received: num_segments={spec.model.num_segments}"
            )
        info = bert_data.tokenizer_info(tokenizer) if kind.takes_mask_positions else None

        counts, files = {}, {}
        if streamed:  # every worker counts its own files' rows: the epoch's length
            workers, index = worker_shard(spec)
            train_files = data_files(spec.data.train)
            files = {
                "train": worker_files(train_files, workers, index, "train"),
                "validation": data_files(spec.data.validation),
            }
            counts = {k: stream.count_rows(f, tokenizer, length) for k, f in files.items()}

        if source is not None:  # a pretrained start, trained now: the field's recipe
            recipe, line = fine_tuning_recipe(spec, counts.get("train", len(train)))
            if recipe is not None:
                spec.train.optimizer = recipe
                bert_data.warn(line)

        def dataset(encoded, shuffle):
            if not streamed:
                return bert_data.make_dataset(
                    encoded,
                    spec.train.batch_size,
                    shuffle=shuffle,
                    seed=spec.train.seed,
                    head=head,
                    head_spec=spec.model.head,
                    tokenizer_info=info,
                )
            key = "train" if shuffle else "validation"
            return stream.stream_rows(
                files[key],
                tokenizer,
                length,
                spec.train.batch_size,
                counts[key],
                shuffle=shuffle,
                seed=spec.train.seed,
                shuffle_buffer=spec.data.shuffle_buffer,
                finish=bert_data.finish_batch(head, spec.model.head, info),
            )

        samples = _sample_rows(validation, spec.export.parity_samples)
        calibration = _sample_rows(train, spec.export.calibration_samples)
        if kind.takes_mask_positions:
            samples = bert_data.fixed_mask_positions(samples, tokenizer, spec.model.head.mask_rate)
            calibration = bert_data.fixed_mask_positions(
                calibration, tokenizer, spec.model.head.mask_rate, seed=1
            )
        return PreparedData(
            train=dataset(train, True),
            validation=dataset(validation, False),
            samples=samples,
            calibration=calibration,
            info=BertInfo(
                tokenizer=tokenizer,
                labels=labels,
                init=source,
                sequence_length=length,
                validation=validation,
                validation_examples=validation_examples,
                validation_rows=counts.get("validation", len(validation)),
            ),
        )

    def activation_length(self, spec) -> int:
        return spec.data.sequence_length or spec.model.max_sequence_length

    def save_assets(self, run_dir: Path, data: PreparedData) -> None:
        directory = assets_dir(run_dir)
        data.info.tokenizer.save(directory)
        if data.info.labels is not None:
            (directory / LABELS_FILE).write_text(
                json.dumps({"labels": data.info.labels}, ensure_ascii=False, indent=2) + "\n",
                encoding="utf-8",
            )

    def saved_tokenizers(self, run_dir: Path) -> dict[str, TextTokenizer]:
        return {"text": load_tokenizer(run_dir)}

    # ---- model ---------------------------------------------------------------------------------
    def build(self, spec, data):
        import keras

        head = spec.model.head
        labels = data.info.labels
        config = BertConfig.from_spec(spec.model, data.info.tokenizer.vocab_size)
        model = build_model(
            config,
            head.type,
            num_labels=len(labels) if labels else None,
            head_dropout=getattr(head, "dropout", None),
            name=re.sub(r"[^A-Za-z0-9_.-]", "_", spec.name) or "bert",
        )
        source = data.info.init
        if source is not None:
            source_model = keras.saving.load_model(
                source["path"] / "model.keras", safe_mode=True, compile=False
            )
            copy_weights(source_model, model, keep_head=spec.model.init.keep_head)
        freeze(model, spec.model.freeze.embeddings, spec.model.freeze.layers)
        return model

    def compile(self, model, spec) -> None:

        kind = bert_head(spec.model.head.type)
        if spec.train.loss not in (None, LOSS):
            raise KseqError(
                f"train.loss: BERT heads train with {LOSS!r} (labels < 0 ignored). "
                f"Received: {spec.train.loss!r}"
            )
        optimizer = make_optimizer(spec.train.optimizer)
        if spec.model.layerwise_lr_decay < 1.0:
            optimizer = with_layer_factors(
                optimizer, learning_rate_factors(model, spec.model.layerwise_lr_decay)
            )
        if not kind.trains:
            model.compile(optimizer=optimizer)
            return
        outputs = kind.outputs
        smoothing = getattr(spec.model.head, "label_smoothing", 0.0)  # classifier heads only
        model.compile(
            optimizer=optimizer,
            loss={name: ignore_index_crossentropy(smoothing) for name in outputs},
            loss_weights={name: 1.0 / len(outputs) for name in outputs},
            metrics={name: [masked_accuracy("accuracy")] for name in outputs},
        )

    # ---- evaluation ----------------------------------------------------------------------------
    def evaluate(self, model, spec, data) -> dict:
        kind = bert_head(spec.model.head.type)
        if not kind.trains:
            raise KseqError("evaluate: a BERT without a head has no task metric")
        metrics = {
            k: float(v)
            for k, v in model.evaluate(data.validation, return_dict=True, verbose=0).items()
        }
        return {**metrics, **kind.task_metrics(model, spec, data.info, metrics)}

    # ---- prediction ----------------------------------------------------------------------------
    def predict(self, model, spec, run_dir, texts, strategy=None, **overrides) -> list[dict]:
        tokenizer, labels = load_tokenizer(run_dir), load_labels(run_dir)
        warn_unknown_input(tokenizer, texts)
        kind = bert_head(spec.model.head.type)
        return kind.predict(model, spec, tokenizer, labels, texts, n_best=overrides.get("n_best"))

    def tokenize(self, run_dir, texts) -> list[list[int]]:

        spec = load_spec(Path(run_dir) / SPEC_FILE)
        tokenizer = load_tokenizer(run_dir)
        length = spec.data.sequence_length or spec.model.max_sequence_length
        out = []
        for text in texts:
            first, _, second = text.partition("\t")
            pair = tokenizer.encode([second])[0] if second else None
            packed = tokenizer.pack(tokenizer.encode([first]), [pair] if pair else None, length)
            out.append(packed["token_ids"][0][packed["padding_mask"][0] > 0].tolist())
        return out

    # ---- export --------------------------------------------------------------------------------
    def custom_ops(self, part: str) -> bool:
        """Whether the TFLite export of `part` needs tensorflow-text custom ops."""
        return part == "with_tokenizer"

    static_lengths = ("sequence_length",)

    def check_export(self, request, spec) -> None:
        # A dynamic export may fix the sequence axis: `endpoints(..., sequence_length=N)`.
        super().check_export(dataclasses.replace(request, sequence_length=None), spec)

    def endpoints(self, model, spec, data, part, static=None, sequence_length: int | None = None):
        """Serving signatures; `sequence_length` fixes the sequence axis (default: dynamic, or
        with `static` its `sequence_length`, else `model.max_sequence_length`)."""

        if static is not None:
            sequence_length = static.sequence_length
            if sequence_length is None:
                sequence_length = spec.model.max_sequence_length
        return bert_endpoints(model, spec, data, part, sequence_length)

    def quality(self, spec, data, part):

        return quality_metric(spec, part)


def copy_weights(source, target, keep_head: bool = False) -> list[str]:
    """Copy the backbone (and, with `keep_head`, a same-type head) layer by layer.

    Returns the names of the layers copied. Shapes must match, except the position table,
    which may be longer in `source`: its first rows (the target's window) are copied.
    """

    names = set(backbone_layer_names(source)) & set(backbone_layer_names(target))
    if keep_head and head_type(source) == head_type(target):
        head_layers = {layer.name for layer in target.layers if layer.weights} - set(
            backbone_layer_names(target)
        )
        names |= head_layers & {layer.name for layer in source.layers}
    copied = []
    for name in sorted(names):
        src, dst = source.get_layer(name), target.get_layer(name)
        weights = src.get_weights()
        if name == "position_embedding" and weights[0].shape[0] > dst.weights[0].shape[0]:
            # The window's rows: all the model ever reads; a smaller table is a smaller model
            # and export, and max_sequence_length means the table's size with or without init.
            weights = [weights[0][: dst.weights[0].shape[0]]]
        shapes = [w.shape for w in weights]
        wanted = [tuple(w.shape) for w in dst.weights]
        if [tuple(s) for s in shapes] != wanted:
            raise KseqError(
                f"model.init.from: layer {name!r} has weight shapes {shapes} in the source run "
                f"but {wanted} here"
            )
        dst.set_weights(weights)
        copied.append(name)
    return copied
