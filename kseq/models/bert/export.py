"""Serving signatures of BERT models (parts `full`, `encoder`, `with_tokenizer`).

Numeric inputs are int32 `token_ids`, `segment_ids`, `padding_mask` `(B, S)` (plus
`mask_positions` `(B, P)` for masked_lm). S is dynamic (up to `model.max_sequence_length`)
unless a fixed `sequence_length` is asked for, in which case S (and P = `max_predictions`) are
static.

- `full` — `serving_default` (SavedModel + builtin-only TFLite):
  classification: `logits`, `probabilities` `(B, C)`; token_classification: `logits`
  `(B, S, T)`; span_qa: `start_logits`, `end_logits` `(B, S)` and the decoded best span
  `answer_start`, `answer_end` `(B,)` int32 (token positions in the packed input) and
  `answer_score` `(B,)`; masked_lm: `logits` `(B, P, V)`; none: `sequence_output` `(B, S, H)`,
  `pooled_output` `(B, H)`.
- `encoder` — `encode`: `sequence_output` [and `pooled_output`].
- `text` — `serving_text` (SavedModel only; not masked_lm): strings in (`text` [and
  `text_pair`], or `question` and `context`), BERT's exact tokenizer in the graph
  (`BertTokenizer.tf_tokenize`), the `full` outputs plus the packed `token_ids`.
- `with_tokenizer` — `with_tokenizer`: like `serving_text` but tokenized with
  FastBertTokenizer, so it converts to TFLite with tensorflow-text custom ops (run it on
  `InterpreterWithCustomOps` with `tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS`).
"""

from __future__ import annotations

import numpy as np

from kseq.errors import KseqError
from kseq.export.endpoints import Endpoint, as_numpy
from kseq.models.bert.data import context_words
from kseq.models.bert.head_registry import bert_head
from kseq.models.bert.network import backbone_of

NUMERIC_INPUTS = ("token_ids", "segment_ids", "padding_mask")


def encoder_agreement(reference: dict, candidate: dict) -> dict:
    """The cosine between the two `sequence_output`s (an encoder has no prediction)."""
    a = np.asarray(reference["sequence_output"], np.float64).ravel()
    b = np.asarray(candidate["sequence_output"], np.float64).ravel()
    return {
        "sequence_output_cosine": float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))
    }


def answer_allowed(segment_ids, padding_mask):
    """(B, S) bool: context tokens (segment 1, real, not the final [SEP]) may hold an answer."""
    from keras import ops

    mask = ops.cast(padding_mask, "int32")
    lengths = ops.sum(mask, axis=1, keepdims=True)  # (B, 1)
    positions = ops.expand_dims(ops.arange(ops.shape(mask)[1], dtype="int32"), 0)  # (1, S)
    context = ops.equal(ops.cast(segment_ids, "int32"), 1)
    return ops.logical_and(
        ops.logical_and(context, ops.equal(mask, 1)), ops.less(positions, lengths - 1)
    )


def serving_outputs(model, spec, inputs: dict) -> dict:
    """The model's outputs plus the head's extras (probabilities, decoded spans)."""
    outputs = dict(model(inputs, training=False))
    kind = bert_head(spec.model.head.type)
    return {**outputs, **kind.serving_extras(outputs, inputs, spec.model.head)}


def _fit_length(samples: dict, length: int | None, positions: int | None, pad_id: int) -> dict:
    """Pad/cut sample arrays to a fixed sequence length (and mask_positions to `positions`)."""
    if length is None:
        return samples
    out = {}
    for key, value in samples.items():
        width = positions if key == "mask_positions" else length
        fill = pad_id if key == "token_ids" else 0
        value = value[:, :width]
        if value.shape[1] < width:
            pad = np.full((len(value), width - value.shape[1]), fill, value.dtype)
            value = np.concatenate([value, pad], axis=1)
        if key == "mask_positions":
            value = np.minimum(value, length - 1)
        out[key] = value
    return out


def _numeric_signature(names, length, positions):
    import tensorflow as tf

    specs = [tf.TensorSpec((None, length), tf.int32, name=name) for name in names]
    if "mask_positions" in names:
        specs[-1] = tf.TensorSpec((None, positions), tf.int32, name="mask_positions")
    return specs


def _text_samples(spec, data, count) -> dict[str, np.ndarray]:
    examples = data.info.validation_examples[:count]
    columns = bert_head(spec.model.head.type).text_columns(examples)
    return {k: np.array([v.encode("utf-8") for v in vs], dtype=object) for k, vs in columns.items()}


def pack_texts(tokenizer, spec, length, texts: dict) -> dict[str, np.ndarray]:
    """Python packing of string inputs exactly as the in-graph text endpoints do it."""
    names = list(texts)
    first = tokenizer.encode(texts[names[0]])
    second = tokenizer.encode(texts[names[1]]) if len(names) > 1 else None
    limit = bert_head(spec.model.head.type).first_text_limit(spec.model.head, length)
    return tokenizer.pack(first, second, length, first_max=limit)


def _text_endpoint(name, model, spec, data, fast: bool, text_names):
    import tensorflow as tf

    tokenizer = data.info.tokenizer
    length = data.info.sequence_length
    tokenize = tokenizer.fast_tokenize if fast else tokenizer.tf_tokenize
    limit = bert_head(spec.model.head.type).first_text_limit(spec.model.head, length)

    def fn(**texts):
        ragged = [tokenize(texts[n]) for n in text_names]
        packed = tokenizer.tf_pack(
            ragged[0], ragged[1] if len(ragged) > 1 else None, length, first_max=limit
        )
        return {**serving_outputs(model, spec, packed), "token_ids": packed["token_ids"]}

    def reference(batch):
        texts = {k: [t.decode("utf-8") for t in np.asarray(v).tolist()] for k, v in batch.items()}
        packed = pack_texts(tokenizer, spec, length, texts)
        outputs = serving_outputs(model, spec, {k: tf.constant(v) for k, v in packed.items()})
        return {**as_numpy(outputs), "token_ids": packed["token_ids"]}

    samples = _text_samples(spec, data, spec.export.parity_samples)
    signature = [tf.TensorSpec((None,), tf.string, name=n) for n in text_names]
    return Endpoint(
        name,
        fn,
        signature,
        reference=reference,
        samples=samples,
        calibration=[
            {k: v[i : i + 1] for k, v in samples.items()}
            for i in range(len(samples[text_names[0]]))
        ],
        tflite=fast,
    )


def bert_endpoints(model, spec, data, part, sequence_length=None) -> list[Endpoint]:

    kind = bert_head(spec.model.head.type)
    tokenizer = data.info.tokenizer
    if sequence_length is not None and not 4 <= sequence_length <= spec.model.max_sequence_length:
        raise KseqError(
            f"--sequence-length must be in 4..{spec.model.max_sequence_length} "
            f"(model.max_sequence_length). Received: {sequence_length}"
        )
    positions = spec.model.head.max_predictions if kind.takes_mask_positions else None
    names = NUMERIC_INPUTS + (("mask_positions",) if kind.takes_mask_positions else ())
    fixed_positions = positions if sequence_length is not None else None
    signature = _numeric_signature(names, sequence_length, fixed_positions)
    samples = _fit_length(data.samples, sequence_length, positions, tokenizer.pad_id)
    calibration_rows = _fit_length(data.calibration, sequence_length, positions, tokenizer.pad_id)
    calibration = [
        {k: v[i : i + 1] for k, v in calibration_rows.items()}
        for i in range(len(calibration_rows["token_ids"]))
    ]
    text_names = tuple(_text_samples(spec, data, 1))

    if part == "encoder":
        encoder = backbone_of(model)
        encoder_names = NUMERIC_INPUTS
        encoder_samples = {k: samples[k] for k in encoder_names}

        def encode(**inputs):
            return dict(encoder(inputs, training=False))

        return [
            Endpoint(
                "encode",
                encode,
                signature[:3],
                samples=encoder_samples,
                calibration=[{k: c[k] for k in encoder_names} for c in calibration],
            )
        ]
    if part in ("text", "with_tokenizer") and not kind.serves_text:
        raise KseqError(f"--part {part} is not available for {kind.name} heads")
    if part == "with_tokenizer":
        return [_text_endpoint("with_tokenizer", model, spec, data, True, text_names)]

    def serve(**inputs):
        return serving_outputs(model, spec, inputs)

    if part == "text":
        return [_text_endpoint("serving_text", model, spec, data, False, text_names)]
    return [
        Endpoint(
            "serving_default",
            serve,
            signature,
            samples=samples,
            calibration=calibration,
        )
    ]


def quality_metric(spec, part):
    """Task agreement between the Keras model and an artifact (reported for quantized exports)."""
    if part == "encoder":
        return encoder_agreement
    return bert_head(spec.model.head.type).agreement


__all__ = [
    "answer_allowed",
    "bert_endpoints",
    "context_words",
    "pack_texts",
    "quality_metric",
    "serving_outputs",
]
