"""BERT task data: readers, WordPiece encoding per head, tf.data pipelines and MLM masking.

Examples (plain Python) per head:
- classification: `{"text", ["text_pair"], "label"}`;
- token_classification: `{"tokens": [...], "tags": [...]}`;
- span_qa: SQuAD entries `{"id", "question", "context", "answers": [{"text", "answer_start"}]}`;
- masked_lm / none: document strings.

`encode_examples` turns them into padded int32 arrays (`token_ids`, `segment_ids`,
`padding_mask`, `(N, L)` with L the longest row) and targets (labels `< 0` are ignored by the
loss). `make_dataset` batches them, trims each batch to its longest row and — for masked_lm —
masks tokens on the fly in the tf.data graph (`mask_tokens`, dense TensorFlow ops, so tracing
and iterator start-up stay fast): `mask_rate` of the selectable tokens (not [CLS]/[SEP]/[PAD])
per sequence, rounded up and capped at `max_predictions`, are predicted; of those
`mask_token_rate` become [MASK], `random_token_rate` a random token, the rest stay; with
`whole_word` the pieces of a word are selected together (the rate then counts words).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kseq.data.files import read_text, text_lines
from kseq.errors import KseqError
from kseq.models.bert.head_registry import bert_head
from kseq.tokenizers.bert import PACKED_KEYS, BertTokenizer, pack_one

IGNORE = -1


# --------------------------------------------------------------------------------------------------
# readers


def _fail(path, line, message):
    raise KseqError(f"{path}:{line}: {message}")


def _has_lone_surrogate(value) -> bool:
    """True if a string in the parsed JSON `value` holds an unpaired `\\ud800`-style escape."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _parse_json(text: str):
    """`json.loads`, raising ValueError (JSONDecodeError as it is) for anything a bad file can
    cause: too deep nesting, integers too long to convert, unpaired surrogates."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if _has_lone_surrogate(value):
        raise ValueError("a string holds an unpaired surrogate escape (\\ud800-\\udfff)")
    return value


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    rows = []
    for number, line in enumerate(text_lines(read_text(path)), 1):
        if not line.strip():
            continue
        try:
            row = _parse_json(line)
        except json.JSONDecodeError as e:
            _fail(path, number, f"not valid JSON: {e.msg}")
        except ValueError as e:
            _fail(path, number, f"not valid JSON: {e}")
        if not isinstance(row, dict):
            _fail(path, number, "expected a JSON object per line")
        rows.append((number, row))
    return rows


def _tsv_rows(path: Path) -> list[list[str]]:
    reader = csv.reader(
        io.StringIO(read_text(path), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE
    )
    try:
        return list(reader)
    except csv.Error as e:
        _fail(path, reader.line_num, str(e))


def read_classification(path: str, data) -> list[dict]:
    path = Path(path)
    out = []
    if path.suffix == ".jsonl":
        for number, row in _read_jsonl(path):
            if data.text_field not in row or data.label_field not in row:
                _fail(path, number, f"needs keys {data.text_field!r} and {data.label_field!r}")
            example = {"text": str(row[data.text_field]), "label": str(row[data.label_field])}
            if row.get(data.text_pair_field) is not None:
                example["text_pair"] = str(row[data.text_pair_field])
            out.append(example)
        return out
    for number, row in enumerate(_tsv_rows(path), 1):
        if not row or not "".join(row).strip():
            continue
        if number == 1 and row[-1].strip().lower() == "label":
            continue  # header
        if len(row) == 2:
            out.append({"text": row[0], "label": row[1].strip()})
        elif len(row) == 3:
            out.append({"text": row[0], "text_pair": row[1], "label": row[2].strip()})
        else:
            _fail(path, number, f"expected text<TAB>label or 3 columns; found {len(row)} columns")
    pairs = {"text_pair" in e for e in out}
    if len(pairs) > 1:
        raise KseqError(f"{path}: mixes single texts and text pairs")
    return out


def read_tagging(path: str, data) -> list[dict]:
    path = Path(path)
    out = []
    if path.suffix == ".jsonl":
        for number, row in _read_jsonl(path):
            tokens, tags = row.get(data.tokens_field), row.get(data.tags_field)
            if not isinstance(tokens, list) or not isinstance(tags, list):
                _fail(path, number, f"needs lists {data.tokens_field!r} and {data.tags_field!r}")
            if len(tokens) != len(tags):
                _fail(path, number, f"{len(tokens)} tokens but {len(tags)} tags")
            out.append({"tokens": [str(t) for t in tokens], "tags": [str(t) for t in tags]})
        return out
    tokens, tags = [], []
    for number, line in enumerate(text_lines(read_text(path)), 1):
        line = line.rstrip("\n").rstrip("\r")
        if not line.strip():
            if tokens:
                out.append({"tokens": tokens, "tags": tags})
            tokens, tags = [], []
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            _fail(path, number, "expected token<TAB>tag (blank line between sentences)")
        tokens.append(parts[0])
        tags.append(parts[-1].strip())
    if tokens:
        out.append({"tokens": tokens, "tags": tags})
    return out


SQUAD_LAYOUT = "expected SQuAD JSON (data -> paragraphs -> context, qas)"


def _string(value, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, found {type(value).__name__}")
    return value


def read_squad(path: str, data=None) -> list[dict]:
    path = Path(path)
    try:
        document = _parse_json(read_text(path))
    except ValueError as e:
        raise KseqError(f"{path}: not valid SQuAD JSON: {e}") from None
    out = []
    try:
        for article in document["data"]:
            for paragraph in article["paragraphs"]:
                context = _string(paragraph["context"], "context")
                for qa in paragraph["qas"]:
                    # SQuAD 2.0: an unanswerable question has `is_impossible` or no answers.
                    answers = [
                        {
                            "text": _string(a["text"], "answer text"),
                            "answer_start": int(a["answer_start"]),
                        }
                        for a in qa.get("answers", [])
                    ]
                    if qa.get("is_impossible"):
                        answers = []
                    out.append(
                        {
                            "id": str(qa.get("id", len(out))),
                            "question": _string(qa["question"], "question"),
                            "context": context,
                            "answers": answers,
                        }
                    )
    except KeyError as e:
        raise KseqError(f"{path}: {SQUAD_LAYOUT}; missing {e}") from None
    except (TypeError, AttributeError, ValueError, OverflowError) as e:  # a wrong type or value
        raise KseqError(f"{path}: {SQUAD_LAYOUT}; {e}") from None
    return out


def read_documents(path: str, data) -> list[str]:
    text = read_text(path)
    if data is not None and data.documents == "paragraphs":
        blocks, current = [], []
        for line in text.splitlines():
            if line.strip():
                current.append(line.strip())
            elif current:
                blocks.append(" ".join(current))
                current = []
        if current:
            blocks.append(" ".join(current))
        return blocks
    return [line.strip() for line in text.splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------------
# encoding


@dataclass
class Encoded:
    """Padded model inputs, targets and per-example facts for evaluation/prediction."""

    inputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    meta: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.inputs["token_ids"])

    def take(self, rows) -> Encoded:
        rows = np.asarray(rows)
        return Encoded(
            {k: v[rows] for k, v in self.inputs.items()},
            {k: v[rows] for k, v in self.targets.items()},
            [self.meta[i] for i in rows] if self.meta else [],
        )


def _pad_rows(rows: list[list[int]], width: int, value: int) -> np.ndarray:
    out = np.full((len(rows), width), value, np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def packed_arrays(rows, tokenizer, width=None):
    """rows: (ids, segments) -> the three input arrays, padded to the longest (or `width`)."""
    width = width or max((len(ids) for ids, _ in rows), default=1)
    ids = _pad_rows([r[0] for r in rows], width, tokenizer.pad_id)
    segments = _pad_rows([r[1] for r in rows], width, 0)
    mask = _pad_rows([[1] * len(r[0]) for r in rows], width, 0)
    return {"token_ids": ids, "segment_ids": segments, "padding_mask": mask}


def encode_classification(examples, tokenizer, labels, length) -> Encoded:
    index = {name: i for i, name in enumerate(labels)}
    firsts = tokenizer.encode([e["text"] for e in examples])
    pairs = "text_pair" in examples[0] if examples else False
    seconds = tokenizer.encode([e["text_pair"] for e in examples]) if pairs else None
    rows = [
        pack_one(a, None if seconds is None else seconds[i], length, tokenizer)
        for i, a in enumerate(firsts)
    ]
    targets = np.array([index.get(e["label"], IGNORE) for e in examples], np.int32)
    return Encoded(packed_arrays(rows, tokenizer), {"logits": targets})


def encode_tagging(examples, tokenizer, tags, length) -> Encoded:
    index = {name: i for i, name in enumerate(tags)}
    rows, targets, meta = [], [], []
    for example in examples:
        ids, owners = tokenizer.encode_words(example["tokens"])
        ids, owners = ids[: length - 2], owners[: length - 2]
        labels = [IGNORE]
        first_piece = []
        previous = -1
        for position, owner in enumerate(owners, start=1):
            if owner != previous:
                labels.append(index.get(example["tags"][owner], IGNORE))
                first_piece.append((owner, position))
            else:
                labels.append(IGNORE)
            previous = owner
        labels.append(IGNORE)
        rows.append(([tokenizer.cls_id, *ids, tokenizer.sep_id], [0] * (len(ids) + 2)))
        targets.append(labels)
        meta.append({"tokens": example["tokens"], "first_piece": first_piece})
    inputs = packed_arrays(rows, tokenizer)
    return Encoded(
        inputs, {"logits": _pad_rows(targets, inputs["token_ids"].shape[1], IGNORE)}, meta
    )


def context_words(context: str) -> list[tuple[str, int, int]]:
    """Whitespace-separated words of a context with their [start, end) character offsets."""
    words, start = [], None
    for i, ch in enumerate(context):
        if ch.isspace():
            if start is not None:
                words.append((context[start:i], start, i))
                start = None
        elif start is None:
            start = i
    if start is not None:
        words.append((context[start:], start, len(context)))
    return words


def improve_span(pieces, start, end, answer_ids):
    """BERT's `_improve_answer_span`: the tightest sub-span equal to the tokenized answer."""
    for new_start in range(start, end + 1):
        for new_end in range(end, new_start - 1, -1):
            if pieces[new_start : new_end + 1] == answer_ids:
                return new_start, new_end
    return start, end


def encode_documents(documents, tokenizer, length) -> Encoded:
    """Each document split into `[CLS] chunk [SEP]` rows of at most `length` tokens."""
    rows = []
    for ids in tokenizer.encode(list(documents)):
        for start in range(0, len(ids), length - 2):
            chunk = ids[start : start + length - 2]
            rows.append(([tokenizer.cls_id, *chunk, tokenizer.sep_id], [0] * (len(chunk) + 2)))
    if not rows:
        raise KseqError("data: no text to train on (every document is empty)")
    return Encoded(packed_arrays(rows, tokenizer), {})


def fixed_mask_positions(inputs, tokenizer, rate=0.15, seed=0):
    """Deterministic masked-LM inputs for parity samples: [MASK] at `rate` of the real tokens."""
    rng = np.random.default_rng(seed)
    ids = inputs["token_ids"].copy()
    special = np.isin(ids, tokenizer.special_ids()) | (inputs["padding_mask"] == 0)
    positions = []
    for row in range(len(ids)):
        candidates = np.flatnonzero(~special[row])
        count = max(1, int(np.ceil(len(candidates) * rate))) if len(candidates) else 0
        chosen = np.sort(rng.choice(candidates, count, replace=False)) if count else []
        ids[row, chosen] = tokenizer.mask_id
        positions.append(list(chosen) or [0])
    width = max(len(p) for p in positions)
    return {**inputs, "token_ids": ids, "mask_positions": _pad_rows(positions, width, 0)}


# --------------------------------------------------------------------------------------------------
# tf.data


def mask_tokens(token_ids, padding_mask, tokenizer_info: dict, head_spec):
    """Masked-LM corruption of a `(B, L)` batch, with dense TensorFlow ops (no ragged/map_fn).

    Per sequence, `ceil(mask_rate x units)` units (capped at `max_predictions`) are chosen at
    random among the selectable ones (real tokens other than [CLS]/[SEP]/[PAD]/...), where a
    unit is a token, or a whole word (a piece plus its `##` continuations) with `whole_word`.
    Each chosen token becomes [MASK] with probability `mask_token_rate`, a uniformly random
    token with `random_token_rate`, and stays unchanged otherwise (BERT's 80/10/10).

    Returns:
        `(masked token_ids (B, L), mask_positions (B, P), labels (B, P))`; unused prediction
        slots have position 0 and label -1. P is the most predictions of any row in the batch.
    """
    import tensorflow as tf

    ids = tf.cast(token_ids, tf.int32)
    shape = tf.shape(ids)
    length = shape[1]
    special = tf.reduce_any(
        tf.equal(tf.expand_dims(ids, -1), tf.constant(tokenizer_info["special_ids"], tf.int32)),
        axis=-1,
    )
    selectable = tf.logical_and(tf.cast(padding_mask, tf.bool), tf.logical_not(special))
    positions = tf.range(length)
    if head_spec.whole_word:
        continuation = tf.gather(tf.constant(tokenizer_info["continuation"]), ids)
        starts = tf.logical_and(selectable, tf.logical_not(continuation))
        # A continuation piece belongs to the unit of the nearest start on its left.
        start_index = tf.where(starts, tf.expand_dims(positions, 0), -1)  # (B, L)
        left = tf.expand_dims(positions, 1) >= tf.expand_dims(positions, 0)  # (L, L): j <= i
        owner = tf.reduce_max(
            tf.where(left, tf.expand_dims(start_index, 1), -1), axis=2
        )  # (B, L): position of each token's word start (-1: none yet)
        selectable = tf.logical_and(selectable, owner >= 0)
        unit_start = starts
    else:
        owner = tf.broadcast_to(tf.expand_dims(positions, 0), shape)
        unit_start = selectable
    units = tf.reduce_sum(tf.cast(unit_start, tf.float32), axis=1)  # (B,)
    count = tf.minimum(tf.math.ceil(units * head_spec.mask_rate), head_spec.max_predictions)
    scores = tf.random.uniform(shape)  # a random key per unit start
    scores = tf.where(unit_start, scores, 2.0)
    # Rank of each unit among the row's units (0 = smallest key): chosen when rank < count.
    smaller = tf.less(tf.expand_dims(scores, 1), tf.expand_dims(scores, 2))  # (B, L, L)
    rank = tf.reduce_sum(tf.cast(smaller, tf.float32), axis=2)  # (B, L)
    chosen_unit = tf.logical_and(unit_start, rank < tf.expand_dims(count, 1))
    chosen = tf.logical_and(
        selectable, tf.gather(chosen_unit, tf.maximum(owner, 0), batch_dims=1)
    )  # (B, L)
    draw = tf.random.uniform(shape)
    use_mask = tf.logical_and(chosen, draw < head_spec.mask_token_rate)
    use_random = tf.logical_and(
        chosen,
        tf.logical_and(
            draw >= head_spec.mask_token_rate,
            draw < head_spec.mask_token_rate + head_spec.random_token_rate,
        ),
    )
    random_ids = tf.random.uniform(shape, 0, tokenizer_info["vocab_size"], dtype=tf.int32)
    masked = tf.where(use_mask, tokenizer_info["mask_id"], tf.where(use_random, random_ids, ids))
    # Chosen positions first (in order), then the rest: the first P columns are the targets.
    key = tf.where(chosen, positions, positions + length)
    order = tf.sort(key, axis=1)
    chosen_count = tf.reduce_sum(tf.cast(chosen, tf.int32), axis=1)
    width = tf.maximum(tf.reduce_max(chosen_count), 1)
    order = order[:, :width]
    valid = tf.expand_dims(tf.range(width), 0) < tf.expand_dims(chosen_count, 1)
    mask_positions = tf.where(valid, order, 0)
    labels = tf.where(valid, tf.gather(ids, mask_positions, batch_dims=1), IGNORE)
    return tf.cast(masked, token_ids.dtype), mask_positions, labels


def make_dataset(
    encoded: Encoded,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    head: str,
    head_spec=None,
    tokenizer_info: dict | None = None,
):
    """Batches of `(inputs, targets)`, each batch trimmed to its longest row."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((encoded.inputs, encoded.targets))
    if shuffle:
        dataset = dataset.shuffle(len(encoded), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    finish = finish_batch(head, head_spec, tokenizer_info)
    return dataset.map(finish, num_parallel_calls=1, deterministic=True).prefetch(2)


def finish_batch(head: str, head_spec=None, tokenizer_info: dict | None = None):
    """The function a batch of rows goes through: trimmed to its longest row, and masked for
    masked_lm (streamed batches too)."""
    import tensorflow as tf

    kind = bert_head(head)
    sequence_targets, masks_tokens = kind.sequence_targets, kind.takes_mask_positions

    def trim(inputs, targets):
        width = tf.maximum(tf.reduce_max(tf.reduce_sum(inputs["padding_mask"], axis=1)), 1)
        inputs = {k: v[:, :width] for k, v in inputs.items()}
        if sequence_targets:
            targets = {k: v[:, :width] for k, v in targets.items()}
        if masks_tokens:
            ids, positions, labels = mask_tokens(
                inputs["token_ids"], inputs["padding_mask"], tokenizer_info, head_spec
            )
            inputs = {**inputs, "token_ids": ids, "mask_positions": positions}
            targets = {"logits": labels}
        return inputs, targets

    # No autograph: `trim` has no data-dependent Python control flow, and converting the
    # tensorflow-text masking code costs seconds per dataset.
    return tf.autograph.experimental.do_not_convert(trim)


def tokenizer_info(tokenizer: BertTokenizer) -> dict:
    """The plain facts the masking pipeline needs (kept out of the tf.data closure's tokenizer)."""
    return {
        "special_ids": tokenizer.special_ids(),
        "vocab_size": tokenizer.vocab_size,
        "mask_id": tokenizer.mask_id,
        "pad_id": tokenizer.pad_id,
        "continuation": tokenizer.continuation_flags(),
    }


def warn(message: str) -> None:
    print(f"kseq: {message}", file=sys.stderr)


__all__ = [
    "IGNORE",
    "PACKED_KEYS",
    "Encoded",
    "fixed_mask_positions",
    "make_dataset",
    "mask_tokens",
    "read_classification",
    "read_documents",
    "read_squad",
    "read_tagging",
    "tokenizer_info",
]
