"""`kseq init` for text pairs: per-side tokenizers, lengths, an attention RNN sized to the data.

The anchors are the measured presets: the default spec (20,000 date pairs: 99%+ exact match)
for small data, `g2p_rnn` (CMUdict, 113,000 words: 24% WER in an hour) for large; in between,
the middle.
Decoding is greedy (every export, int8 included, decodes it).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from kseq.data.preflight import LENGTH_SAMPLE, SAMPLE_BYTES
from kseq.init.recipe import epochs_or_budget
from kseq.init.text_facts import TextFacts, text_facts
from kseq.init.yaml_text import Choice
from kseq.models.seq2seq.preflight import sample_pairs

# (most pairs, sizes, batch): the first tier whose bound the data stays under.
TIERS = (
    (10_000, dict(embedding=32, encoder=64, decoder=128, attention=64, dropout=0.0), 32),
    (60_000, dict(embedding=64, encoder=128, decoder=256, attention=128, dropout=0.1), 64),
    (None, dict(embedding=64, encoder=256, decoder=256, attention=256, dropout=0.2), 128),
)
TIER_NAMES = ("small (the default spec's size)", "middle", "large (the g2p_rnn preset's size)")
# Epochs when no time budget is given (early stopping ends sooner on a plateau).
EPOCHS = (40, 24, 16)


def estimated_pairs(path: str, sample: list[tuple[str, str]]) -> int:
    """Pairs in the file: counted when the sample is all of it, else from its size."""
    size = os.path.getsize(path)
    if size <= SAMPLE_BYTES and len(sample) < LENGTH_SAMPLE:
        return len(sample)
    average = sum(len(f"{s}\t{t}\n".encode()) for s, t in sample) / max(1, len(sample))
    return int(size / max(1.0, average))


def _tokenizer(facts: TextFacts) -> Choice:
    value = {"type": facts.kind}
    if facts.vocab_size:
        value["vocab_size"] = facts.vocab_size
    return Choice(value, facts.why)


def _length(facts: TextFacts, noun: str) -> Choice:
    p = facts.lengths
    return Choice(
        "auto",
        f"{noun}: longest {p.longest} tokens, 99th percentile {p.percentile(0.99)} (in the sample)",
    )


def pairs_spec(data: str, validation: str | None, minutes: float | None, where) -> tuple:
    """The spec tree and header lines for a TSV/JSONL file of pairs."""
    sample = sample_pairs(
        data, "fail", LENGTH_SAMPLE
    )  # a bad line: FILE:LINE now, as training would
    count = estimated_pairs(data, sample)
    sources = text_facts([s for s, _ in sample], "sources")
    targets = text_facts([t for _, t in sample], "targets")
    tier = next(i for i, (bound, _, _) in enumerate(TIERS) if bound is None or count < bound)
    _, size, batch = TIERS[tier]
    why_size = f"{count:,} pairs: {TIER_NAMES[tier]}"
    train_pairs = count if validation else int(count * 0.95)
    steps_per_epoch = max(1, math.ceil(train_pairs / batch))
    warmup = min(500, steps_per_epoch)
    encoder = {"cell": "lstm", "units": size["encoder"], "layers": 1, "bidirectional": True}
    decoder = {"cell": "lstm", "units": size["decoder"], "layers": 1}
    if size["dropout"]:
        encoder["dropout"] = decoder["dropout"] = size["dropout"]
    model = {
        "type": Choice("rnn_seq2seq", "attention RNN: ahead of the Transformer on G2P and dates"),
        "embedding_dim": Choice(size["embedding"], why_size),
        "encoder": Choice(encoder, "bidirectional LSTM"),
        "decoder": Choice(decoder),
        "attention": Choice({"type": "bahdanau", "units": size["attention"]}),
    }
    if tier == 2:
        model["label_smoothing"] = Choice(0.1, "as the g2p_rnn preset")
    data_section = {
        "train": Choice(where(data), f"{count:,} pairs"),
    }
    if validation:
        data_section["validation"] = where(validation)
    else:
        data_section["validation_split"] = Choice(0.05, "held out from train")
    data_section |= {
        "source_tokenizer": _tokenizer(sources),
        "target_tokenizer": _tokenizer(targets),
        "max_source_length": _length(sources, "sources"),
        "max_target_length": _length(targets, "targets"),
    }
    train = epochs_or_budget(minutes, EPOCHS[tier]) | {
        "batch_size": Choice(batch, f"{steps_per_epoch:,} steps an epoch"),
        "optimizer": {
            "type": "adamw",
            "learning_rate": 0.002,
            "weight_decay": 0.01,
            "clipnorm": 1.0,
            "schedule": Choice(
                {"type": "warmup_cosine", "warmup_steps": warmup},
                "warmup of at most an epoch, then cosine over the rest of the run",
            ),
        },
        "early_stopping": {"patience": 5 if minutes else 3},
    }
    if tier == 2:
        train["average_checkpoints"] = Choice(3, "as the g2p_rnn preset")
    tree = {
        "name": where.stem(data),
        "model": model,
        "data": data_section,
        "train": train,
        "decode": {"strategy": Choice("greedy", "every export decodes it, int8 included")},
        "export": {"formats": ["saved_model", "tflite"]},
    }
    header = [
        f"Written by `kseq init {Path(data).name}` from {len(sample):,} pairs of {data}.",
        "Each choice names the fact of the data that made it; edit freely.",
    ]
    return tree, header
