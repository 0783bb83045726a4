"""Plain-Keras twins of kseq's encoder-decoders: the same architecture and sizes from stock
layers only, the yardstick of the throughput benchmark (`plain_rnn_seq2seq`,
`plain_transformer_seq2seq`).

The twin of an `rnn_seq2seq` spec: `Embedding` tables, stacked `Bidirectional(LSTM)` (or GRU)
encoder layers over the masked source, one `Dense(tanh)` bridge per decoder state where kseq's
encoder projects, and a `keras.layers.RNN` over an attention cell: stock `LSTMCell`/`GRUCell`
layers with the attention computed inside every step (Bahdanau: from the previous top state,
its context fed to the cell; Luong: after the step, with the attentional state fed back; none: the
fixed summary), then `Dense(V)`. Every weight has the shape of kseq's (the benchmark asserts equal
parameter counts); the code shares nothing with kseq.

Keras 3's `RNN` passes no constants to its cell, so the decoder layer hands the memory, its
keys and the source mask to the cell right before running the loop.
"""

from __future__ import annotations

import keras
from keras import ops

CELLS = {"lstm": (keras.layers.LSTMCell, 2), "gru": (keras.layers.GRUCell, 1)}


def _masked_softmax(scores, mask):
    scores = ops.where(mask, scores, -1e9)
    return ops.where(mask, ops.softmax(scores, axis=-1), 0.0)


class AttentionCell(keras.layers.Layer):
    """One decoder step: stacked cells with attention inside (see the module docstring)."""

    def __init__(self, attention, cell, units, layers, memory_dim, attention_units, score,
                 input_feeding, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.attention, self.units, self.layers = attention, units, layers
        self.memory_dim, self.attention_units = memory_dim, attention_units
        self.score, self.input_feeding = score, input_feeding
        cell_class, self.states_per_layer = CELLS[cell]
        self.cells = [cell_class(units) for _ in range(layers)]
        self.extra = {"none": 1, "bahdanau": 0, "luong": int(input_feeding)}[attention]
        self.state_size = [units] * (layers * self.states_per_layer + self.extra)
        self.output_size = {
            "none": 2 * units,
            "bahdanau": units + memory_dim,
            "luong": units,
        }[attention]
        self.memory = self.keys = self.mask = None

    def build(self, input_shape):
        extra_input = {
            "none": self.units,
            "bahdanau": self.memory_dim,
            "luong": self.units if self.input_feeding else 0,
        }[self.attention]
        width = input_shape[-1] + extra_input
        for cell in self.cells:
            cell.build((None, width))
            width = self.units
        dense = dict(use_bias=False)
        additive = self.attention == "bahdanau" or self.score == "concat"
        if self.attention == "luong":
            self.state_dense = keras.layers.Dense(self.units, activation="tanh", **dense)
            self.state_dense.build((None, self.memory_dim + self.units))
        if self.attention != "none" and additive:
            self.key_dense = keras.layers.Dense(self.attention_units, **dense)
            self.key_dense.build((None, None, self.memory_dim))
            self.query_dense = keras.layers.Dense(self.attention_units, **dense)
            self.query_dense.build((None, self.units))
            self.score_dense = keras.layers.Dense(1, **dense)
            self.score_dense.build((None, None, self.attention_units))
        elif self.attention == "luong" and self.score == "general":
            self.key_dense = keras.layers.Dense(self.units, **dense)
            self.key_dense.build((None, None, self.memory_dim))

    def project_memory(self, memory):
        """The keys of the score, once per source sentence."""
        if self.attention == "none" or (self.attention == "luong" and self.score == "dot"):
            return memory
        return self.key_dense(memory)

    def _attend(self, query):
        if self.attention == "bahdanau" or self.score == "concat":
            hidden = ops.tanh(self.keys + ops.expand_dims(self.query_dense(query), 1))
            scores = ops.squeeze(self.score_dense(hidden), -1)  # (B, S)
        else:
            scores = ops.sum(self.keys * ops.expand_dims(query, 1), axis=-1)  # (B, S)
        weights = _masked_softmax(scores, self.mask)
        return ops.sum(self.memory * ops.expand_dims(weights, -1), axis=1)  # (B, H)

    def call(self, inputs, states, training=None):
        count = self.layers * self.states_per_layer
        rnn_states, extra = list(states[:count]), list(states[count:])
        top = rnn_states[(self.layers - 1) * self.states_per_layer]
        context = None
        if self.attention == "bahdanau":
            context = self._attend(top)
            x = ops.concatenate([inputs, context], axis=-1)
        elif extra:
            x = ops.concatenate([inputs, extra[0]], axis=-1)
        else:
            x = inputs
        new_states = []
        for index, cell in enumerate(self.cells):
            own = rnn_states[index * self.states_per_layer : (index + 1) * self.states_per_layer]
            x, cell_states = cell(x, own, training=training)
            new_states += list(cell_states)
        if self.attention == "none":
            return ops.concatenate([x, extra[0]], axis=-1), new_states + extra
        if self.attention == "bahdanau":
            return ops.concatenate([x, context], axis=-1), new_states
        features = self.state_dense(ops.concatenate([self._attend(x), x], axis=-1))
        return features, new_states + ([features] if self.input_feeding else [])


class AttentionDecoder(keras.layers.Layer):
    """`keras.layers.RNN` over an `AttentionCell`; returns the features of every step."""

    def __init__(self, cell, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.rnn = keras.layers.RNN(cell, return_sequences=True)

    def build(self, embedded_shape, *shapes):
        self.cell.build((None, embedded_shape[-1]))  # its keys are projected before the loop

    def call(self, embedded, memory, source_mask, initial_states):
        cell = self.cell
        cell.memory, cell.keys, cell.mask = memory, cell.project_memory(memory), source_mask
        top = initial_states[-cell.states_per_layer]
        extra = [top] if cell.attention == "none" else []
        if cell.attention == "luong" and cell.input_feeding:
            extra = [ops.zeros_like(top)]
        return self.rnn(embedded, initial_state=[*initial_states, *extra])


def padded_batches(pairs, batch_size: int, seed: int, bos_id: int = 2, eos_id: int = 3):
    """The plain pipeline: shuffled pairs, each batch padded to its longest row (no bucketing).

    `pairs` are `(source ids, target ids)` lists without bos/eos, as kseq's pipeline takes them.
    """
    import tensorflow as tf

    sources = tf.ragged.constant([s for s, _ in pairs], dtype=tf.int32)
    target_in = tf.ragged.constant([[bos_id, *t] for _, t in pairs], dtype=tf.int32)
    target_out = tf.ragged.constant([[*t, eos_id] for _, t in pairs], dtype=tf.int32)
    dataset = tf.data.Dataset.from_tensor_slices((sources, target_in, target_out))
    dataset = dataset.shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(lambda s, i, o: ({"source": s, "target_in": i}, o))
    return dataset.padded_batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _compiled(spec, model: keras.Model) -> keras.Model:
    """`model` compiled as kseq compiles its own: the spec's Adam, padding left out of the loss."""
    optimizer = spec.train.optimizer
    model.compile(
        optimizer=keras.optimizers.Adam(optimizer.learning_rate, clipnorm=optimizer.clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    return model


def plain_rnn_seq2seq(spec, source_vocab: int, target_vocab: int) -> keras.Model:
    """The twin of `spec` (an `rnn_seq2seq` spec), compiled like kseq's model."""
    m = spec.model
    enc, dec, att = m.encoder, m.decoder, m.attention
    source = keras.Input((None,), dtype="int32", name="source")
    target_in = keras.Input((None,), dtype="int32", name="target_in")
    source_embedding = keras.layers.Embedding(source_vocab, m.embedding_dim)
    target_embedding = (
        source_embedding
        if m.shared_embeddings
        else keras.layers.Embedding(target_vocab, m.embedding_dim)
    )
    source_mask = ops.not_equal(source, 0)
    x = source_embedding(source)
    cell_class = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[enc.cell]
    layer_states = []
    for _ in range(enc.layers):
        rnn = cell_class(enc.units, return_sequences=True, return_state=True)
        if enc.bidirectional:
            x, *states = keras.layers.Bidirectional(rnn)(x, mask=source_mask)
            half = len(states) // 2
            states = [
                keras.layers.Concatenate()([f, b])
                for f, b in zip(states[:half], states[half:], strict=True)
            ]
        else:
            x, *states = rnn(x, mask=source_mask)
        layer_states.append(states)
    memory = x * ops.expand_dims(ops.cast(source_mask, x.dtype), -1)  # zero at padding
    kinds = CELLS[dec.cell][1]
    projects = not (enc.cell == dec.cell and not enc.bidirectional and enc.units == dec.units)
    initial = []
    for layer in range(dec.layers):
        states = layer_states[max(0, enc.layers - dec.layers + layer)]
        for kind in range(kinds):
            state = states[kind] if kind < len(states) else states[0]
            if projects:
                state = keras.layers.Dense(dec.units, activation="tanh")(state)
            initial.append(state)
    memory_dim = enc.units * (2 if enc.bidirectional else 1)
    cell = AttentionCell(
        att.type, dec.cell, dec.units, dec.layers, memory_dim, att.units, att.score,
        att.input_feeding,
    )  # fmt: skip
    features = AttentionDecoder(cell)(target_embedding(target_in), memory, source_mask, initial)
    logits = keras.layers.Dense(target_vocab, dtype="float32")(features)
    return _compiled(spec, keras.Model({"source": source, "target_in": target_in}, logits))


class TiedOutput(keras.layers.Layer):
    """`h · Eᵀ + b` with an `Embedding`'s own table (the one weight stock Keras lacks)."""

    def __init__(self, embedding, **kwargs):
        super().__init__(**kwargs)
        self.embedding = embedding

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(self.embedding.input_dim,), initializer="zeros")

    def call(self, hidden):
        return ops.matmul(hidden, ops.transpose(self.embedding.embeddings)) + self.bias


class AddSinusoids(keras.layers.Layer):
    """`x + PE[:T]`: fixed sinusoidal encodings of positions 0 … T - 1 (no weights)."""

    def __init__(self, length=4096, **kwargs):
        super().__init__(**kwargs)
        import numpy as np

        self.table = None
        self._positions = np.arange(length)[:, None]

    def build(self, input_shape):
        import numpy as np

        width = input_shape[-1]
        rates = np.exp(-(np.arange(width) // 2 * 2) / width * np.log(10000.0))[None]
        angles = self._positions * rates + (np.arange(width) % 2)[None] * (np.pi / 2)
        self.table = np.sin(angles).astype("float32")  # (L, D)

    def call(self, x):
        import tensorflow as tf

        return x + tf.constant(self.table)[: tf.shape(x)[1]]

    def compute_output_shape(self, input_shape):
        return input_shape


def plain_transformer_seq2seq(spec, source_vocab: int, target_vocab: int) -> keras.Model:
    """The twin of a `transformer_seq2seq` spec from stock layers (`MultiHeadAttention`,
    `LayerNormalization`, `Dense`, `Embedding`), compiled like kseq's model.

    Pre-LN or post-LN blocks as the spec says; sinusoidal positions; a tied output through the
    target embedding's table when `tie_output`. Learned positions are not covered.
    """
    m = spec.model
    if m.positions != "sinusoidal":
        raise ValueError("the Transformer twin covers sinusoidal positions only")
    width, heads = m.hidden_size, m.num_heads
    source = keras.Input((None,), dtype="int32", name="source")
    target_in = keras.Input((None,), dtype="int32", name="target_in")
    source_embedding = keras.layers.Embedding(source_vocab, width)
    target_embedding = (
        source_embedding if m.shared_embeddings else keras.layers.Embedding(target_vocab, width)
    )

    def embed(ids, embedding):
        return AddSinusoids()(embedding(ids) * (width**0.5))

    def norm():
        return keras.layers.LayerNormalization(epsilon=m.layer_norm_epsilon)

    def residual(x, sublayer, layer_norm):
        if m.norm_first:
            return x + sublayer(layer_norm(x))
        return layer_norm(x + sublayer(x))

    def feedforward():
        inner = keras.layers.Dense(m.intermediate_size, activation=m.activation)
        outer = keras.layers.Dense(width)
        return lambda x: outer(inner(x))

    def attention():
        return keras.layers.MultiHeadAttention(heads, width // heads, dropout=m.dropout)

    source_mask = ops.not_equal(source, 0)
    padding = ops.expand_dims(source_mask, 1)  # (B, 1, S)
    x = embed(source, source_embedding)
    for _ in range(m.encoder_layers):
        mha = attention()
        x = residual(x, lambda h, mha=mha: mha(h, h, attention_mask=padding), norm())
        x = residual(x, feedforward(), norm())
    memory = norm()(x) if m.norm_first else x
    y = embed(target_in, target_embedding)
    for _ in range(m.decoder_layers):
        own, cross = attention(), attention()
        y = residual(y, lambda h, own=own: own(h, h, use_causal_mask=True), norm())
        y = residual(y, lambda h, cross=cross: cross(h, memory, attention_mask=padding), norm())
        y = residual(y, feedforward(), norm())
    if m.norm_first:
        y = norm()(y)
    if m.tie_output:
        logits = TiedOutput(target_embedding)(y)
    else:
        logits = keras.layers.Dense(target_vocab, dtype="float32")(y)
    return _compiled(spec, keras.Model({"source": source, "target_in": target_in}, logits))
