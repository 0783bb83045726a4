"""The RNN encoder-decoder seen through the `kseq.decoding.Seq2SeqGraph` protocol."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from kseq.models.seq2seq.graph_layers import token_embeddings

__all__ = ["RNNSeq2SeqGraph"]


class RNNSeq2SeqGraph:
    """Encode/step adapter over a model from `build_rnn_seq2seq` (built or loaded).

    Uses the model's layers by name: `source_embedding`, `target_embedding` (falls back to
    `source_embedding` when the embeddings are shared), `encoder` (`RNNEncoder`) and `decoder`
    (`RNNDecoder`); it has no weights of its own.

    `encode(source_ids)` returns (all batch-first):

    - `"memory"`: `(B, S, H)` encoder outputs;
    - `"source_mask"`: `(B, S)` float32, 1.0 at real source positions;
    - `"keys"`: `(B, S, K)` precomputed attention keys (absent for attention `"none"` and for
      Luong `dot` scores, whose keys are the memory itself);
    - `"initial_<name>"`: `(B, U)` decoder initial states from the bridge, one per recurrent
      state, `<name>` in `h_0, c_0, h_1, ...` (see `RNNDecoder.state_names`).

    The state dict has one `(B, ·)` tensor per `RNNDecoder.state_names()` entry:
    `h_<i>` / `c_<i>` per decoder layer, plus `summary` (attention `"none"`) or `attentional`
    (Luong with input feeding).

    Args:
        model: the functional model of `build_rnn_seq2seq`, or its `.keras` reload.
    """

    def __init__(self, model: keras.Model):
        self.model = model
        self.source_embedding, self.target_embedding = token_embeddings(model)
        self.encoder = model.get_layer("encoder")
        self.decoder = model.get_layer("decoder")
        self.state_names = self.decoder.state_names()
        self._rnn_names = self.state_names[
            : self.decoder.num_layers * (2 if self.decoder.cell == "lstm" else 1)
        ]

    @property
    def vocab_size(self) -> int:
        return self.decoder.vocab_size

    def encoded_specs(self) -> dict[str, tf.TensorSpec]:
        """`tf.TensorSpec`s (batch and source length None) of `encode`'s dict, named by key.

        For export signatures, e.g. a `decode_step(token_ids, **state, **encoded)` endpoint.
        """
        decoder = self.decoder
        memory_dim = self.encoder.output_units
        specs = {
            "memory": (None, None, memory_dim),
            "source_mask": (None, None),
        }
        keys_dim = decoder.attention_kind.key_width(decoder.units, memory_dim)
        if keys_dim is not None:  # None: no keys, or (dot scores) the memory itself
            specs["keys"] = (None, None, keys_dim)
        for name in self._rnn_names:
            specs[f"initial_{name}"] = (None, decoder.units)
        return {k: tf.TensorSpec(shape, tf.float32, name=k) for k, shape in specs.items()}

    def state_specs(self) -> dict[str, tf.TensorSpec]:
        """`tf.TensorSpec`s `(None, units)` of the state dict, named by key."""
        return {
            name: tf.TensorSpec((None, self.decoder.units), tf.float32, name=name)
            for name in self.state_names
        }

    def encode(self, source_ids):
        source_ids = tf.convert_to_tensor(source_ids, tf.int32)  # (B, S)
        mask = tf.not_equal(source_ids, 0)  # (B, S)
        memory, initial_states = self.encoder(self.source_embedding(source_ids), mask=mask)
        encoded = {"memory": memory, "source_mask": tf.cast(mask, tf.float32)}
        keys = self.decoder.precompute_keys(memory)
        # Dot scores take the memory itself as keys: a second name for one tensor is a signature
        # output that LiteRT's CompiledModel drops, and `step` recomputes the keys for free.
        if keys is not None and keys is not memory:
            encoded["keys"] = keys
        for name, state in zip(self._rnn_names, initial_states, strict=True):
            encoded[f"initial_{name}"] = state
        return encoded

    def initial_state(self, encoded):
        states = self.decoder.initial_state(
            encoded["memory"],
            encoded["source_mask"],
            [encoded[f"initial_{name}"] for name in self._rnn_names],
        )
        return dict(zip(self.state_names, states, strict=True))

    def step(self, token_ids, state, encoded):
        embedded = self.target_embedding(ops.cast(token_ids, "int32"))  # (B, E)
        logits, new_state, attention = self.decoder.step(
            embedded,
            [state[name] for name in self.state_names],
            encoded["memory"],
            encoded["source_mask"],
            keys=encoded.get("keys"),
        )
        return logits, dict(zip(self.state_names, new_state, strict=True)), attention

    def teacher_forced(self, source_ids, target_in):
        encoded = self.encode(source_ids)
        embedded = self.target_embedding(tf.convert_to_tensor(target_in, tf.int32))
        return self.decoder(
            embedded,
            encoded["memory"],
            encoded["source_mask"],
            [encoded[f"initial_{name}"] for name in self._rnn_names],
        )
