"""The export report's task score of a file run as an app runs it: the app loops of
`kseq.decoding.app_loop` over the file's `encode` + `decode_step`."""

from __future__ import annotations

import numpy as np

from kseq import decoding
from kseq.decoding.app_loop import beam_app_loop, greedy_app_loop
from kseq.models.seq2seq.metrics import decoding_task_cost
from kseq.models.seq2seq.pairs import strip_ids
from kseq.models.seq2seq.static import held_out_sources, static_lengths
from kseq.tokenizers.special_tokens import BOS_ID, EOS_ID

__all__ = ["app_loop_check"]


def app_loop_check(family, model, spec, data, static=None):
    """`check(signature) -> dict`: greedy always, and beam search (the spec's `decode:` width
    and penalty) when the file's batch holds whole beams, on the gate's held-out rows; beside
    each, Keras's decoding of the same rows at the same lengths, and how many rows give Keras's
    ids.

    `static`: a static file's `StaticShape` (its lengths; calls in chunks of its batch, on the
    first `export.parity_samples` rows); None: a dynamic file, every held-out row in one call,
    the spec's lengths. A dynamic int8 file's `generate`
    keeps the decoder state int8 from step to step inside the file, where the loop takes each
    state out as float and back in at `decode_step`'s input scale: the two can differ there.
    """

    def check(signature) -> dict:
        import tensorflow as tf

        if static is not None:
            length, steps = static_lengths(spec, static)
            sources, batch = held_out_sources(spec, data, length), static.batch_size
            graph = family.graph(model, max_steps=steps + 1)
        else:
            # Every held-out row, as the gate runs `generate` on: the two figures side by side.
            steps, batch = spec.data.max_target_length, None
            sources = np.asarray(data.samples["source_ids"], np.int32)
            graph = family.graph(model)
        truth = [t for _, t in data.info.validation_ids[: len(sources)]]
        encode, decode_step = signature("encode"), signature("decode_step")

        def figures(ids, keras_ids) -> dict:
            rows = [strip_ids(r) for r in keras_ids], [strip_ids(r) for r in ids]
            return decoding_task_cost(truth, *rows)

        keras_greedy = decoding.greedy(
            graph, tf.constant(sources), steps, bos_id=BOS_ID, eos_id=EOS_ID
        )["target_ids"].numpy()
        ids = greedy_app_loop(encode, decode_step, sources, steps, batch)
        report = {
            "strategy": "greedy",
            "loop": "kseq.decoding.app_loop, as the README's app loops",
            "rows": len(sources),
            **figures(ids, keras_greedy),
        }
        width, penalty = spec.decode.beam_width, spec.decode.length_penalty
        if batch is not None and batch % width:
            report["beam"] = (
                f"not run: a batch of {batch} holds no {width} beams "
                f"(export with --batch-size {width} for beam search in the app)"
            )
            return report
        keras_beam = decoding.beam_search(
            graph, tf.constant(sources), steps, width, penalty, bos_id=BOS_ID, eos_id=EOS_ID
        )["target_ids"].numpy()[:, 0]
        beam_ids, _ = beam_app_loop(
            encode, decode_step, sources, steps, width, penalty, batch_size=batch
        )
        report["beam"] = {
            "beam_width": width,
            "length_penalty": penalty,
            **figures(beam_ids[:, 0], keras_beam),
        }
        return report

    return check
