"""`kseq init --task classification|tagging|qa|masked_lm`: a BERT encoder with that head.

Sizes follow the example specs (hidden 64-128, 2 layers), which train in minutes here; the window
is the data's (99th percentile of WordPiece-estimated tokens), the vocabulary scaled to its words.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

from kseq.data.lengths import LengthProfile
from kseq.errors import KseqError
from kseq.init.recipe import epochs_or_budget
from kseq.init.yaml_text import Choice
from kseq.models.bert.fine_tuning import WARMUP_SHARE, peak_learning_rate
from kseq.spec.errors import SpecError
from kseq.spec.source import read_spec_file

# WordPiece tokens per whitespace word, for the window before a vocabulary exists (English text
# with a small vocabulary; the window is rounded up anyway).
PIECES_PER_WORD = 1.4
FIELDS = SimpleNamespace(
    text_field="text",
    text_pair_field="text_pair",
    label_field="label",
    tokens_field="tokens",
    tags_field="tags",
    documents="lines",
)


def _window(words_per_example: list[int], extra: int, most: int = 512) -> tuple[int, str]:
    profile = LengthProfile.of(math.ceil(n * PIECES_PER_WORD) + extra for n in words_per_example)
    wanted = profile.percentile(0.99)
    window = min(most, max(32, 16 * math.ceil(wanted / 16)))
    return window, (
        f"99th percentile about {wanted} tokens (longest {profile.longest}), in 16s, 32..{most}"
    )


def _vocabulary(texts: list[str]) -> tuple[int, str]:
    words = Counter(word.lower() for text in texts for word in text.split())
    size = min(8000, max(1000, len(words) // 2))
    return size, f"{len(words):,} distinct words"


def pretrained_facts(run_dir: str) -> tuple[int, int]:
    """(hidden size, position-table rows) of a kseq BERT RUN_DIR (`kseq import hf-bert` or a
    trained run), from its spec.yaml."""
    path = Path(run_dir).expanduser() / "spec.yaml"
    try:
        model = read_spec_file(path).data["model"]
        facts = (model["hidden_size"], model["max_sequence_length"])
        bert = model.get("type") == "bert"
    except (SpecError, OSError, KeyError, TypeError):
        bert = False
    if not bert or not all(isinstance(n, int) and n > 0 for n in facts):
        raise KseqError(
            f"--from {run_dir}: expected a kseq BERT RUN_DIR (from `kseq import hf-bert` or "
            f"`kseq train`); {path} is missing or not a BERT spec"
        )
    return facts


def bert_spec(task: str, data: str, validation, minutes, where, pretrained=None) -> tuple:
    from kseq.models.bert import data as readers  # TensorFlow: only for BERT files

    head: dict = {"type": HEADS[task]}
    facts = ""
    if task == "classification":
        examples = readers.read_classification(data, FIELDS)
        texts = [e["text"] + " " + e.get("text_pair", "") for e in examples]
        labels = Counter(e["label"] for e in examples)
        facts = f"{len(labels)} labels; most common {labels.most_common(1)[0][0]!r}"
        window, why_window = _window([len(t.split()) for t in texts], 3)
    elif task == "tagging":
        examples = readers.read_tagging(data, FIELDS)
        texts = [" ".join(e["tokens"]) for e in examples]
        tags = Counter(tag for e in examples for tag in e["tags"])
        facts = f"{len(tags)} tags"
        window, why_window = _window([len(e["tokens"]) for e in examples], 2)
    elif task == "qa":
        examples = readers.read_squad(data)
        texts = [e["question"] + " " + e["context"] for e in examples]
        window, why_window = _window([len(t.split()) for t in texts], 3, most=384)
        head |= {"max_query_length": 64, "doc_stride": max(16, window // 2)}
        facts = f"{sum(1 for e in examples if e['answers']):,} answerable questions"
    else:
        examples = readers.read_documents(data, FIELDS)
        texts = examples
        window, why_window = _window([len(t.split()) for t in texts], 2, most=128)
        head |= {"mask_rate": 0.15, "whole_word": True}
    if pretrained is not None:
        return _fine_tuning_spec(
            task, data, validation, minutes, where, pretrained, head, window, why_window, examples
        )
    vocab_size, why_vocab = _vocabulary(texts)
    large = len(examples) >= 10_000
    train = epochs_or_budget(minutes, 10) | {
        "batch_size": 32,
        "optimizer": {
            "type": "adamw",
            "learning_rate": 0.002,
            "schedule": Choice(
                {"type": "warmup_linear", "warmup_steps": max(10, len(examples) // 320)},
                "warmup for about a tenth of an epoch, then linear decay",
            ),
        },
        "early_stopping": {"patience": 3},
    }
    data_section = _data_section(
        where, data, validation, f"{len(examples):,} examples; {facts}".strip()
    )
    data_section["tokenizer"] = Choice({"vocab_size": vocab_size}, why_vocab)
    architecture = {
        "hidden_size": Choice(128 if large else 64, f"{len(examples):,} examples"),
        "num_layers": 2,
        "num_heads": 4,
        "intermediate_size": 256 if large else 128,
    }
    tree = _tree(where.stem(data), architecture, (window, why_window), head, task)
    tree |= {"data": data_section, "train": train}
    return tree, [f"Written by `kseq init --task {task}` from {data}."]


def _fine_tuning_spec(
    task, data, validation, minutes, where, pretrained, head, window, why_window, examples
) -> tuple:
    """A spec that fine-tunes the `--from` checkpoint: its architecture and tokenizer, the
    data's window up to its position table, and the fine-tuning recipe written out (the same
    one `kseq train` applies to `model.init.from` without a schedule)."""
    hidden, table = pretrained_facts(pretrained)
    if window > table:
        window, why_window = table, f"{why_window}; at most the checkpoint's {table} positions"
    if "doc_stride" in head:
        head["doc_stride"] = max(16, window // 2)
    rate = peak_learning_rate(hidden)
    train = epochs_or_budget(minutes, 3) | {
        "batch_size": 32,
        "optimizer": {
            "type": "adamw",
            "learning_rate": Choice(rate, f"fine-tuning peak for the checkpoint's width {hidden}"),
            "schedule": Choice(
                {"type": "warmup_linear", "warmup_fraction": WARMUP_SHARE},
                "the fine-tuning recipe: warmup over a tenth of the steps, linear decay to 0",
            ),
        },
    }
    if not minutes:
        train["epochs"] = Choice(3, "fine-tuning: a pretrained encoder needs 2-4 epochs")
    data_section = _data_section(where, data, validation, f"{len(examples):,} examples")
    start = {
        "init": Choice(
            {"from": pretrained},
            "architecture and tokenizer from this run (relative to the working directory)",
        )
    }
    tree = _tree(where.stem(data), start, (window, why_window), head, task)
    tree |= {"data": data_section, "train": train}
    return tree, [f"Written by `kseq init --task {task} --from {pretrained}` from {data}."]


def _data_section(where, data, validation, facts: str) -> dict:
    section = {"train": Choice(where(data), facts)}
    if validation:
        section["validation"] = where(validation)
    return section


def _tree(name: str, model: dict, window: tuple, head: dict, task: str) -> dict:
    """The spec's name and model (`model`'s fields, then the window and the head); the caller
    adds data and train. Exports: SavedModel and TFLite."""
    return {
        "name": name,
        "model": {
            "type": "bert",
            **model,
            "max_sequence_length": Choice(*window),
            "dropout": 0.1,
            "head": Choice(head, f"--task {task}"),
        },
        "data": None,
        "train": None,
        "export": {"formats": ["saved_model", "tflite"]},
    }


HEADS = {
    "classification": "classification",
    "tagging": "token_classification",
    "qa": "span_qa",
    "masked_lm": "masked_lm",
}
