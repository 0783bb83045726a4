"""int8 calibration data of the sequence-to-sequence signatures, made from training pairs.

`generate` and `encode` are calibrated on padded source batches. `decode_step` is calibrated on
what it really meets: the decoder states of teacher forcing (the reference tokens fed back step
by step), not random tensors, whose ranges would set the int8 scales wrong. Everything is made
on first use, since only an int8 export needs it.
"""

from __future__ import annotations

import numpy as np

from kseq.models.seq2seq.pairs import pad_ids
from kseq.tokenizers.special_tokens import BOS_ID, EOS_ID, PAD_ID, UNK_ID

BATCH_SIZE = 16
MAX_SOURCE_BATCHES = 32  # generate runs its whole decoding loop on each
MAX_STEP_BATCHES = 64  # decode_step batches, spread over every position of every batch


def _spanning_source(sources: list[list[int]], length: int) -> list[int]:
    """The batch's sources end to end, repeated to `length` tokens.

    A static file's recurrent encoder is unrolled, so every time step has int8 scales of its
    own; a step no calibration source reaches gets a zero range, and XNNPACK refuses the file
    (measured: the date model, whose sources end by 40 tokens, at widths 60 and 80). One row per
    batch that fills the width gives every step real values.
    """
    tokens = [token for source in sources for token in source]
    return (tokens * (length // len(tokens) + 1))[:length]


class Seq2SeqCalibration:
    """Lazily made calibration batches; `sources` and `steps` go to `Endpoint.calibration`.

    Pairs are taken in batches of `BATCH_SIZE` (the pairs after the last full batch are left
    out), at most `MAX_SOURCE_BATCHES` of them.

    Args:
        graph: the family's `Seq2SeqGraph` (encode / initial_state / step).
        source_ids, target_ids: id lists of training pairs (no bos/eos in them).
        max_source_length: sources are cut to it, as the model was trained.
        source_length: pad every source batch to this width (a static export's; the last row
            of each batch then spans it, see `_spanning_source`); default the longest
            calibration source.
        max_target_length: targets are cut to it (a static export's decoder length).
    """

    def __init__(
        self,
        graph,
        source_ids,
        target_ids,
        max_source_length: int,
        source_length: int | None = None,
        max_target_length: int | None = None,
    ) -> None:
        self.graph = graph
        self.source_length = source_length
        self.pairs = [
            (source[:max_source_length] or [UNK_ID], target[:max_target_length])
            for source, target in zip(source_ids, target_ids, strict=True)
        ][: BATCH_SIZE * MAX_SOURCE_BATCHES]
        self._sources: list | None = None
        self._steps: list | None = None

    def _batches(self):
        """(sources, targets) batches of one shape: TF's calibrator sizes a signature's tensors
        on its first batch only, so a batch of another shape would run with stale sizes."""

        size = min(BATCH_SIZE, len(self.pairs))
        source_length = self.source_length or max(len(s) for s, _ in self.pairs)
        target_length = max(len(t) for _, t in self.pairs)
        for start in range(0, len(self.pairs) - size + 1, size):
            chunk = self.pairs[start : start + size]
            sources = [s for s, _ in chunk]
            if self.source_length:
                sources[-1] = _spanning_source(sources, source_length)
            yield pad_ids(sources, source_length), pad_ids([t for _, t in chunk], target_length)

    def sources(self) -> list[dict[str, np.ndarray]]:
        """`{"source_ids": (B, S)}` batches (made once)."""
        if self._sources is None:
            self._sources = [{"source_ids": sources} for sources, _ in self._batches()]
        return self._sources

    def steps(self) -> list[dict[str, np.ndarray]]:
        """decode_step inputs at teacher-forced positions: `token_ids`, `encoded_*`, `state_*`
        (made once)."""
        if self._steps is None:
            self._steps = self._teacher_forced_steps()
        return self._steps

    def _teacher_forced_steps(self) -> list[dict[str, np.ndarray]]:
        import tensorflow as tf

        batches = list(self._batches())
        # A batch has a step per target position plus the one that ends it; keep an even spread
        # of at most MAX_STEP_BATCHES of all of them (states are not kept for the rest).
        total = sum(targets.shape[1] + 1 for _, targets in batches)
        keep = set(np.linspace(0, total - 1, min(total, MAX_STEP_BATCHES)).round().astype(int))
        steps, index = [], 0
        for sources, targets in batches:
            if index > max(keep):
                break
            encoded = self.graph.encode(tf.constant(sources))
            state = self.graph.initial_state(encoded)
            encoded_inputs = {f"encoded_{k}": np.asarray(v) for k, v in encoded.items()}
            # bos, the reference, then eos where a row has ended: what `generate` feeds back.
            tokens = np.concatenate([np.full((len(targets), 1), BOS_ID, np.int32), targets], 1)
            tokens[tokens == PAD_ID] = EOS_ID
            for position in range(tokens.shape[1]):
                if index in keep:
                    steps.append(
                        {
                            "token_ids": tokens[:, position],
                            **encoded_inputs,
                            **{f"state_{k}": np.asarray(v) for k, v in state.items()},
                        }
                    )
                index += 1
                if index > max(keep):
                    break
                _, state, _ = self.graph.step(tf.constant(tokens[:, position]), state, encoded)
        return steps

    def code_points(self, code_points_by_id: np.ndarray) -> list[dict[str, np.ndarray]]:
        """`{"codepoints": (B, S)}` batches: the sources written as Unicode code points."""
        return [{"codepoints": code_points_by_id[b["source_ids"]]} for b in self.sources()]
