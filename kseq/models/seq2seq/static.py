"""`--static` signatures of the sequence-to-sequence families: loop-free, every shape fixed."""

from __future__ import annotations

import numpy as np

from kseq.data.special_tokens import BOS_ID, EOS_ID, UNK_ID
from kseq.errors import KseqError
from kseq.export.endpoints import Endpoint, as_numpy, eager_reference
from kseq.models.seq2seq.calibration import Seq2SeqCalibration
from kseq.models.seq2seq.export import (
    decode_step_endpoint,
    encode_fn,
    first_step_inputs,
)


def _static_length(flag: str, given: int | None, maximum: int, field: str) -> int:
    if given is None:
        return maximum
    if not 1 <= given <= maximum:
        raise KseqError(f"{flag} must be in 1..{maximum} ({field}). Received: {given}")
    return given


def _lengths(spec, static) -> tuple[int, int]:
    length = _static_length(
        "--sequence-length", static.sequence_length, spec.data.max_source_length,
        "data.max_source_length",
    )  # fmt: skip
    steps = _static_length(
        "--target-length", static.target_length, spec.data.max_target_length,
        "data.max_target_length",
    )  # fmt: skip
    return length, steps


def _held_out_sources(spec, data, length: int) -> np.ndarray:
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

    from kseq.layers.rnn import unrolled_time_loops

    length, steps = _lengths(spec, static)
    graph = family.graph(model, max_steps=steps + 1)
    calibration = Seq2SeqCalibration(
        graph,
        data.calibration["source_ids"],
        data.calibration["target_ids"],
        length,
        source_length=length,
        max_target_length=steps,
    )
    sources = _held_out_sources(spec, data, length)

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


def static_app_loop_check(family, model, spec, data, static):
    """`check(signature) -> dict`: the task score of a static file run as an app runs it.

    The app loops of `kseq.decoding.app_loop` over the file's `encode` + `decode_step`, in
    chunks of the file's batch, on the gate's held-out rows: greedy always, beam search (the
    spec's `decode:` width and penalty) when the batch holds whole beams; beside each, Keras's
    decoding of the same rows at the same lengths, and how many rows give Keras's ids.
    """

    def check(signature) -> dict:
        import tensorflow as tf

        from kseq import decoding
        from kseq.decoding.app_loop import beam_app_loop, greedy_app_loop
        from kseq.models.seq2seq.family import strip_ids
        from kseq.models.seq2seq.metrics import positional_token_accuracy, sequence_exact_match

        length, steps = _lengths(spec, static)
        sources = _held_out_sources(spec, data, length)
        truth = [t for _, t in data.info["validation_ids"][: len(sources)]]
        graph = family.graph(model, max_steps=steps + 1)
        encode, decode_step = signature("encode"), signature("decode_step")

        def figures(ids, keras_ids) -> dict:
            rows, keras_rows = [strip_ids(r) for r in ids], [strip_ids(r) for r in keras_ids]
            return {
                "exact_match_export": sequence_exact_match(truth, rows),
                "exact_match_keras": sequence_exact_match(truth, keras_rows),
                "token_accuracy_export": positional_token_accuracy(rows, truth),
                "token_accuracy_keras": positional_token_accuracy(keras_rows, truth),
                "sequences_identical_to_keras": float(
                    np.mean([a == b for a, b in zip(rows, keras_rows, strict=True)])
                ),
            }

        keras_greedy = decoding.greedy(
            graph, tf.constant(sources), steps, bos_id=BOS_ID, eos_id=EOS_ID
        )["target_ids"].numpy()
        ids = greedy_app_loop(encode, decode_step, sources, steps, static.batch_size)
        report = {
            "strategy": "greedy",
            "loop": "kseq.decoding.app_loop, as the README's app loops",
            "rows": len(sources),
            **figures(ids, keras_greedy),
        }
        width, penalty = spec.decode.beam_width, spec.decode.length_penalty
        if static.batch_size % width:
            report["beam"] = (
                f"not run: a batch of {static.batch_size} holds no {width} beams "
                f"(export with --batch-size {width} for beam search in the app)"
            )
            return report
        keras_beam = decoding.beam_search(
            graph, tf.constant(sources), steps, width, penalty, bos_id=BOS_ID, eos_id=EOS_ID
        )["target_ids"].numpy()[:, 0]
        beam_ids, _ = beam_app_loop(
            encode, decode_step, sources, steps, width, penalty, batch_size=static.batch_size
        )
        report["beam"] = {
            "beam_width": width,
            "length_penalty": penalty,
            **figures(beam_ids[:, 0], keras_beam),
        }
        return report

    return check
