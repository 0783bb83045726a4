"""Recurrent layers that export to TFLite with builtin ops only.

Keras 3 `LSTM`/`GRU` lower their time loop to TensorList ops, which TFLite only runs through
Flex. The layers here keep the exact weight layout and numerics of `keras.layers.LSTM` and
`keras.layers.GRU` (so weights copy 1:1 with `set_weights(keras_layer.get_weights())`) but run
the time loop as a `tf.while_loop` whose loop state has fixed shapes:

- the input projection `x @ kernel` is computed for all steps at once, outside the loop;
- the state is `(B, U)` tensors, updated with `m * new + (1 - m) * old` under a mask;
- per-step outputs go into a `(T, B, U)` buffer through a one-hot time index (`tf.where`),
  never into a TensorArray (`TimeBuffer`; training alone, which is never exported, writes a
  TensorArray).

That loop converts to the builtin WHILE op and runs on the plain LiteRT interpreter for any
batch size and sequence length.
"""

from __future__ import annotations

import contextlib
import threading

import keras
import tensorflow as tf
from keras import activations, initializers, ops, regularizers

from kseq.layers.config import ArgumentsConfig

__all__ = [
    "ExportableBidirectional",
    "ExportableGRU",
    "ExportableLSTM",
    "TimeBuffer",
    "time_reader",
    "unrolled_time_loops",
]

_RNN_TYPES = ("lstm", "gru")
_MERGE_MODES = ("concat", "sum", "ave", "mul")
_tracing = threading.local()


@contextlib.contextmanager
def unrolled_time_loops():
    """Within: a recurrence over a time axis of static length is traced as straight-line steps.

    For static exports: accelerators compile no WHILE, and unrolled over a fixed length the same
    steps are plain ops. The numbers are those of the loop (the same step function).
    """
    previous = getattr(_tracing, "unroll", False)
    _tracing.unroll = True
    try:
        yield
    finally:
        _tracing.unroll = previous


class TimeBuffer:
    """The per-step outputs of a `tf.while_loop` over time, `(T, B, W)` once stacked.

    Inference and every export write each step into a fixed-shape buffer through a one-hot time
    index (`tf.where`): builtin TFLite ops, no TensorList. Training (`training is True`, a graph
    that is never exported) writes a `TensorArray` instead: the same values at O(B·W) a step,
    where the buffer costs O(T·B·W) a step, and as much again in the gradient.

    Use: `buffer = tb.initial`, in the loop `buffer = tb.write(buffer, t, value)`, after it
    `tb.stack(buffer)`.
    """

    def __init__(self, steps, batch, width, dtype, training):
        self.in_training = training is True
        if self.in_training:
            shape = (None, width) if isinstance(width, int) else None
            self.initial = tf.TensorArray(dtype, size=steps, element_shape=shape)
        else:
            self.time_ids = tf.range(steps)  # (T,)
            self.initial = tf.zeros(tf.stack([steps, batch, width]), dtype)

    def write(self, buffer, t, value):
        if self.in_training:
            return buffer.write(t, value)
        write = tf.reshape(tf.equal(self.time_ids, t), [-1, 1, 1])  # (T, 1, 1)
        return tf.where(write, tf.expand_dims(value, 0), buffer)

    def stack(self, buffer):
        return buffer.stack() if self.in_training else buffer  # (T, B, W)


def time_reader(sequence, training):
    """`t -> sequence[t]` for a time-major `(T, ...)` tensor inside a `tf.while_loop`.

    Inference and exports gather (builtin GATHER); training reads an unstacked `TensorArray`,
    whose gradient is one write a step, where the gradient of a gather becomes a dense `(T, ...)`
    tensor at every step.
    """
    if training is not True:
        return lambda t: tf.gather(sequence, t)
    steps = tf.TensorArray(sequence.dtype, size=tf.shape(sequence)[0]).unstack(sequence)
    return steps.read


class _ExportableRNN(ArgumentsConfig, keras.layers.Layer):
    """Shared time loop of `ExportableLSTM` and `ExportableGRU`.

    Subclasses define the number of gates (`_gates`) and of state tensors (`_num_states`), the
    bias (`_add_bias`), the input projection applied to all steps at once (`_project_inputs`)
    and one recurrent step on an already projected input (`_cell`).
    """

    _num_states = 1
    _gates = 1

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        zero_output_for_mask=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"`units` must be a positive integer. Received: units={units!r}")
        if not 0.0 <= dropout < 1.0 or not 0.0 <= recurrent_dropout < 1.0:
            raise ValueError(
                "`dropout` and `recurrent_dropout` must be in [0, 1). "
                f"Received: dropout={dropout}, recurrent_dropout={recurrent_dropout}"
            )
        self.units = units
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.seed = seed
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.zero_output_for_mask = zero_output_for_mask
        self.supports_masking = True
        self.seed_generator = keras.random.SeedGenerator(seed)

    # -- subclass hooks ------------------------------------------------------------------------

    def _read_weights(self):
        """Weights as tensors, read once per call.

        `variable.value` is the backing `tf.Variable` (autocast under mixed precision); a
        while body must capture that, not the Keras wrapper, or the converted model fails in
        READ_VARIABLE at run time.
        """
        return {
            "kernel": self.kernel.value,
            "recurrent_kernel": self.recurrent_kernel.value,
            "bias": self.bias.value if self.use_bias else None,
        }

    def _project_inputs(self, inputs, weights):
        raise NotImplementedError

    def _cell(self, projected, states, weights, recurrent_dropout_mask=None):
        raise NotImplementedError

    # -- public API ----------------------------------------------------------------------------

    def get_initial_state(self, batch_size):
        """Zero states: a list of `_num_states` tensors of shape `(B, U)`."""
        return [
            ops.zeros((batch_size, self.units), dtype=self.compute_dtype)
            for _ in range(self._num_states)
        ]

    def step(self, inputs, states, mask=None):
        """Runs one recurrent step with the layer's weights (for decoder loops).

        Args:
            inputs: `(B, D)` input at one time step.
            states: list of `(B, U)` states (`[h, c]` for LSTM, `[h]` for GRU).
            mask: optional `(B,)` bool/0-1 tensor; where 0 the states are carried unchanged
                and the returned output is the carried `h`.

        Returns:
            `(output, new_states)`: output `(B, U)` (the new `h`) and the list of new states.
            No dropout is applied (the step API is for inference decoding).
        """
        if not self.built:
            raise ValueError(
                f"{self.__class__.__name__} {self.name!r} must be built (called on a sequence, "
                "or `build((None, None, D))`) before `step` can be used."
            )
        states = [ops.cast(s, self.compute_dtype) for s in _as_list(states)]
        weights = self._read_weights()
        inputs = ops.cast(inputs, self.compute_dtype)
        projected = self._project_inputs(inputs, weights)  # (B, G*U)
        output, new_states = self._cell(projected, states, weights)
        if mask is not None:
            m = ops.expand_dims(ops.cast(mask, self.compute_dtype), -1)  # (B, 1)
            new_states = [m * n + (1.0 - m) * s for n, s in zip(new_states, states, strict=True)]
            output = new_states[0]
        return output, new_states

    def build(self, sequences_shape):
        """`kernel (D, G·U)` and `recurrent_kernel (U, G·U)` for `_gates` G, then the bias
        (`_add_bias`), in Keras's order."""
        width = self._gates * self.units
        self.kernel = self.add_weight(
            shape=(sequences_shape[-1], width),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
        )
        self.bias = self._add_bias() if self.use_bias else None

    def _add_bias(self):
        raise NotImplementedError

    def call(self, sequences, initial_state=None, mask=None, training=None):
        mask = _sequence_mask(sequences, mask)
        outputs, last_output, states = self._scan(
            sequences,
            initial_state=initial_state,
            mask=mask,
            training=training,
            go_backwards=self.go_backwards,
            zero_output_for_mask=self.zero_output_for_mask,
            return_sequences=self.return_sequences,
        )
        if self.return_sequences:
            # Keras returns a backward layer's outputs in processing order.
            output = ops.flip(outputs, axis=1) if self.go_backwards else outputs
        else:
            output = last_output
        if self.return_state:
            return (output, *states)
        return output

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, steps = sequences_shape[0], sequences_shape[1]
        output_shape = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return (output_shape, *[(batch, self.units)] * self._num_states)
        return output_shape

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, list | tuple):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * self._num_states
        return output_mask

    config_arguments = (
        "units",
        "activation",
        "recurrent_activation",
        "use_bias",
        "kernel_initializer",
        "recurrent_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "recurrent_regularizer",
        "bias_regularizer",
        "dropout",
        "recurrent_dropout",
        "seed",
        "return_sequences",
        "return_state",
        "go_backwards",
        "zero_output_for_mask",
    )

    # -- the time loop -------------------------------------------------------------------------

    def _scan(
        self,
        sequences,
        initial_state=None,
        mask=None,
        training=None,
        go_backwards=False,
        zero_output_for_mask=False,
        return_sequences=True,
    ):
        """Runs the recurrence over the whole sequence.

        Returns:
            `(outputs, last_output, states)`: outputs `(B, T, U)` in the ORIGINAL time order
            (also when `go_backwards`; None unless `return_sequences`), the output of the last
            processed step `(B, U)`, and the final states (list of `(B, U)`).
        """
        dtype = self.compute_dtype
        sequences = tf.convert_to_tensor(sequences, dtype=dtype)  # (B, T, D)
        batch = tf.shape(sequences)[0]
        steps = tf.shape(sequences)[1]

        if initial_state is None:
            states = self.get_initial_state(batch)
        else:
            states = [tf.cast(s, dtype) for s in _as_list(initial_state)]
            if len(states) != self._num_states:
                raise ValueError(
                    f"{self.__class__.__name__} expects {self._num_states} initial state "
                    f"tensor(s). Received: {len(states)}"
                )

        weights = self._read_weights()
        recurrent_dropout_mask = None
        if training and self.dropout > 0.0:
            # One mask per sequence, shared by all steps (as Keras does).
            keep = keras.random.dropout(
                ops.ones_like(sequences[:, 0, :]), self.dropout, seed=self.seed_generator
            )  # (B, D)
            sequences = sequences * ops.expand_dims(keep, 1)
        if training and self.recurrent_dropout > 0.0:
            recurrent_dropout_mask = keras.random.dropout(
                ops.ones_like(states[0]), self.recurrent_dropout, seed=self.seed_generator
            )  # (B, U)

        def all_projections():
            # One matmul over every step, time-major so a step is a gather on axis 0.
            projected = self._project_inputs(sequences, weights)  # (B, T, G*U)
            return tf.transpose(projected, [1, 0, 2])  # (T, B, G*U)

        step_mask = None
        if mask is not None:
            step_mask = tf.expand_dims(tf.transpose(tf.cast(mask, dtype)), -1)  # (T, B, 1)

        if getattr(_tracing, "unroll", False) and sequences.shape[1] is not None:
            return self._unrolled(
                all_projections(), step_mask, states, weights, recurrent_dropout_mask, go_backwards,
                zero_output_for_mask, return_sequences,
            )  # fmt: skip
        # Without return_sequences a scalar placeholder stands in for the buffer.
        outputs = (
            TimeBuffer(steps, batch, self.units, dtype, training) if return_sequences else None
        )
        buffer = outputs.initial if return_sequences else tf.zeros([], dtype)
        last_output = tf.zeros_like(states[0])  # (B, U); Keras' "previous output" starts at 0

        if training is True:
            # Training projects each step's input inside the loop, as Keras does: reading the
            # G·U-wide projections of every step costs more (measured: a bidirectional encoder's
            # training step 26% faster), and the training graph is never exported.
            inputs_at = time_reader(tf.transpose(sequences, [1, 0, 2]), training)

            def projected_at(t):
                return self._project_inputs(inputs_at(t), weights)  # (B, G*U)

        else:
            projected_at = time_reader(all_projections(), training)
        mask_at = None if step_mask is None else time_reader(step_mask, training)

        def body(i, buffer, last_output, *states):
            t = steps - 1 - i if go_backwards else i
            output, new_states = self._cell(
                projected_at(t), list(states), weights, recurrent_dropout_mask
            )
            if step_mask is not None:
                m = mask_at(t)  # (B, 1)
                new_states = [
                    m * n + (1.0 - m) * s for n, s in zip(new_states, states, strict=True)
                ]
                # Keras semantics: a padded step repeats the previous output (zero before the
                # first real step), or emits zeros with `zero_output_for_mask`.
                output = (
                    m * output if zero_output_for_mask else m * output + (1.0 - m) * last_output
                )
            if return_sequences:
                buffer = outputs.write(buffer, t, output)
            return (i + 1, buffer, output, *new_states)

        loop_vars = (tf.constant(0), buffer, last_output, *states)
        results = tf.while_loop(
            lambda i, *_: i < steps,
            body,
            loop_vars,
            # XLA needs a bound to build gradient accumulators.
            maximum_iterations=steps,
        )
        sequence = (
            tf.transpose(outputs.stack(results[1]), [1, 0, 2]) if return_sequences else None
        )  # (B, T, U)
        return sequence, results[2], list(results[3:])

    def _unrolled(
        self,
        projected,
        step_mask,
        states,
        weights,
        recurrent_dropout_mask,
        go_backwards,
        zero_output_for_mask,
        return_sequences,
    ):
        """`_scan`'s loop body over a static time axis, step by step, as the same ops."""
        steps = projected.shape[0]
        outputs = [None] * steps
        last_output = tf.zeros_like(states[0])
        for i in range(steps):
            t = steps - 1 - i if go_backwards else i
            output, new_states = self._cell(
                projected[t], list(states), weights, recurrent_dropout_mask
            )
            if step_mask is not None:
                m = step_mask[t]  # (B, 1)
                new_states = [
                    m * n + (1.0 - m) * s for n, s in zip(new_states, states, strict=True)
                ]
                output = (
                    m * output if zero_output_for_mask else m * output + (1.0 - m) * last_output
                )
            states, last_output, outputs[t] = new_states, output, output
        sequence = tf.stack(outputs, axis=1) if return_sequences else None  # (B, T, U)
        return sequence, last_output, list(states)


@keras.saving.register_keras_serializable(package="kseq")
class ExportableLSTM(_ExportableRNN):
    """Long Short-Term Memory layer that exports to builtin-only TFLite.

    Same weights (`kernel (D, 4U)`, `recurrent_kernel (U, 4U)`, `bias (4U,)`, gate order
    i, f, c, o) and numerics as `keras.layers.LSTM`, so `set_weights(lstm.get_weights())`
    copies a Keras layer exactly; the time loop is a fixed-shape `tf.while_loop` over a
    dynamic time axis (see the module docstring).

    Masking: takes a `(B, T)` mask (e.g. from `Embedding(mask_zero=True)`; unlike Keras'
    `LSTM` it is also picked up when `initial_state` is passed) and follows Keras' masked
    semantics. At a masked step the states are carried (`h = m*h_new + (1-m)*h_prev`,
    same for `c`) and the output repeats the previous step's output (zeros before the first
    real step), or is zero when `zero_output_for_mask=True`. With `go_backwards=True` the loop
    runs from the last step to the first, so on a right-padded sequence the padded steps come
    first and leave the initial state untouched: the backward pass effectively starts at the
    last real token, which makes a bidirectional encoder padding invariant. The output mask
    is the input mask when `return_sequences=True` and None otherwise.

    Args:
        units: int, size `U` of the hidden and cell states.
        activation: activation of the cell candidate and output. Defaults to `"tanh"`.
        recurrent_activation: activation of the gates. Defaults to `"sigmoid"`.
        use_bias: whether to add `bias`. Defaults to `True`.
        unit_forget_bias: initialise the forget-gate bias to one. Defaults to `True`.
        kernel_initializer: initializer of `kernel`. Defaults to `"glorot_uniform"`.
        recurrent_initializer: initializer of `recurrent_kernel`. Defaults to `"orthogonal"`.
        bias_initializer: initializer of `bias`. Defaults to `"zeros"`.
        kernel_regularizer: optional regularizer of `kernel`.
        recurrent_regularizer: optional regularizer of `recurrent_kernel`.
        bias_regularizer: optional regularizer of `bias`.
        dropout: fraction of input units dropped in training (one mask per sequence).
        recurrent_dropout: fraction of `h` units dropped before the recurrent matmul in
            training (one mask per sequence).
        seed: optional int seed of the dropout masks.
        return_sequences: return all outputs `(B, T, U)` instead of the last `(B, U)`.
        return_state: also return the final states `h, c`.
        go_backwards: process the sequence from the end; as in Keras, the returned sequence
            is then in processing (reversed) order.
        zero_output_for_mask: emit zeros at masked steps instead of the previous output.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        sequences: `(B, T, D)` float tensor.
        initial_state: optional list `[h, c]` of `(B, U)` tensors.
        mask: optional `(B, T)` bool tensor, True at real steps.
        training: bool, turns dropout on.

    Returns:
        `output`, or `(output, h, c)` with `return_state=True`, where `output` is `(B, T, U)`
        with `return_sequences=True` and `(B, U)` otherwise.

    Example:
    ```python
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(100, 16, mask_zero=True)(tokens)  # (B, T, 16)
    outputs, h, c = ExportableLSTM(32, return_sequences=True, return_state=True)(x)
    # outputs (B, T, 32), h and c (B, 32)
    ```
    """

    _num_states = 2
    _gates = 4

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = unit_forget_bias

    def _add_bias(self):
        units = self.units
        bias_initializer = self.bias_initializer
        if self.unit_forget_bias:

            def bias_initializer(shape, dtype=None):
                return ops.concatenate(
                    [
                        self.bias_initializer((units,), dtype=dtype),
                        initializers.Ones()((units,), dtype=dtype),
                        self.bias_initializer((2 * units,), dtype=dtype),
                    ]
                )

        return self.add_weight(
            shape=(4 * units,),
            name="bias",
            initializer=bias_initializer,
            regularizer=self.bias_regularizer,
        )

    def _project_inputs(self, inputs, weights):
        # Keras adds the bias after the recurrent term; keep that order (see `_cell`).
        return ops.matmul(inputs, weights["kernel"])  # (..., 4U)

    def _cell(self, projected, states, weights, recurrent_dropout_mask=None):
        h_prev, c_prev = states  # (B, U) each
        h_in = h_prev if recurrent_dropout_mask is None else h_prev * recurrent_dropout_mask
        z = projected + ops.matmul(h_in, weights["recurrent_kernel"])  # (B, 4U)
        if weights["bias"] is not None:
            z = z + weights["bias"]
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = f * c_prev + i * self.activation(z_c)
        o = self.recurrent_activation(z_o)
        h = o * self.activation(c)
        return h, [h, c]

    config_arguments = ("unit_forget_bias",)


@keras.saving.register_keras_serializable(package="kseq")
class ExportableGRU(_ExportableRNN):
    """Gated Recurrent Unit layer that exports to builtin-only TFLite.

    Same weights (`kernel (D, 3U)`, `recurrent_kernel (U, 3U)`, gate order z, r, h; `bias`
    `(2, 3U)` = input and recurrent biases with `reset_after=True`, `(3U,)` otherwise) and
    numerics as `keras.layers.GRU`, so `set_weights(gru.get_weights())` copies a Keras layer
    exactly; the time loop is a fixed-shape `tf.while_loop` over a dynamic time axis.

    Masking: as `ExportableLSTM` (states carried with `h = m*h_new + (1-m)*h_prev`; Keras'
    output semantics at masked steps; `go_backwards` starts at the last real token of a
    right-padded sequence).

    Args:
        units: int, size `U` of the hidden state.
        reset_after: apply the reset gate after the recurrent matmul (Keras default and
            cuDNN layout). Defaults to `True`.
        activation, recurrent_activation, use_bias, kernel_initializer, recurrent_initializer,
        bias_initializer, kernel_regularizer, recurrent_regularizer, bias_regularizer,
        dropout, recurrent_dropout, seed, return_sequences, return_state, go_backwards,
        zero_output_for_mask: as in `ExportableLSTM`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        sequences: `(B, T, D)` float tensor.
        initial_state: optional `(B, U)` tensor or list `[h]`.
        mask: optional `(B, T)` bool tensor, True at real steps.
        training: bool, turns dropout on.

    Returns:
        `output`, or `(output, h)` with `return_state=True`; `output` is `(B, T, U)` with
        `return_sequences=True` and `(B, U)` otherwise.

    Example:
    ```python
    x = keras.Input((None, 8))  # (B, T, 8)
    outputs, h = ExportableGRU(16, return_sequences=True, return_state=True)(x)
    # outputs (B, T, 16), h (B, 16)
    ```
    """

    _num_states = 1
    _gates = 3

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = reset_after

    def _add_bias(self):
        units = self.units
        return self.add_weight(
            shape=(2, 3 * units) if self.reset_after else (3 * units,),
            name="bias",
            initializer=self.bias_initializer,
            regularizer=self.bias_regularizer,
        )

    def _project_inputs(self, inputs, weights):
        x = ops.matmul(inputs, weights["kernel"])  # (..., 3U)
        bias = weights["bias"]
        if bias is not None:
            x = x + (bias[0] if self.reset_after else bias)
        return x

    def _cell(self, projected, states, weights, recurrent_dropout_mask=None):
        (h_prev,) = states  # (B, U)
        units = self.units
        h_in = h_prev if recurrent_dropout_mask is None else h_prev * recurrent_dropout_mask
        recurrent_kernel = weights["recurrent_kernel"]  # (U, 3U)
        bias = weights["bias"]
        x_z, x_r, x_h = ops.split(projected, 3, axis=-1)
        if self.reset_after:
            inner = ops.matmul(h_in, recurrent_kernel)  # (B, 3U)
            if bias is not None:
                inner = inner + bias[1]
            r_z, r_r, r_h = ops.split(inner, 3, axis=-1)
        else:
            inner = ops.matmul(h_in, recurrent_kernel[:, : 2 * units])  # (B, 2U)
            r_z, r_r = ops.split(inner, 2, axis=-1)
        z = self.recurrent_activation(x_z + r_z)
        r = self.recurrent_activation(x_r + r_r)
        # reset_after: r gates the projected state; otherwise the state before projection.
        if not self.reset_after:
            r_h = ops.matmul(r * h_in, recurrent_kernel[:, 2 * units :])
        else:
            r_h = r * r_h
        candidate = self.activation(x_h + r_h)
        h = z * h_prev + (1.0 - z) * candidate
        return h, [h]

    config_arguments = ("reset_after",)


@keras.saving.register_keras_serializable(package="kseq")
class ExportableBidirectional(ArgumentsConfig, keras.layers.Layer):
    """Forward and backward `ExportableLSTM`/`ExportableGRU` over the same sequence.

    Builds two recurrent layers named `forward_<rnn_type>` and `backward_<rnn_type>`; the
    weights are ordered forward (kernel, recurrent_kernel, bias) then backward, as in
    `keras.layers.Bidirectional`, so `set_weights(bidirectional.get_weights())` copies a Keras
    `Bidirectional(LSTM(...))` exactly, including its outputs at padded steps.

    Masking: the backward pass runs from the last step to the first and carries its state
    through padded steps, so on a right-padded sequence it starts at the last real token. Both
    directions are therefore padding invariant: outputs at real steps and final states do not
    depend on how much right padding follows. As in Keras' `Bidirectional`, with
    `return_sequences=True` the outputs at masked steps are zero. The output mask is the input
    mask when `return_sequences=True`.

    Args:
        units: int, state size `U` of each direction.
        rnn_type: `"lstm"` or `"gru"`.
        merge_mode: how the two output sequences are combined: `"concat"` (`2U` features),
            `"sum"`, `"ave"` or `"mul"`.
        return_sequences: return all steps `(B, T, ·)` instead of the last `(B, ·)`; the
            "last" backward output is the one at position 0 (the end of its pass).
        return_state: also return the final states of both directions.
        reset_after: GRU only, see `ExportableGRU`.
        dropout: input dropout rate of both directions.
        recurrent_dropout: recurrent dropout rate of both directions.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers of both
            directions.
        seed: optional int seed of the dropout masks.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        sequences: `(B, T, D)` float tensor.
        initial_state: optional list of forward states followed by backward states
            (`[h_f, c_f, h_b, c_b]` for LSTM, `[h_f, h_b]` for GRU).
        mask: optional `(B, T)` bool tensor, True at real steps.
        training: bool, turns dropout on.

    Returns:
        `output`, or `(output, *forward_states, *backward_states)` with `return_state=True`.
        `output` is `(B, T, 2U)` (`concat`) or `(B, T, U)` with `return_sequences=True`, and
        `(B, 2U)` / `(B, U)` otherwise.

    Example:
    ```python
    x = keras.layers.Embedding(100, 16, mask_zero=True)(keras.Input((None,), dtype="int32"))
    outputs, h_f, c_f, h_b, c_b = ExportableBidirectional(32, return_state=True)(x)
    # outputs (B, T, 64); states (B, 32)
    ```
    """

    def __init__(
        self,
        units,
        rnn_type="lstm",
        merge_mode="concat",
        return_sequences=True,
        return_state=False,
        reset_after=True,
        dropout=0.0,
        recurrent_dropout=0.0,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if rnn_type not in _RNN_TYPES:
            raise ValueError(
                f"`rnn_type` must be one of {_RNN_TYPES}. Received: rnn_type={rnn_type!r}"
            )
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                f"`merge_mode` must be one of {_MERGE_MODES}. Received: merge_mode={merge_mode!r}"
            )
        self.units = units
        self.rnn_type = rnn_type
        self.merge_mode = merge_mode
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.reset_after = reset_after
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.seed = seed
        self.supports_masking = True

    @property
    def _num_states(self):
        return 2 if self.rnn_type == "lstm" else 1

    def _make_direction(self, direction):
        kwargs = {
            "units": self.units,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "kernel_initializer": self.kernel_initializer,
            "recurrent_initializer": self.recurrent_initializer,
            "bias_initializer": self.bias_initializer,
            # Distinct seeds so the two directions do not drop the same units.
            "seed": None if self.seed is None else self.seed + int(direction == "backward"),
            "return_sequences": self.return_sequences,
            "return_state": True,
            "go_backwards": direction == "backward",
            "zero_output_for_mask": self.return_sequences,
            "dtype": self.dtype_policy,
            "name": f"{direction}_{self.rnn_type}",
        }
        if self.rnn_type == "lstm":
            return ExportableLSTM(**kwargs)
        return ExportableGRU(reset_after=self.reset_after, **kwargs)

    def build(self, sequences_shape):
        self.forward_layer = self._make_direction("forward")
        self.forward_layer.build(sequences_shape)
        self.backward_layer = self._make_direction("backward")
        self.backward_layer.build(sequences_shape)

    def call(self, sequences, initial_state=None, mask=None, training=None):
        mask = _sequence_mask(sequences, mask)
        forward_state = backward_state = None
        if initial_state is not None:
            initial_state = _as_list(initial_state)
            n = self._num_states
            if len(initial_state) != 2 * n:
                raise ValueError(
                    f"ExportableBidirectional({self.rnn_type!r}) expects {2 * n} initial state "
                    f"tensors (forward then backward). Received: {len(initial_state)}"
                )
            forward_state, backward_state = initial_state[:n], initial_state[n:]
        zero_output = self.return_sequences
        fw_outputs, fw_last, fw_states = self.forward_layer._scan(
            sequences, forward_state, mask, training, False, zero_output, self.return_sequences
        )
        # Backward outputs come back in original time order: no flip needed to align them.
        bw_outputs, bw_last, bw_states = self.backward_layer._scan(
            sequences, backward_state, mask, training, True, zero_output, self.return_sequences
        )
        if self.return_sequences:
            forward, backward = fw_outputs, bw_outputs  # (B, T, U) each
        else:
            forward, backward = fw_last, bw_last  # (B, U) each
        if self.merge_mode == "concat":
            output = ops.concatenate([forward, backward], axis=-1)
        elif self.merge_mode == "sum":
            output = forward + backward
        elif self.merge_mode == "ave":
            output = (forward + backward) / 2.0
        else:
            output = forward * backward
        if self.return_state:
            return (output, *fw_states, *bw_states)
        return output

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, steps = sequences_shape[0], sequences_shape[1]
        features = 2 * self.units if self.merge_mode == "concat" else self.units
        output_shape = (batch, steps, features) if self.return_sequences else (batch, features)
        if self.return_state:
            return (output_shape, *[(batch, self.units)] * (2 * self._num_states))
        return output_shape

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, list | tuple):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * (2 * self._num_states)
        return output_mask

    config_arguments = (
        "units",
        "rnn_type",
        "merge_mode",
        "return_sequences",
        "return_state",
        "reset_after",
        "dropout",
        "recurrent_dropout",
        "kernel_initializer",
        "recurrent_initializer",
        "bias_initializer",
        "seed",
    )


def _as_list(states):
    if isinstance(states, list | tuple):
        return list(states)
    return [states]


def _sequence_mask(sequences, mask):
    """The explicit mask, else the Keras mask attached to `sequences`.

    Keras fills `mask` automatically only when `sequences` is the sole tensor argument, so
    passing `initial_state` would silently drop an upstream `Embedding(mask_zero=True)` mask
    (as it does for `keras.layers.LSTM`); the mask is still attached to the tensor.
    """
    if mask is None:
        mask = getattr(sequences, "_keras_mask", None)
    if isinstance(mask, list | tuple):
        mask = mask[0]
    return mask
