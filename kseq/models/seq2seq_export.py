"""Serving signatures of the sequence-to-sequence families.

- `generate` (SavedModel + TFLite): source_ids (B, S) int32, 0-padded -> target_ids
  (B, max_target_length) int32, 0 after eos — the whole decode loop in the graph (greedy, or
  the best beam when `decode.strategy: beam`).
- `encode` / `decode_step` (SavedModel + TFLite): for apps that run their own loop. decode_step
  takes `token_ids` (B,), the loop state as `state_*` and the encoder results as `encoded_*`, and
  returns `logits`, `attention` and the next `state_*`.
- `translate` (SavedModel only): strings in, strings out, tokenisation inside the graph.
"""

from __future__ import annotations

import numpy as np

from kseq.data.special_tokens import BOS_ID
from kseq.errors import KseqError
from kseq.export.endpoints import Endpoint


def _numpy(tensors: dict) -> dict:
    return {k: np.asarray(v) for k, v in tensors.items()}


def _dynamic_specs(prefix: str, short: dict, long: dict):
    """TensorSpecs with the batch and every length-dependent dimension left dynamic."""
    import tensorflow as tf

    specs = []
    for key in sorted(short):
        a, b = short[key].shape, long[key].shape
        shape = [None] + [None if x != y else x for x, y in zip(a[1:], b[1:], strict=True)]
        specs.append(tf.TensorSpec(shape, tf.as_dtype(short[key].dtype), name=f"{prefix}{key}"))
    return specs


def _generate_outputs(result: dict) -> dict:
    ids = result["target_ids"]
    if len(ids.shape) == 3:  # beam search: (B, n_best, L) -> the best hypothesis
        return {"target_ids": ids[:, 0]}
    return {"target_ids": ids}


def seq2seq_endpoints(family, model, spec, data) -> list[Endpoint]:
    import tensorflow as tf

    if spec.export.quantize == "int8":
        raise KseqError(
            "export.quantize: int8 is not supported for sequence-to-sequence models "
            "(decode loops need float logits); use dynamic or float16"
        )
    graph = family.graph(model)
    tokenizers = data.info["tokenizers"]
    all_sources = data.samples["source_ids"]
    samples = all_sources[: spec.export.parity_samples]
    samples = samples[:, : max(1, int((samples > 0).sum(axis=1).max()))]  # drop all-pad columns
    source_spec = [tf.TensorSpec((None, None), tf.int32, name="source_ids")]
    decode = family.decoder_fn(model, spec, "beam" if spec.decode.strategy == "beam" else "greedy")

    def generate(source_ids):
        return _generate_outputs(decode(source_ids))

    def encode(source_ids):
        return graph.encode(source_ids)

    encoded_short = _numpy(graph.encode(tf.constant(samples[:, :1])))
    encoded = _numpy(graph.encode(tf.constant(samples)))
    state = _numpy(graph.initial_state({k: tf.constant(v) for k, v in encoded.items()}))
    state_short = _numpy(graph.initial_state({k: tf.constant(v) for k, v in encoded_short.items()}))
    encoded_specs = _dynamic_specs("encoded_", encoded_short, encoded)
    state_specs = _dynamic_specs("state_", state_short, state)

    def decode_step(token_ids, **inputs):
        encoded_in = {
            k[len("encoded_") :]: v for k, v in inputs.items() if k.startswith("encoded_")
        }
        state_in = {k[len("state_") :]: v for k, v in inputs.items() if k.startswith("state_")}
        logits, new_state, attention = graph.step(token_ids, state_in, encoded_in)
        return {
            "logits": logits,
            "attention": attention,
            **{f"state_{k}": v for k, v in new_state.items()},
        }

    step_samples = {
        "token_ids": np.full((len(samples),), BOS_ID, np.int32),
        **{f"encoded_{k}": v for k, v in encoded.items()},
        **{f"state_{k}": v for k, v in state.items()},
    }
    step_spec = [tf.TensorSpec((None,), tf.int32, name="token_ids"), *encoded_specs, *state_specs]

    max_source = spec.data.max_source_length

    def translate(text):
        ragged = tokenizers.source.tf_tokenize(text)[:, :max_source]
        ids = tf.cast(ragged.to_tensor(default_value=0), tf.int32)
        ids = tf.pad(ids, [[0, 0], [0, 1]])[:, : tf.maximum(tf.shape(ids)[1], 1)]
        ids = tf.where(tf.reduce_any(ids > 0, axis=1, keepdims=True), ids, tf.ones_like(ids))
        return {"translation": tokenizers.target.tf_detokenize(generate(ids)["target_ids"])}

    texts = [s for s, _ in data.info["validation_pairs"][: len(samples)]]

    def translate_reference(inputs):
        decoded = [t.decode("utf-8") for t in np.asarray(inputs["text"]).tolist()]
        rows = family.predict(model, spec, None, decoded, tokenizers=tokenizers)
        return {"translation": np.array([r["output"].encode("utf-8") for r in rows], dtype=object)}

    return [
        Endpoint(
            "generate",
            generate,
            source_spec,
            reference=lambda d: _numpy(generate(tf.constant(d["source_ids"]))),
            samples={"source_ids": all_sources},
            exact=True,
        ),
        Endpoint(
            "encode",
            encode,
            source_spec,
            reference=lambda d: _numpy(encode(tf.constant(d["source_ids"]))),
            samples={"source_ids": samples},
        ),
        Endpoint(
            "decode_step",
            decode_step,
            step_spec,
            reference=lambda d: _numpy(decode_step(**{k: tf.constant(v) for k, v in d.items()})),
            samples=step_samples,
        ),
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
