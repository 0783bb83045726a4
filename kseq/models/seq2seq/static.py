"""`--static` signatures of the sequence-to-sequence families: loop-free, every shape fixed."""

from __future__ import annotations

import numpy as np

from kseq.errors import KseqError
from kseq.export.endpoints import Endpoint, as_numpy, eager_reference
from kseq.layers.rnn import unrolled_time_loops
from kseq.models.seq2seq.calibration import Seq2SeqCalibration
from kseq.models.seq2seq.export import (
    decode_step_endpoint,
    encode_fn,
    first_step_inputs,
)
from kseq.tokenizers.special_tokens import UNK_ID


def _static_length(flag: str, given: int | None, maximum: int, field: str) -> int:
    if given is None:
        return maximum
    if not 1 <= given <= maximum:
        raise KseqError(f"{flag} must be in 1..{maximum} ({field}). Received: {given}")
    return given


def static_lengths(spec, static) -> tuple[int, int]:
    length = _static_length(
        "--sequence-length", static.sequence_length, spec.data.max_source_length,
        "data.max_source_length",
    )  # fmt: skip
    steps = _static_length(
        "--target-length", static.target_length, spec.data.max_target_length,
        "data.max_target_length",
    )  # fmt: skip
    return length, steps


def held_out_sources(spec, data, length: int) -> np.ndarray:
    """The gate's held-out rows at the file's source length (a row cut to nothing reads as
    one `<unk>`)."""
    held_out = data.samples["source_ids"][: spec.export.parity_samples, :length]
    sources = np.zeros((len(held_out), length), np.int32)
    sources[:, : held_out.shape[1]] = held_out
    sources[~(sources > 0).any(axis=1), 0] = UNK_ID
    return sources


def static_seq2seq_endpoints(family, model, spec, data, static) -> list[Endpoint]:
    """Loop-free `encode` and `decode_step` at a fixed source length, for accelerators.

    No `generate`: its decoding loop is a WHILE; the app runs the loop over `decode_step` (see
    the README's app loop). Recurrent encoders are unrolled over the fixed length; a
    Transformer's caches get `target_length + 1` slots (the tokens and the end).
    """
    import tensorflow as tf

    length, steps = static_lengths(spec, static)
    graph = family.graph(model, max_steps=steps + 1)
    calibration = Seq2SeqCalibration(
        graph,
        data.calibration["source_ids"],
        data.calibration["target_ids"],
        length,
        source_length=length,
        max_target_length=steps,
    )
    sources = held_out_sources(spec, data, length)

    encode_steps = encode_fn(graph)

    def encode(source_ids):
        with unrolled_time_loops():  # no WHILE over the fixed source axis
            return encode_steps(source_ids)

    encoded = as_numpy(graph.encode(tf.constant(sources)))
    state = as_numpy(graph.initial_state({k: tf.constant(v) for k, v in encoded.items()}))
    step_samples = first_step_inputs(encoded, state)
    step_spec = [
        tf.TensorSpec((None, *v.shape[1:]), tf.as_dtype(v.dtype), name=k)
        for k, v in sorted(step_samples.items())
    ]
    return [
        Endpoint(
            "encode",
            encode,
            [tf.TensorSpec((None, length), tf.int32, name="source_ids")],
            # Against the WHILE version: the gate checks the unrolling too.
            reference=eager_reference(encode_steps),
            samples={"source_ids": sources},
            calibration=calibration.sources,
        ),
        decode_step_endpoint(graph, step_spec, step_samples, calibration),
    ]
