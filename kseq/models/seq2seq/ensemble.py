"""Ensembles as one model: members of one spec whose next-token log-probabilities are averaged.

`kseq ensemble RUN_DIR... --output RUN_DIR` loads the members and wraps them into one functional
model (`ensemble_model`): each member is a nested model `member_<i>`, and `MeanLogProbabilities`
turns their logits into the mean of their log-softmax. That mean is a valid logits tensor (its
softmax is the members' normalized geometric mean, the usual way to ensemble sequence models), so
training losses, greedy and beam search and the export read it like one model's logits.

The decoders drive `EnsembleGraph`: one `Seq2SeqGraph` per member, their `encode` and state dicts
side by side under `m<i>_` prefixes, every step averaged like the functional model. One graph
means one `.tflite` with the decoding loop inside, gated by parity like any other export.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["EnsembleGraph", "MeanLogProbabilities", "ensemble_model", "members"]

MEMBER_PREFIX = "member_"
# The most members an ensemble holds: each adds a full model to every decoding step.
MAX_MEMBERS = 16


@keras.saving.register_keras_serializable(package="kseq")
class MeanLogProbabilities(keras.layers.Layer):
    """Members' logits `[(B, T, V), ...]` -> the mean of their log-softmax `(B, T, V)` float32."""

    def call(self, logits):
        return mean_log_probabilities(logits)

    def compute_output_spec(self, logits):
        return keras.KerasTensor(logits[0].shape, "float32")


def mean_log_probabilities(logits):
    """The mean over members of `log_softmax(logits_i)` on the last axis, in float32."""
    total = None
    for member_logits in logits:
        log_probabilities = ops.log_softmax(ops.cast(member_logits, "float32"), axis=-1)
        total = log_probabilities if total is None else total + log_probabilities
    return total / float(len(logits))


def ensemble_model(models: list[keras.Model]) -> keras.Model:
    """One functional model over `models` (built or loaded members of one spec)."""
    if not 2 <= len(models) <= MAX_MEMBERS:
        raise ValueError(f"an ensemble has 2 to {MAX_MEMBERS} members, got {len(models)}")
    inputs = {
        name: keras.Input(tensor.shape[1:], dtype=tensor.dtype, name=name)
        for name, tensor in models[0].input.items()
    }
    # A fresh functional model over each member's graph gives it its own name; the layers (and
    # weights) are the member's.
    named = [
        keras.Model(model.input, model.output, name=f"{MEMBER_PREFIX}{index}")
        for index, model in enumerate(models)
    ]
    logits = [member(inputs) for member in named]
    output = MeanLogProbabilities(name="mean_log_probabilities")(logits)
    return keras.Model(inputs, output, name="ensemble")


def members(model: keras.Model) -> list[keras.Model]:
    """The member models of an ensemble made by `ensemble_model` (empty for a single model)."""
    if not any(isinstance(layer, MeanLogProbabilities) for layer in model.layers):
        return []
    return [
        layer
        for layer in model.layers
        if isinstance(layer, keras.Model) and layer.name.startswith(MEMBER_PREFIX)
    ]


class EnsembleGraph:
    """The `kseq.decoding.protocol.Seq2SeqGraph` of an ensemble, over its members' graphs.

    Member `i`'s entries are named `m<i>_<name>`, except those every member computes from the
    source and the step alone (`SHARED`: the source mask, a Transformer's step counter): they
    are kept once, under their own name. Exported, `encode` and `decode_step` would otherwise
    name one tensor twice (the TFLite converter merges equal computations), and copies of it
    kept apart fail on LiteRT's CompiledModel once a call has fewer rows than an earlier one
    (measured: "Custom allocation is too small").
    """

    SHARED = ("source_mask", "position")

    def __init__(self, graphs: list):
        self.graphs = graphs

    def _split(self, values: dict) -> list[dict]:
        """One dict per member from a merged dict."""
        parts = [{} for _ in self.graphs]
        for key, value in values.items():
            if key in self.SHARED:
                for part in parts:
                    part[key] = value
                continue
            index, _, name = key[1:].partition("_")
            parts[int(index)][name] = value
        return parts

    def _merge(self, parts: list[dict]) -> dict:
        merged = {}
        for index, part in enumerate(parts):
            for key, value in part.items():
                if key in self.SHARED:
                    merged.setdefault(key, value)  # the first member's
                else:
                    merged[f"m{index}_{key}"] = value
        return merged

    @property
    def vocab_size(self) -> int:
        return self.graphs[0].vocab_size

    def encode(self, source_ids):
        return self._merge([graph.encode(source_ids) for graph in self.graphs])

    def initial_state(self, encoded):
        parts = self._split(encoded)
        return self._merge(
            [graph.initial_state(part) for graph, part in zip(self.graphs, parts, strict=True)]
        )

    def step(self, token_ids, state, encoded):
        logits, states, attention = [], [], []
        for graph, own_state, own_encoded in zip(
            self.graphs, self._split(state), self._split(encoded), strict=True
        ):
            member_logits, new_state, member_attention = graph.step(
                token_ids, own_state, own_encoded
            )
            logits.append(member_logits)
            states.append(new_state)
            attention.append(member_attention)
        mean_attention = ops.mean(ops.stack(attention), axis=0)
        return mean_log_probabilities(logits), self._merge(states), mean_attention

    def teacher_forced(self, source_ids, target_in):
        results = [graph.teacher_forced(source_ids, target_in) for graph in self.graphs]
        logits = mean_log_probabilities([logits for logits, _ in results])
        return logits, ops.mean(ops.stack([attention for _, attention in results]), axis=0)
