"""Spec class of the Transformer encoder-decoder family (`model.type: transformer_seq2seq`)."""

from __future__ import annotations

from typing import Literal

from kseq.data.lengths import AUTO
from kseq.models.seq2seq.text_spec import DecodeSpec, TextPairDataSpec
from kseq.spec.common import ModelSpec, check_heads_divide_width
from kseq.spec.fields import option, variant


@variant("transformer_seq2seq")
class TransformerSeq2SeqSpec(ModelSpec):
    """Encoder-decoder Transformer (Vaswani et al., 2017) over padded token sequences."""

    family = "kseq.models.seq2seq.transformer.family:TransformerSeq2SeqFamily"
    hidden_size: int = option(
        128, min=1, max=65_536, help="model width D (embeddings, attention, residuals)"
    )
    num_heads: int = option(4, min=1, max=1024, help="attention heads; must divide hidden_size")
    intermediate_size: int = option(512, min=1, max=262_144, help="feed-forward width")
    encoder_layers: int = option(2, min=1, max=24)
    decoder_layers: int = option(2, min=1, max=24)
    dropout: float = option(
        0.1, min=0.0, below=1.0, help="on embeddings, sublayer outputs and attention weights"
    )
    activation: Literal["relu", "gelu", "gelu_approximate", "silu"] = option(
        "relu", help="feed-forward activation"
    )
    positions: Literal["sinusoidal", "learned"] = option(
        "sinusoidal", help="fixed sinusoidal or learned position encodings"
    )
    max_length: int | None = option(
        None,
        min=1,
        max=1_000_000,
        help="positions the model holds, source and target (bos included); null = "
        "data.max_source_length for the source, data.max_target_length + 1 for the target",
    )
    norm_first: bool = option(True, help="pre-LN (LayerNorm before each sublayer); false = post-LN")
    layer_norm_epsilon: float = option(1e-6, above=0.0)
    shared_embeddings: bool = option(False, help="one embedding table (needs a shared vocab)")
    tie_output: bool = option(False, help="logits = h · Eᵀ + b with the target embedding table")
    label_smoothing: float = option(0.0, min=0.0, below=1.0)

    data_spec = TextPairDataSpec
    decode_spec = DecodeSpec
    default_loss = "masked_sparse_crossentropy"

    def check(self, checker, path):
        check_heads_divide_width(checker, path, self.hidden_size, self.num_heads)

    def check_with_data(self, checker, data: TextPairDataSpec):
        if self.shared_embeddings:
            data.require_shared_vocabulary(checker, "model.shared_embeddings")
        # Positions for the source and for the target with its bos; `auto` is bounded instead.
        given = [(data.max_source_length, 0), (data.max_target_length, 1)]
        needed = max((n + extra for n, extra in given if n != AUTO), default=0)
        if self.max_length is not None and needed and self.max_length < needed:
            checker.fail(
                "model.max_length",
                "shorter than the data (max_source_length, max_target_length + 1)",
                f">= {needed}",
                self.max_length,
            )

    def source_positions(self, data: TextPairDataSpec) -> int:
        """Rows of the source position table."""
        return self.max_length or data.max_source_length

    def target_positions(self, data: TextPairDataSpec) -> int:
        """Rows of the target position table, also the decoder cache length."""
        return self.max_length or data.max_target_length + 1
