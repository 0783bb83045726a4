"""The export report's task score of a file run as an app runs it: the app loops of
`kseq.decoding.app_loop` over the file's `encode` + `decode_step`."""

from __future__ import annotations

import numpy as np

from kseq import decoding
from kseq.decoding.app_loop import beam_app_loop, greedy_app_loop
from kseq.export.parity import GATE_CHUNK_ROWS
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
    first `export.parity_samples` rows); None: a dynamic file, every held-out row, in calls of
    `GATE_CHUNK_ROWS` rows (in one call a Transformer's decoding of 6,246 CMUdict words held
    24 GB), the spec's lengths. A dynamic int8 file's `generate`
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

        keras_greedy = _in_chunks(
            lambda rows: decoding.greedy(
                graph, tf.constant(rows), steps, bos_id=BOS_ID, eos_id=EOS_ID
            )["target_ids"].numpy(),
            sources,
            batch,
        )
        ids = _in_chunks(
            lambda rows: greedy_app_loop(encode, decode_step, rows, steps, batch), sources, batch
        )
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
        keras_beam = _in_chunks(
            lambda rows: decoding.beam_search(
                graph, tf.constant(rows), steps, width, penalty, bos_id=BOS_ID, eos_id=EOS_ID
            )["target_ids"].numpy()[:, 0],
            sources,
            batch,
        )
        beam_ids = _in_chunks(
            lambda rows: beam_app_loop(
                encode, decode_step, rows, steps, width, penalty, batch_size=batch
            )[0][:, 0],
            sources,
            batch,
        )
        report["beam"] = {
            "beam_width": width,
            "length_penalty": penalty,
            **figures(beam_ids, keras_beam),
        }
        return report

    return check


def _in_chunks(decode, sources: np.ndarray, batch: int | None) -> list[np.ndarray]:
    """`decode(rows)`'s id rows for every source, called on `GATE_CHUNK_ROWS` sources at a time
    (a multiple of a static file's `batch`, which the app loops split further); a list, since
    chunks that stop early decode to different widths."""
    rows = GATE_CHUNK_ROWS if batch is None else max(batch, GATE_CHUNK_ROWS // batch * batch)
    return [row for i in range(0, len(sources), rows) for row in decode(sources[i : i + rows])]
