"""The interface the generic in-graph decoders (`kseq.decoding`) program against."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import tensorflow as tf

__all__ = ["Seq2SeqGraph"]


@runtime_checkable
class Seq2SeqGraph(Protocol):
    """A trained encoder-decoder seen as `encode` once, then `step` per target token.

    Every tensor in the `encoded` and `state` dicts is batch-first (`(B, ...)`), so a decoder
    can tile (beam search: `(B * K, ...)`) or reorder rows of all of them with one `tf.gather`
    on axis 0, without knowing what they are. All shapes other than the batch stay fixed from
    step to step, so the dicts can be `tf.while_loop` state (builtin TFLite WHILE).

    Token ids follow the kseq convention: 0 = padding, 1 = unknown, 2 = bos, 3 = eos.
    """

    def encode(self, source_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        """Encodes a padded source batch.

        Args:
            source_ids: `(B, S)` int32, right-padded with 0.

        Returns:
            Dict of batch-first tensors the steps read (memory, source mask, precomputed
            attention keys, the decoder's initial states, ...).
        """
        ...

    def initial_state(self, encoded: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """The decoder state before the first step: a dict of batch-first tensors."""
        ...

    def step(
        self,
        token_ids: tf.Tensor,
        state: dict[str, tf.Tensor],
        encoded: dict[str, tf.Tensor],
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor], tf.Tensor]:
        """One decoder step.

        Args:
            token_ids: `(B,)` int32, the previous token of each row (bos at the start).
            state: the current state dict (same keys and shapes as `initial_state`'s).
            encoded: `encode`'s dict (possibly with rows tiled or reordered).

        Returns:
            `(logits, new_state, attention)`: `(B, V)` float32 next-token logits, the new
            state dict, and `(B, S)` attention weights over the source (zeros if the model
            has none).
        """
        ...

    def teacher_forced(
        self, source_ids: tf.Tensor, target_in: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Logits `(B, T, V)` and attention `(B, T, S)` for given decoder inputs."""
        ...
