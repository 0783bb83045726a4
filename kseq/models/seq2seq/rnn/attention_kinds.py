"""How each attention kind plugs into the recurrent decoder (`RNNDecoder`): one registry.

An attention kind declares what the decoder needs of it and runs its part of a step: when the
query is taken (`before_step`, from the previous top state, or `after_step`), how much it
widens the recurrent input, the width of the features before the output projection, the width
of its precomputed keys, the extra loop state it carries, whether XLA compiles its training
loop, and its matmul cost; it builds its own sublayers. `RNNDecoder`, the decoding graph, the
spec and the benchmarks ask the kind; none of them compares attention names.

A new kind is a subclass with `@register_decoder_attention`; `decoder_attention(name, ...)`
makes one from the decoder's arguments.

Importing this module does not import TensorFlow (the spec loader reads the declarations);
the methods that build layers or compute import Keras when they run.
"""

from __future__ import annotations

from typing import ClassVar

from kseq.registry import Registry

__all__ = [
    "DecoderAttention",
    "decoder_attention",
    "decoder_attention_names",
    "decoder_attentions",
    "register_decoder_attention",
]

decoder_attentions: Registry = Registry("attention type")


def register_decoder_attention(cls: type[DecoderAttention]) -> type[DecoderAttention]:
    """Class decorator: make `cls` available under `cls.name`."""
    return decoder_attentions.register(cls.name)(cls)


def decoder_attention_names() -> list[str]:
    """The registered kinds (the spec's choices)."""
    return decoder_attentions.names()


def decoder_attention(
    name: str, score: str = "general", units: int = 128, input_feeding: bool = True
) -> DecoderAttention:
    """The kind registered as `name`, configured by the decoder's attention arguments."""
    if name not in decoder_attentions:
        raise ValueError(f"`attention`: {decoder_attentions.unknown_message(name)}")
    return decoder_attentions.get(name)(score=score, units=units, input_feeding=input_feeding)


class DecoderAttention:
    """One attention kind of the recurrent decoder, configured (a plain object, no weights).

    Shapes: `B` batch, `S` source length, `H` memory width, `U` decoder units, `E` embedded
    target width. The decoder's loop state is its recurrent states followed by `extra`, the
    `extra_state_names()` tensors, each `(B, U)`.

    Args:
        score: Luong's score function (`"dot"`, `"general"`, `"concat"`); others ignore it.
        units: attention size, where the kind has one.
        input_feeding: Luong's input feeding; others ignore it.
    """

    name: ClassVar[str]
    attends: ClassVar[bool] = True  # False: no attention weights (all zeros)

    def __init__(self, score: str = "general", units: int = 128, input_feeding: bool = True):
        self.score = score
        self.units = units
        self.input_feeding = input_feeding

    @property
    def label(self) -> str:
        """How reports name this kind."""
        return self.name

    # -- what the decoder needs --------------------------------------------------------------
    def input_width(self, units: int, memory_dim: int) -> int:
        """Width this kind adds to the bottom recurrent layer's input."""
        return 0

    def feature_width(self, units: int, memory_dim: int) -> int:
        """Width of the features the output projection reads."""
        return units

    def key_width(self, units: int, memory_dim: int) -> int | None:
        """Width `K` of the precomputed keys `(B, S, K)`; None when there are none of their own
        (no attention, or keys that are the memory itself)."""
        return None

    def extra_state_names(self) -> list[str]:
        """Names of the extra loop-state tensors, each `(B, U)`."""
        return []

    @property
    def supports_xla(self) -> bool:
        """Whether XLA compiles the gradient of the decoder's time loop with this kind."""
        return True

    def check_widths(self, units: int, memory_dim: int) -> tuple[str, str, str] | None:
        """`(field, problem, expected)` when the sizes cannot work, else None."""
        return None

    def matmul_flops(self, units: int, memory_dim: int, source_len: int) -> tuple[int, int]:
        """Matmul FLOPs (×2 per multiply-add): once per source, and per decoding step
        (projecting the features excluded)."""
        return 0, 0

    # -- sublayers and the step --------------------------------------------------------------
    def build_layers(self, units: int, memory_dim: int, dtype) -> dict:
        """The kind's built sublayers by decoder attribute name (`attention_layer`, ...)."""
        return {"attention_layer": None}

    def initial_extra(self, top_h) -> list:
        """The extra state before the first step, from the top layer's initial `h` `(B, U)`."""
        return []

    def before_step(self, decoder, embedded, top_state, extra, memory, mask, keys):
        """`(x (B, E + input_width), context or None, weights or None)` before the RNN step."""
        return embedded, None, None

    def after_step(self, decoder, top, extra, context, weights, memory, mask, keys):
        """`(features (B, feature_width), new extra, weights (B, S))` after the RNN step."""
        raise NotImplementedError


@register_decoder_attention
class NoAttention(DecoderAttention):
    """`"none"` (Cho et al., 2014): the fixed summary `C` (the top layer's initial `h`) joins
    every input, `x_t = [y_{t-1}; C]`, and the features `[s_t; C]`; the weights are zeros."""

    name = "none"
    attends = False

    def input_width(self, units, memory_dim):
        return units

    def feature_width(self, units, memory_dim):
        return 2 * units

    def extra_state_names(self):
        return ["summary"]

    def initial_extra(self, top_h):
        return [top_h]

    def before_step(self, decoder, embedded, top_state, extra, memory, mask, keys):
        from keras import ops

        return ops.concatenate([embedded, extra[0]], axis=-1), None, None  # (B, E + U)

    def after_step(self, decoder, top, extra, context, weights, memory, mask, keys):
        import tensorflow as tf
        from keras import ops

        features = ops.concatenate([top, extra[0]], axis=-1)  # (B, 2U)
        return features, [extra[0]], tf.zeros(tf.shape(memory)[:2], decoder.compute_dtype)


@register_decoder_attention
class Bahdanau(DecoderAttention):
    """`"bahdanau"` (Bahdanau et al., 2015): `c_t, a_t = attend(s_{t-1}, M)` with the additive
    score; the RNN reads `x_t = [y_{t-1}; c_t]`; the features are `[s_t; c_t]`."""

    name = "bahdanau"

    def input_width(self, units, memory_dim):
        return memory_dim

    def feature_width(self, units, memory_dim):
        return units + memory_dim

    def key_width(self, units, memory_dim):
        return self.units

    @property
    def supports_xla(self):
        # The additive score's tensordot on (B, 1, S, A) has a loop-accumulated transpose
        # permutation in the while loop's gradient, which XLA cannot compile.
        return False

    def matmul_flops(self, units, memory_dim, source_len):
        keys = 2 * memory_dim * self.units * source_len
        step = 2 * units * self.units + 3 * self.units * source_len + 2 * memory_dim * source_len
        return keys, step

    def build_layers(self, units, memory_dim, dtype):
        from kseq.models.seq2seq.rnn.attention import BahdanauAttention  # Keras: loaded on use

        layer = BahdanauAttention(self.units, dtype=dtype, name="attention")
        layer.build((None, units), (None, None, memory_dim))
        return {"attention_layer": layer}

    def before_step(self, decoder, embedded, top_state, extra, memory, mask, keys):
        from keras import ops

        context, weights = decoder.attention_layer(top_state, memory, mask, keys=keys)
        return ops.concatenate([embedded, context], axis=-1), context, weights  # (B, E + H)

    def after_step(self, decoder, top, extra, context, weights, memory, mask, keys):
        from keras import ops

        return ops.concatenate([top, context], axis=-1), [], weights  # (B, U + H)


@register_decoder_attention
class Luong(DecoderAttention):
    """`"luong"` (Luong et al., 2015): the RNN steps first, then `c_t, a_t = attend(s_t, M)` with
    the `score` function and `h̃_t = tanh(W_c [c_t; s_t])`, the features. With input feeding
    `x_t = [y_{t-1}; h̃_{t-1}]` (`h̃_0 = 0`), else `x_t = y_{t-1}`."""

    name = "luong"

    @property
    def label(self):
        return f"luong ({self.score})"

    def input_width(self, units, memory_dim):
        return units if self.input_feeding else 0

    def key_width(self, units, memory_dim):
        return {"dot": None, "general": units, "concat": self.units}[self.score]

    def extra_state_names(self):
        return ["attentional"] if self.input_feeding else []

    @property
    def supports_xla(self):
        return self.score != "concat"  # additive, as Bahdanau's

    def check_widths(self, units, memory_dim):
        if self.score == "dot" and memory_dim != units:
            return (
                "score",
                f"dot scores need encoder outputs ({memory_dim}) as wide as the decoder ({units})",
                "score general or concat, or matching sizes",
            )
        return None

    def matmul_flops(self, units, memory_dim, source_len):
        keys, step = 0, 2 * units * source_len
        if self.score == "general":
            keys = 2 * memory_dim * units * source_len
        elif self.score == "concat":
            keys = 2 * memory_dim * self.units * source_len
            step = 2 * units * self.units + 3 * self.units * source_len
        step += 2 * memory_dim * source_len + 2 * (memory_dim + units) * units  # context, h̃
        return keys, step

    def build_layers(self, units, memory_dim, dtype):
        from kseq.models.seq2seq.rnn.attention import (  # Keras: loaded on use
            LuongAttention,
            LuongAttentionalState,
        )

        attention = LuongAttention(self.score, units=self.units, dtype=dtype, name="attention")
        attention.build((None, units), (None, None, memory_dim))
        state = LuongAttentionalState(units, dtype=dtype, name="attentional_state")
        state.build((None, memory_dim), (None, units))
        return {"attention_layer": attention, "attentional_state": state}

    def initial_extra(self, top_h):
        from keras import ops

        # h̃_0 = 0, written as top_h - top_h: LiteRT's CompiledModel keeps the first shape of a
        # ZEROS_LIKE tensor after the batch is resized (the values are the same for finite h).
        return [ops.subtract(top_h, top_h)] if self.input_feeding else []

    def before_step(self, decoder, embedded, top_state, extra, memory, mask, keys):
        from keras import ops

        if self.input_feeding:
            return ops.concatenate([embedded, extra[0]], axis=-1), None, None  # (B, E + U)
        return embedded, None, None

    def after_step(self, decoder, top, extra, context, weights, memory, mask, keys):
        context, weights = decoder.attention_layer(top, memory, mask, keys=keys)
        features = decoder.attentional_state(context, top)  # h̃_t (B, U)
        return features, [features] if self.input_feeding else [], weights
