"""The encoder and decoder layers of the RNN encoder-decoder family, exportable to builtin TFLite.

`RNNEncoder` reads an embedded, padded source with stacked `ExportableLSTM`/`ExportableGRU`
(optionally bidirectional) layers and bridges its final states to the decoder's initial states.
`RNNDecoder` is a stacked recurrent decoder with no attention (Cho et al., 2014), Bahdanau
attention (Bahdanau et al., 2015) or Luong attention (Luong et al., 2015).

The decoder has one step function, used in two ways:

- `call` (teacher forcing) runs it in a `tf.while_loop` over the target time axis whose loop
  state has fixed shapes (`(B, ·)` states, `(T, B, ·)` buffers written through a one-hot time
  index), so training sees exactly the computation that decoding runs;
- `step` runs it once, for the in-graph decoders of `kseq.decoding`.

Both convert to TFLite builtin ops only (WHILE, no TensorArray, no `x[:, None]`).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from kseq.layers.config import ArgumentsConfig
from kseq.layers.rnn import (
    ExportableBidirectional,
    ExportableGRU,
    ExportableLSTM,
    TimeBuffer,
    time_reader,
)
from kseq.models.seq2seq.rnn import attention as _attention  # noqa: F401  (registers the layers)
from kseq.models.seq2seq.rnn.attention_kinds import decoder_attention

_CELLS = ("lstm", "gru")
_SCORES = ("dot", "general", "concat")


def _state_kinds(cell):
    """Names of the state tensors of one recurrent layer: `("h", "c")` or `("h",)`."""
    return ("h", "c") if cell == "lstm" else ("h",)


def _rnn_class(cell):
    return ExportableLSTM if cell == "lstm" else ExportableGRU


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}. Received: {name}={value!r}")


def _check_positive(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


def _check_rate(value):
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={value!r}")


@keras.saving.register_keras_serializable(package="kseq")
class RNNEncoder(ArgumentsConfig, keras.layers.Layer):
    """Stacked (bi)directional recurrent encoder with a bridge to the decoder's initial states.

    Sublayers: `num_layers` recurrent layers named `<cell>_<i>` (`ExportableLSTM` /
    `ExportableGRU`, or `ExportableBidirectional` with `bidirectional=True`), a `dropout`
    layer when `dropout > 0`, and, when the bridge projects, one `Dense(decoder_units, tanh)`
    per decoder state tensor named `bridge_<layer>_<h|c>`.

    The bridge: decoder layer `d` (counted from the bottom) takes the final states of encoder
    layer `max(0, num_layers - decoder_layers + d)`, so the top layers line up (a deeper
    decoder repeats the bottom encoder layer's states). With `bidirectional=True` the forward
    and backward states are concatenated (`2 * units` wide). The bridge is the identity when
    encoder and decoder agree (same cell kind, unidirectional, `units == decoder_units`);
    otherwise each decoder state is `tanh(W x + b)` of the source layer's state of the same
    kind (`h` for `h`, `c` for `c`; `h` when the encoder is a GRU and has no `c`).

    Masking: takes the `(B, S)` source mask (filled automatically from an upstream
    `Embedding(mask_zero=True)`). Padded steps leave the recurrent states unchanged (the
    backward direction starts at the last real token), so the final states and the memory at
    real positions do not depend on how much right padding follows. The memory is zero at
    padded positions. The memory's output mask is the source mask.

    Dropout: in training, `dropout` is applied to the embedded source and between layers.

    Args:
        cell: `"lstm"` or `"gru"`.
        units: int, state size of each recurrent layer (per direction).
        num_layers: int, number of stacked recurrent layers.
        bidirectional: read the source both ways; outputs and states are concatenated.
        dropout: float in [0, 1), dropout rate on layer inputs in training.
        decoder_cell: `"lstm"` or `"gru"`, the decoder's cell kind.
        decoder_units: int, the decoder's state size.
        decoder_layers: int, the decoder's number of layers.
        seed: optional int seed of the dropout.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        embedded: `(B, S, E)` embedded source.
        mask: optional `(B, S)` bool tensor, True at real source positions.
        training: bool, turns dropout on.

    Returns:
        `(memory, decoder_initial_states)`: the top layer's outputs `(B, S, H)` with
        `H = units * (2 if bidirectional else 1)`, and a list of `(B, decoder_units)` tensors,
        `[h_0, c_0, h_1, c_1, ...]` for an LSTM decoder and `[h_0, h_1, ...]` for a GRU
        decoder (index 0 = bottom layer).

    Example:
    ```python
    embedded = keras.layers.Embedding(100, 16, mask_zero=True)(source_ids)  # (B, S, 16)
    encoder = RNNEncoder("lstm", 32, 2, True, 0.0, "lstm", 64, 2)
    memory, states = encoder(embedded)  # (B, S, 64), [h_0, c_0, h_1, c_1] each (B, 64)
    ```
    """

    def __init__(
        self,
        cell="lstm",
        units=128,
        num_layers=1,
        bidirectional=True,
        dropout=0.0,
        decoder_cell="lstm",
        decoder_units=128,
        decoder_layers=1,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_choice("cell", cell, _CELLS)
        _check_choice("decoder_cell", decoder_cell, _CELLS)
        for name, value in (
            ("units", units),
            ("num_layers", num_layers),
            ("decoder_units", decoder_units),
            ("decoder_layers", decoder_layers),
        ):
            _check_positive(name, value)
        _check_rate(dropout)
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.decoder_cell = decoder_cell
        self.decoder_units = decoder_units
        self.decoder_layers = decoder_layers
        self.seed = seed
        self.supports_masking = True

    @property
    def output_units(self):
        """Width `H` of the memory and of each layer's (concatenated) states."""
        return self.units * (2 if self.bidirectional else 1)

    @property
    def projects(self):
        """Whether the bridge is a `Dense(tanh)` projection (else the identity)."""
        return not (
            self.cell == self.decoder_cell
            and not self.bidirectional
            and self.units == self.decoder_units
        )

    def _source_layer(self, decoder_layer):
        return max(0, self.num_layers - self.decoder_layers + decoder_layer)

    def build(self, embedded_shape):
        input_dim = embedded_shape[-1]
        self.rnn_layers = []
        for index in range(self.num_layers):
            name = f"{self.cell}_{index}"
            if self.bidirectional:
                layer = ExportableBidirectional(
                    self.units,
                    rnn_type=self.cell,
                    return_sequences=True,
                    return_state=True,
                    dtype=self.dtype_policy,
                    name=name,
                )
            else:
                layer = _rnn_class(self.cell)(
                    self.units,
                    return_sequences=True,
                    return_state=True,
                    zero_output_for_mask=True,
                    dtype=self.dtype_policy,
                    name=name,
                )
            layer.build((None, None, input_dim))
            self.rnn_layers.append(layer)
            input_dim = self.output_units
        self.dropout_layer = None
        if self.dropout > 0.0:
            self.dropout_layer = keras.layers.Dropout(
                self.dropout, seed=self.seed, dtype=self.dtype_policy, name="dropout"
            )
        self.bridge_layers = []
        if self.projects:
            for layer in range(self.decoder_layers):
                for kind in _state_kinds(self.decoder_cell):
                    dense = keras.layers.Dense(
                        self.decoder_units,
                        activation="tanh",
                        dtype=self.dtype_policy,
                        name=f"bridge_{layer}_{kind}",
                    )
                    dense.build((None, self.output_units))
                    self.bridge_layers.append(dense)

    def call(self, embedded, mask=None, training=None):
        x = embedded  # (B, S, E)
        final_states = []  # per layer: [h] or [h, c], each (B, H)
        for layer in self.rnn_layers:
            if self.dropout_layer is not None:
                x = self.dropout_layer(x, training=training)
            x, *states = layer(x, mask=mask, training=training)  # (B, S, H), states (B, U)
            if self.bidirectional:
                n = len(states) // 2
                states = [
                    ops.concatenate([f, b], axis=-1)
                    for f, b in zip(states[:n], states[n:], strict=True)
                ]
            final_states.append(states)
        memory = x  # (B, S, H)

        initial_states = []
        kinds = _state_kinds(self.decoder_cell)
        for layer in range(self.decoder_layers):
            source = final_states[self._source_layer(layer)]
            for k, _ in enumerate(kinds):
                state = source[k] if k < len(source) else source[0]  # (B, H)
                if self.projects:
                    state = self.bridge_layers[layer * len(kinds) + k](state)  # (B, U_dec)
                initial_states.append(state)
        return memory, initial_states

    def compute_output_shape(self, embedded_shape):
        batch, steps = embedded_shape[0], embedded_shape[1]
        count = self.decoder_layers * len(_state_kinds(self.decoder_cell))
        return (
            (batch, steps, self.output_units),
            [(batch, self.decoder_units) for _ in range(count)],
        )

    def compute_mask(self, embedded, mask=None):
        count = self.decoder_layers * len(_state_kinds(self.decoder_cell))
        return (mask, [None] * count)

    config_arguments = (
        "cell",
        "units",
        "num_layers",
        "bidirectional",
        "dropout",
        "decoder_cell",
        "decoder_units",
        "decoder_layers",
        "seed",
    )


@keras.saving.register_keras_serializable(package="kseq")
class RNNDecoder(ArgumentsConfig, keras.layers.Layer):
    """Stacked recurrent decoder with no, Bahdanau or Luong attention over the encoder memory.

    One decoder step, for target position `t` with embedded input `y_{t-1}` (`(B, E)`), the
    top layer's state `s` and memory `M` (`(B, S, H)`):

    - `"none"` (Cho et al., 2014): no attention. The fixed summary `C` (the initial `h` of
      the top decoder layer, i.e. the encoder bridge's output) is concatenated to every
      input, `x_t = [y_{t-1}; C]`, and to the output features `[s_t; C]`. The attention
      output is all zeros.
    - `"bahdanau"`: the score uses the PREVIOUS top state: `c_t, a_t = attend(s_{t-1}, M)`
      (additive score, `BahdanauAttention(attention_units)`); the RNN reads
      `x_t = [y_{t-1}; c_t]`; the output features are `[s_t; c_t]`.
    - `"luong"`: the RNN steps first, `s_t = RNN(x_t)`, then `c_t, a_t = attend(s_t, M)` with
      the `score` function (`LuongAttention`), and `h̃_t = tanh(W_c [c_t; s_t])`
      (`LuongAttentionalState(units)`); the output features are `h̃_t`. With
      `input_feeding`, `x_t = [y_{t-1}; h̃_{t-1}]` (`h̃_0 = 0`), else `x_t = y_{t-1}`.

    The logits are `output_projection(features)` (`Dense(vocab_size)`, float32).

    Sublayers: recurrent layers `<cell>_<i>` (used through their `step` API), `attention`
    (bahdanau/luong), `attentional_state` (luong), `output_projection`.

    Loop state (`initial_state` / `step`): a list of `(B, ·)` tensors, the recurrent states
    bottom layer first (`[h_0, c_0, h_1, c_1, ...]` for LSTM, `[h_0, h_1, ...]` for GRU),
    followed by `C` `(B, units)` for `"none"` or by `h̃_{t-1}` `(B, units)` for `"luong"` with
    input feeding; `state_names()` names them.

    Masking: `source_mask` gives padded source positions exactly zero attention weight. The
    target is not masked: positions past a target's end are computed like any other (their
    loss is masked by the caller); the logits carry no Keras mask.

    Dropout: in training, `dropout` is applied to the embedded targets (per element), and
    with one mask per sequence (shared by all steps) to the inputs of the layers above the
    first and to the output features; never to the loop state itself.

    XLA: with additive scores (`"bahdanau"`, `"luong"` + `"concat"`) the layer sets
    `supports_jit = False`, as the gradient of its time loop does not compile with XLA;
    Keras then trains without `jit_compile`.

    Args:
        vocab_size: int, size `V` of the target vocabulary.
        cell: `"lstm"` or `"gru"`.
        units: int, state size `U` of each recurrent layer.
        num_layers: int, number of stacked recurrent layers.
        attention: a kind registered in `kseq.models.seq2seq.rnn.attention_kinds` (`"none"`,
            `"bahdanau"`, `"luong"`); the kind builds its sublayers and runs its part of a step.
        score: Luong score function, `"dot"` (needs `H == U`), `"general"` or `"concat"`.
        attention_units: int, attention size (bahdanau, luong concat).
        input_feeding: feed `h̃_{t-1}` into the next step (luong only).
        dropout: float in [0, 1), dropout rate in training.
        seed: optional int seed of the dropout.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        embedded_targets: `(B, T, E)` embedded decoder inputs (bos-shifted targets).
        memory: `(B, S, H)` encoder outputs.
        source_mask: optional `(B, S)` bool or 0/1 tensor, 1 at real source positions.
        initial_states: list of `(B, U)` recurrent states (as `RNNEncoder` returns);
            zeros when omitted.
        training: bool, turns dropout on.

    Returns:
        `(logits, attention)`: `(B, T, V)` float32 and `(B, T, S)` weights (zeros for
        `"none"`).

    Example:
    ```python
    decoder = RNNDecoder(100, "lstm", 64, 2, attention="luong", score="general")
    logits, weights = decoder(embedded_targets, memory, source_mask, states)
    # step by step:
    state = decoder.initial_state(memory, source_mask, states)
    keys = decoder.precompute_keys(memory)
    logits_t, state, weights_t = decoder.step(embedded_token, state, memory, source_mask, keys)
    ```
    """

    def __init__(
        self,
        vocab_size,
        cell="lstm",
        units=128,
        num_layers=1,
        attention="bahdanau",
        score="general",
        attention_units=128,
        input_feeding=True,
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_positive("vocab_size", vocab_size)
        _check_choice("cell", cell, _CELLS)
        _check_positive("units", units)
        _check_positive("num_layers", num_layers)
        _check_choice("score", score, _SCORES)
        _check_positive("attention_units", attention_units)
        _check_rate(dropout)
        self.vocab_size = vocab_size
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.attention = attention
        self.score = score
        self.attention_units = attention_units
        self.input_feeding = input_feeding
        self.dropout = dropout
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.attention_kind = decoder_attention(attention, score, attention_units, input_feeding)
        # Accepts the target embedding's mask (and drops it: see "Masking").
        self.supports_masking = True
        # Declared so that Keras' `jit_compile="auto"` (XLA on GPU) falls back to plain TF
        # graphs for the kinds whose loop gradient XLA cannot compile.
        self.supports_jit = self.attention_kind.supports_xla

    # -- layout --------------------------------------------------------------------------------

    @property
    def _kinds(self):
        return _state_kinds(self.cell)

    @property
    def _num_rnn_states(self):
        return self.num_layers * len(self._kinds)

    def state_names(self):
        """Names of the loop-state tensors, in the order of the state list.

        `h_<i>` / `c_<i>` per recurrent layer (bottom first), then `summary` (`"none"`) or
        `attentional` (`"luong"` with input feeding).
        """
        names = [f"{kind}_{i}" for i in range(self.num_layers) for kind in self._kinds]
        return names + self.attention_kind.extra_state_names()

    def build(
        self,
        embedded_targets_shape,
        memory_shape,
        source_mask_shape=None,
        initial_states_shape=None,
    ):
        embed_dim, memory_dim, units = embedded_targets_shape[-1], memory_shape[-1], self.units
        kind = self.attention_kind
        input_dim = embed_dim + kind.input_width(units, memory_dim)
        self.rnn_layers = []
        for index in range(self.num_layers):
            layer = _rnn_class(self.cell)(
                units, dtype=self.dtype_policy, name=f"{self.cell}_{index}"
            )
            layer.build((None, None, input_dim))
            self.rnn_layers.append(layer)
            input_dim = units
        for name, layer in kind.build_layers(units, memory_dim, self.dtype_policy).items():
            setattr(self, name, layer)  # `attention_layer`, `attentional_state`
        feature_dim = kind.feature_width(units, memory_dim)
        self.feature_dim = feature_dim
        self.output_projection = keras.layers.Dense(
            self.vocab_size, dtype=self.dtype_policy, name="output_projection"
        )
        self.output_projection.build((None, feature_dim))

    # -- public step API -----------------------------------------------------------------------

    def _check_built(self):
        if not self.built:
            raise ValueError(
                f"RNNDecoder {self.name!r} must be built (called once, or "
                "`build(embedded_targets_shape, memory_shape)`) before its step API is used."
            )

    def precompute_keys(self, memory):
        """The source side of the attention score `(B, S, K)`; None for `"none"`."""
        self._check_built()
        if self.attention_layer is None:
            return None
        return self.attention_layer.precompute_keys(memory)

    def initial_state(self, memory, source_mask=None, initial_states=None):
        """The decoder loop state before the first step (see the class docstring).

        Args:
            memory: `(B, S, H)` encoder outputs.
            source_mask: `(B, S)` source mask (unused; part of the signature so every
                attention type has the same API).
            initial_states: list of `(B, U)` recurrent states, or None for zeros.

        Returns:
            List of `(B, ·)` tensors, named by `state_names()`.
        """
        self._check_built()
        dtype = self.compute_dtype
        if initial_states is None:
            batch = ops.shape(memory)[0]
            states = [ops.zeros((batch, self.units), dtype) for _ in range(self._num_rnn_states)]
        else:
            states = [ops.cast(s, dtype) for s in initial_states]
            if len(states) != self._num_rnn_states:
                raise ValueError(
                    f"RNNDecoder({self.cell!r}, num_layers={self.num_layers}) expects "
                    f"{self._num_rnn_states} initial state tensors. Received: {len(states)}"
                )
        top_h = states[(self.num_layers - 1) * len(self._kinds)]  # (B, U)
        return states + self.attention_kind.initial_extra(top_h)

    def step(self, embedded_token, state, memory, source_mask=None, keys=None):
        """One decoding step.

        Args:
            embedded_token: `(B, E)` embedded previous token.
            state: the loop state list (from `initial_state` or a previous `step`).
            memory: `(B, S, H)` encoder outputs.
            source_mask: optional `(B, S)` bool or 0/1 tensor.
            keys: optional `precompute_keys(memory)` result, computed per call when omitted.

        Returns:
            `(logits, new_state, attention)`: `(B, V)` float32, the new state list and the
            `(B, S)` attention weights (zeros for `"none"`).
        """
        self._check_built()
        if keys is None:
            keys = self.precompute_keys(memory)
        features, new_state, weights = self._step(
            embedded_token, list(state), memory, source_mask, keys
        )
        logits = self.output_projection(features)  # (B, V)
        return ops.cast(logits, "float32"), new_state, weights

    # -- the step ------------------------------------------------------------------------------

    def _step(self, embedded, state, memory, source_mask, keys, dropout_masks=None):
        """Features `(B, F)` before the output projection, new state, weights `(B, S)`."""
        dtype = self.compute_dtype
        embedded = ops.cast(embedded, dtype)
        memory = ops.cast(memory, dtype)
        n = self._num_rnn_states
        k = len(self._kinds)
        rnn_states, extra = state[:n], state[n:]
        kind = self.attention_kind
        top_state = rnn_states[(self.num_layers - 1) * k]  # s_{t-1} (B, U)
        x, context, weights = kind.before_step(
            self, embedded, top_state, extra, memory, source_mask, keys
        )
        new_states = []
        for index, layer in enumerate(self.rnn_layers):
            if index > 0 and dropout_masks is not None:
                x = x * dropout_masks["layers"][index - 1]
            x, layer_states = layer.step(x, rnn_states[index * k : (index + 1) * k])  # (B, U)
            new_states.extend(layer_states)
        features, new_extra, weights = kind.after_step(
            self, x, extra, context, weights, memory, source_mask, keys
        )  # x is s_t (B, U)
        new_states.extend(new_extra)
        if dropout_masks is not None:
            features = features * dropout_masks["features"]
        return features, new_states, weights

    def _dropout_masks(self, batch):
        """Per-sequence dropout masks `(B, ·)` for the layer inputs and the output features."""
        dtype = self.compute_dtype

        def mask(width):
            ones = ops.ones((batch, width), dtype)
            return keras.random.dropout(ones, self.dropout, seed=self.seed_generator)

        return {
            "layers": [mask(self.units) for _ in range(self.num_layers - 1)],
            "features": mask(self.feature_dim),
        }

    def call(
        self,
        embedded_targets,
        memory,
        source_mask=None,
        initial_states=None,
        training=None,
    ):
        dtype = self.compute_dtype
        embedded_targets = ops.cast(embedded_targets, dtype)  # (B, T, E)
        memory = ops.cast(memory, dtype)  # (B, S, H)
        shape = tf.shape(embedded_targets)
        batch, steps = shape[0], shape[1]
        source_steps = tf.shape(memory)[1]

        state = self.initial_state(memory, source_mask, initial_states)
        keys = self.precompute_keys(memory)
        dropout_masks = None
        if training and self.dropout > 0.0:
            embedded_targets = keras.random.dropout(
                embedded_targets, self.dropout, seed=self.seed_generator
            )
            dropout_masks = self._dropout_masks(batch)

        inputs = tf.transpose(embedded_targets, [1, 0, 2])  # (T, B, E)
        input_at = time_reader(inputs, training)
        buffers = [TimeBuffer(steps, batch, self.feature_dim, dtype, training)]
        if self.attention_kind.attends:  # without attention the weights are zeros: no buffer
            buffers.append(TimeBuffer(steps, batch, source_steps, dtype, training))

        def body(i, *loop):
            written, state = loop[: len(buffers)], loop[len(buffers) :]
            features, new_state, weights = self._step(
                input_at(i), list(state), memory, source_mask, keys, dropout_masks
            )
            outputs = (features, ops.cast(weights, dtype))[: len(buffers)]
            written = [b.write(w, i, o) for b, w, o in zip(buffers, written, outputs, strict=True)]
            return (i + 1, *written, *new_state)

        results = tf.while_loop(
            lambda i, *_: i < steps,
            body,
            (tf.constant(0), *(b.initial for b in buffers), *state),
            maximum_iterations=steps,
        )
        written = results[1 : 1 + len(buffers)]
        stacked = [
            tf.transpose(b.stack(w), [1, 0, 2]) for b, w in zip(buffers, written, strict=True)
        ]
        features = stacked[0]  # (B, T, F)
        attention = (
            stacked[1]
            if len(stacked) > 1
            else tf.zeros(tf.stack([batch, steps, source_steps]), dtype)
        )  # (B, T, S)
        logits = self.output_projection(features)  # (B, T, V)
        return ops.cast(logits, "float32"), attention

    def compute_output_shape(
        self,
        embedded_targets_shape,
        memory_shape,
        source_mask_shape=None,
        initial_states_shape=None,
    ):
        batch, steps = embedded_targets_shape[0], embedded_targets_shape[1]
        return (batch, steps, self.vocab_size), (batch, steps, memory_shape[1])

    def compute_output_spec(
        self, embedded_targets, memory, source_mask=None, initial_states=None, training=None
    ):
        logits_shape, attention_shape = self.compute_output_shape(
            embedded_targets.shape, memory.shape
        )
        return (
            keras.KerasTensor(logits_shape, dtype="float32"),
            keras.KerasTensor(attention_shape, dtype=self.compute_dtype),
        )

    def compute_mask(self, embedded_targets, mask=None):
        # Keras passes the first call argument and its mask; the logits carry no mask.
        return (None, None)

    config_arguments = (
        "vocab_size",
        "cell",
        "units",
        "num_layers",
        "attention",
        "score",
        "attention_units",
        "input_feeding",
        "dropout",
        "seed",
    )
