"""Serving signatures of the sequence-to-sequence families.

- `generate` (SavedModel + TFLite): source_ids (B, S) int32, 0-padded -> target_ids
  (B, max_target_length) int32, 0 after eos — the whole decode loop in the graph (greedy, or
  the best beam when `decode.strategy: beam`).
- `encode` / `decode_step` (SavedModel + TFLite): for apps that run their own loop. encode
  returns the encoder results and the decoder's first `state_*`; decode_step takes `token_ids`
  (B,), the loop state as `state_*` and the encoder results as `encoded_*`, and returns `logits`,
  `attention` and the next `state_*`.
- `translate` (SavedModel only): strings in, strings out, tokenisation inside the graph.
- `generate_codepoints` (both, when both sides use the `char` tokenizer): int32 Unicode code
  points (B, S), 0-padded -> code points (B, max_target_length), 0 after the end; the
  vocabularies are tables inside the graph, so an app needs no tokenizer.

A `--static` export holds `encode` and `decode_step` only, every shape fixed and no loop
(`kseq.models.seq2seq.static`). int8 files are calibrated by `Seq2SeqCalibration`.
"""

from __future__ import annotations

import numpy as np

from kseq.data.codepoints import REPLACEMENT, CodePointMap
from kseq.decoding.scopes import BEAM_BOOKKEEPING
from kseq.errors import KseqError
from kseq.export.endpoints import Endpoint, as_numpy
from kseq.models.seq2seq.calibration import Seq2SeqCalibration
from kseq.models.seq2seq.ensemble import EnsembleGraph
from kseq.models.seq2seq.pairs import pad_ids
from kseq.spec.common import SEQ2SEQ_INT8_ADVICE, SEQ2SEQ_INT8_REFUSAL
from kseq.tokenizers.special_tokens import BOS_ID, EOS_ID, PAD_ID, UNK_ID


def _dynamic_specs(prefix: str, short: dict, long: dict):
    """TensorSpecs with the batch and every length-dependent dimension left dynamic."""
    import tensorflow as tf

    specs = []
    for key in sorted(short):
        a, b = short[key].shape, long[key].shape
        shape = [None] + [None if x != y else x for x, y in zip(a[1:], b[1:], strict=True)]
        specs.append(tf.TensorSpec(shape, tf.as_dtype(short[key].dtype), name=f"{prefix}{key}"))
    return specs


def _model_source(ids, max_source: int):
    """Padded source ids as an app may send them -> what the model was trained on: cut to
    `max_source_length`, at least one column, and an empty row read as one `<unk>`."""
    import tensorflow as tf

    ids = ids[:, :max_source]
    ids = tf.pad(ids, [[0, 0], [0, 1]])[:, : tf.maximum(tf.shape(ids)[1], 1)]
    return tf.where(tf.reduce_any(ids > 0, axis=1, keepdims=True), ids, tf.ones_like(ids))


def own_tensor(tensor, index: int = 0):
    """`tensor`, copied into a tensor of its own by an op that changes no value: a max against
    a floor below any real value, the `index`-th floor of its type.

    LiteRT's CompiledModel binds the app's buffers to a signature's outputs, which fails for an
    output that is also an input (a state passed through unchanged: it reads the output buffer's
    zeros) or one the WHILE kernel allocates itself (the decode loop's result: zeros come back).
    The converter drops identities, but not a max against the type's lowest value; and it merges
    equal computations, so copies that must stay apart (one tensor under two names, the equal
    zero states of an ensemble's members) take different `index`es.
    """
    import tensorflow as tf

    if not 0 <= index < MAX_COPIES:
        raise ValueError(f"a copy index is 0 to {MAX_COPIES - 1}, got {index}")
    lowest = tensor.dtype.min
    floor = lowest + index if tensor.dtype.is_integer else lowest * (1 - index / MAX_COPIES)
    return tf.maximum(tensor, tf.constant(floor, tensor.dtype))


# Distinct floors: float16's lowest values are 32 apart, 1/1024 of its range is 64.
MAX_COPIES = 1024


def _distinct(outputs: dict, more: dict, *inputs, copy_all: bool = False) -> dict:
    """`outputs` and `more` as one dict in which no tensor is another output or an input.

    A tensor needed under several names gets a copy per name, each against its own floor:
    copies alike would be one op to the converter, which merges them back together (so would
    equal zero states computed apart). `copy_all` copies every tensor of `more` (a first
    decoder state is often a FILL with a run-time shape, which CompiledModel cannot bind
    either).
    """
    merged, copies = dict(outputs), 0
    for key, value in more.items():
        if copy_all or any(value is other for other in (*merged.values(), *inputs)):
            copies += 1
            value = own_tensor(value, copies)
        merged[key] = value
    return merged


def _generate_outputs(result: dict) -> dict:
    ids = result["target_ids"]
    if len(ids.shape) == 3:  # beam search: (B, n_best, L) -> the best hypothesis
        ids = ids[:, 0]
    return {"target_ids": own_tensor(ids)}


def encode_fn(graph):
    def encode(source_ids):
        # The decoder's first state too, so an app's own loop needs nothing but the two files'
        # signatures: `encoded_*` <- the other outputs, `state_*` <- these, then decode_step.
        encoded = graph.encode(source_ids)
        state = graph.initial_state(encoded)
        state = {f"state_{k}": v for k, v in state.items()}
        return _distinct(encoded, state, source_ids, copy_all=True)

    return encode


def decode_step_fn(graph):
    def decode_step(token_ids, **inputs):
        encoded_in = {
            k[len("encoded_") :]: v for k, v in inputs.items() if k.startswith("encoded_")
        }
        state_in = {k[len("state_") :]: v for k, v in inputs.items() if k.startswith("state_")}
        logits, new_state, attention = graph.step(token_ids, state_in, encoded_in)
        return _distinct(
            {"logits": logits, "attention": attention},
            {f"state_{k}": v for k, v in new_state.items()},
            token_ids,
            *inputs.values(),
        )

    return decode_step


def decode_step_endpoint(
    graph, step_spec, step_samples, calibration, tflite: bool = True
) -> Endpoint:
    """`decode_step`: one decoder step from explicit inputs (a token, encoder results, state)."""
    decode_step = decode_step_fn(graph)
    return Endpoint(
        "decode_step",
        decode_step,
        step_spec,
        samples=step_samples,
        calibration=calibration.steps,
        tflite=tflite,
    )


def first_step_inputs(encoded: dict, state: dict) -> dict:
    """decode_step's inputs at the first step: bos, the encoder results, the first state."""
    rows = len(next(iter(encoded.values())))
    return {
        "token_ids": np.full((rows,), BOS_ID, np.int32),
        **{f"encoded_{k}": v for k, v in encoded.items()},
        **{f"state_{k}": v for k, v in state.items()},
    }


def refuse_int8(spec) -> None:
    """int8 `generate` decodes greedily or with beam search (its bookkeeping kept in float)."""
    if spec.export.quantize == "int8" and spec.decode.strategy == "sampling":
        raise KseqError(
            f"--quantize int8: {SEQ2SEQ_INT8_REFUSAL}; set {SEQ2SEQ_INT8_ADVICE}, or use "
            "--quantize dynamic or float16"
        )


def seq2seq_endpoints(family, model, spec, data) -> list[Endpoint]:
    """The signatures above (fixed-size ones: `kseq.models.seq2seq.static`)."""
    import tensorflow as tf

    refuse_int8(spec)
    graph = family.graph(model)
    # An ensemble's encoders side by side: LiteRT's CompiledModel cannot run such an `encode`
    # at fewer rows than an earlier call (measured: "Custom allocation is too small"), while
    # its `generate` runs on both APIs; the app-loop signatures stay in the SavedModel.
    app_loop_in_tflite = not isinstance(graph, EnsembleGraph)
    calibration = Seq2SeqCalibration(
        graph,
        data.calibration["source_ids"],
        data.calibration["target_ids"],
        spec.data.max_source_length,
    )
    tokenizers = data.info.tokenizers
    all_sources = data.samples["source_ids"]
    samples = all_sources[: spec.export.parity_samples]
    samples = samples[:, : max(1, int((samples > 0).sum(axis=1).max()))]  # drop all-pad columns
    source_spec = [tf.TensorSpec((None, None), tf.int32, name="source_ids")]
    decode = family.decoder_fn(model, spec, "beam" if spec.decode.strategy == "beam" else "greedy")

    def generate(source_ids):
        return _generate_outputs(decode(source_ids))

    encode = encode_fn(graph)

    encoded_short = as_numpy(graph.encode(tf.constant(samples[:, :1])))
    encoded = as_numpy(graph.encode(tf.constant(samples)))
    state = as_numpy(graph.initial_state({k: tf.constant(v) for k, v in encoded.items()}))
    state_short = as_numpy(
        graph.initial_state({k: tf.constant(v) for k, v in encoded_short.items()})
    )
    encoded_specs = _dynamic_specs("encoded_", encoded_short, encoded)
    state_specs = _dynamic_specs("state_", state_short, state)

    step_samples = first_step_inputs(encoded, state)
    step_spec = [tf.TensorSpec((None,), tf.int32, name="token_ids"), *encoded_specs, *state_specs]

    max_source = spec.data.max_source_length

    def translate(text):
        ragged = tokenizers.source.tf_tokenize(text)
        ids = _model_source(tf.cast(ragged.to_tensor(default_value=0), tf.int32), max_source)
        return {"translation": tokenizers.target.tf_detokenize(generate(ids)["target_ids"])}

    texts = [s for s, _ in data.info.validation_pairs[: len(samples)]]

    def translate_reference(inputs):
        decoded = [t.decode("utf-8") for t in np.asarray(inputs["text"]).tolist()]
        rows = family.predict(model, spec, None, decoded, tokenizers=tokenizers)
        return {"translation": np.array([r["output"].encode("utf-8") for r in rows], dtype=object)}

    def on_sources(name, fn, rows, **options) -> Endpoint:
        """An endpoint of `source_ids` rows, int8-calibrated on training sources."""
        samples = {"source_ids": rows}
        return Endpoint(name, fn, source_spec, samples, calibration=calibration.sources, **options)

    endpoints = [
        on_sources(
            "generate",
            generate,
            all_sources,
            exact=True,
            # Beam search ranks running log-probabilities int8 cannot hold (0% exact match on
            # the date model when all of it was int8); its bookkeeping stays float.
            float_scopes=(BEAM_BOOKKEEPING,) if spec.decode.strategy == "beam" else (),
        ),
        on_sources("encode", encode, samples, tflite=app_loop_in_tflite),
        decode_step_endpoint(graph, step_spec, step_samples, calibration, app_loop_in_tflite),
        Endpoint(
            "translate",
            translate,
            [tf.TensorSpec((None,), tf.string, name="text")],
            reference=translate_reference,
            samples={"text": np.array([t.encode("utf-8") for t in texts], dtype=object)},
            tflite=False,
            exact=True,
        ),
    ]
    if all(CodePointMap.supports(t) for t in (tokenizers.source, tokenizers.target)):
        endpoints.append(_code_point_endpoint(tokenizers, generate, texts, max_source, calibration))
    return endpoints


def _code_point_endpoint(tokenizers, generate, texts, max_source, calibration) -> Endpoint:
    """`generate_codepoints`: Unicode code points in and out, the vocabularies inside the file."""
    import tensorflow as tf

    source_map = CodePointMap(tokenizers.source.vocab)
    target_map = CodePointMap(tokenizers.target.vocab)

    def generate_codepoints(codepoints):
        ids = _model_source(source_map.to_ids(codepoints), max_source)
        return {"target_codepoints": target_map.to_code_points(generate(ids)["target_ids"])}

    def reference(inputs):
        # Independently of the tables: the Python tokenizer, Keras decoding, the vocabulary list.

        texts = ["".join(chr(c) for c in row if c > 0) for row in inputs["codepoints"].tolist()]
        rows = [ids[:max_source] or [UNK_ID] for ids in tokenizers.source.encode(texts)]
        target_ids = np.asarray(generate(tf.constant(pad_ids(rows)))["target_ids"])
        vocab = tokenizers.target.vocab
        written = {PAD_ID: 0, UNK_ID: REPLACEMENT, BOS_ID: 0, EOS_ID: 0}
        points = [
            [written[i] if i in written else ord(vocab[i]) for i in row]
            for row in target_ids.tolist()
        ]
        return {"target_codepoints": np.array(points, np.int32).reshape(target_ids.shape)}

    samples = source_map.encode(texts, max(1, min(max_source, max(map(len, texts), default=1))))
    return Endpoint(
        "generate_codepoints",
        generate_codepoints,
        [tf.TensorSpec((None, None), tf.int32, name="codepoints")],
        reference=reference,
        samples={"codepoints": samples},
        calibration=lambda: calibration.code_points(source_map.code_points_by_id),
        exact=True,
    )
