"""BERT networks as flat functional Keras models with dict inputs and outputs.

Inputs (all int32, `(B, S)`): `token_ids`, `segment_ids`, `padding_mask` (1 = real token); the
masked-LM model also takes `mask_positions` `(B, P)`.

Backbone (fixed layer names, used by weight import, `init.from`, freezing and layer-wise
learning rates): `token_embedding` + `segment_embedding` + `position_embedding` ->
`embeddings_add` -> `embeddings_layer_norm` -> `embeddings_dropout` -> `transformer_layer_0` …
`transformer_layer_{N-1}` (= `sequence_output`) -> `pooler` (tanh dense on [CLS] =
`pooled_output`).

Heads: `none` outputs `sequence_output` and `pooled_output`; `classification` outputs `logits`
`(B, C)` (`classifier_dropout`, `classifier`); `token_classification` outputs `logits` `(B, S, T)`
(`tagger_dropout`, `tagger`); `span_qa` outputs `start_logits` and `end_logits` `(B, S)`
(`span_logits`); `masked_lm` outputs `logits` `(B, P, V)` (`mlm_transform`, then the
`token_embedding` matrix transposed — tied — and `mlm_bias`).

Models are flat (the backbone's layers sit directly in the task model) so that the masked-LM
head can reuse the token embedding layer and `.keras` files load in safe mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kseq.layers.embedding import ReversibleEmbedding
from kseq.layers.layer_norm import LayerNormalization
from kseq.layers.transformer import PositionEmbedding, TransformerEncoderLayer, block_arguments
from kseq.models.bert.head_layers import FirstTokenPooler
from kseq.models.bert.head_registry import bert_head, head_of_model

INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")
EMBEDDING_LAYERS = (
    "token_embedding",
    "segment_embedding",
    "position_embedding",
    "embeddings_layer_norm",
)


@dataclass
class BertConfig:
    """Everything that determines a BERT network (sizes, arithmetic, regularisation)."""

    vocab_size: int
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 2
    intermediate_size: int = 512
    max_sequence_length: int = 128
    num_segments: int = 2
    dropout: float = 0.1
    attention_dropout: float | None = None
    layer_norm_epsilon: float = 1e-12
    activation: str = "gelu"
    norm_first: bool = False
    initializer_range: float = 0.02

    @classmethod
    def from_spec(cls, model_spec, vocab_size: int) -> BertConfig:
        return cls(
            vocab_size=model_spec.vocab_size or vocab_size,
            hidden_size=model_spec.hidden_size,
            num_layers=model_spec.num_layers,
            num_heads=model_spec.num_heads,
            intermediate_size=model_spec.intermediate_size,
            max_sequence_length=model_spec.max_sequence_length,
            num_segments=model_spec.num_segments,
            dropout=model_spec.dropout,
            attention_dropout=model_spec.attention_dropout,
            layer_norm_epsilon=model_spec.layer_norm_epsilon,
            activation=model_spec.activation,
            norm_first=model_spec.norm_first,
            initializer_range=model_spec.initializer_range,
        )


def _initializer(config: BertConfig):
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


def model_inputs(with_mask_positions: bool = False) -> dict:
    inputs = {name: keras.Input((None,), dtype="int32", name=name) for name in INPUT_NAMES}
    if with_mask_positions:
        inputs["mask_positions"] = keras.Input((None,), dtype="int32", name="mask_positions")
    return inputs


def encode(inputs: dict, config: BertConfig, pooled: bool = True):
    """Apply the backbone to symbolic inputs.

    Returns:
        `(sequence_output (B, S, H), pooled_output (B, H) or None, token_embedding layer)`.
    """

    def init():  # a fresh initializer per layer
        return _initializer(config)

    token_embedding = ReversibleEmbedding(
        config.vocab_size,
        config.hidden_size,
        embeddings_initializer=init(),
        name="token_embedding",
    )
    tokens = token_embedding(inputs["token_ids"])  # (B, S, H)
    segments = keras.layers.Embedding(
        config.num_segments,
        config.hidden_size,
        embeddings_initializer=init(),
        name="segment_embedding",
    )(inputs["segment_ids"])  # (B, S, H)
    positions = PositionEmbedding(
        config.max_sequence_length, initializer=init(), name="position_embedding"
    )(tokens)  # (B, S, H)
    x = keras.layers.Add(name="embeddings_add")([tokens, segments, positions])
    x = LayerNormalization(epsilon=config.layer_norm_epsilon, name="embeddings_layer_norm")(x)
    x = keras.layers.Dropout(config.dropout, name="embeddings_dropout")(x)
    for index in range(config.num_layers):
        x = TransformerEncoderLayer(
            **block_arguments(config),
            attention_dropout=config.attention_dropout,
            kernel_initializer=init(),
            name=f"transformer_layer_{index}",
        )(x, padding_mask=inputs["padding_mask"])  # (B, S, H)
    if config.norm_first:  # pre-LN stacks end with a LayerNorm
        x = LayerNormalization(epsilon=config.layer_norm_epsilon, name="final_layer_norm")(x)
    pooled_output = None
    if pooled:
        pooled_output = FirstTokenPooler(
            config.hidden_size, kernel_initializer=init(), name="pooler"
        )(x)  # (B, H)
    return x, pooled_output, token_embedding


def build_model(
    config: BertConfig,
    head: str,
    num_labels: int | None = None,
    head_dropout: float | None = None,
    name: str = "bert",
) -> keras.Model:
    """A BERT task model (see the module docstring for inputs, outputs and layer names).

    Args:
        config: the network.
        head: `none`, `classification`, `token_classification`, `span_qa` or `masked_lm`.
        num_labels: classes (classification) or tags (token_classification).
        head_dropout: dropout before the classifier/tagger; None = `config.dropout`.
    """
    kind = bert_head(head)
    inputs = model_inputs(with_mask_positions=kind.takes_mask_positions)
    sequence, pooled, token_embedding = encode(inputs, config, pooled=kind.uses_pooler)
    encoder = {
        "sequence": sequence,
        "pooled": pooled,
        "token_embedding": token_embedding,
        "inputs": inputs,
    }
    dropout = config.dropout if head_dropout is None else head_dropout
    outputs = kind.build_outputs(encoder, config, num_labels, dropout, lambda: _initializer(config))
    return keras.Model(inputs, outputs, name=name)


def head_type(model: keras.Model) -> str:
    return head_of_model(model).name


def num_encoder_layers(model: keras.Model) -> int:
    return sum(1 for layer in model.layers if layer.name.startswith("transformer_layer_"))


def backbone_layer_names(model: keras.Model) -> list[str]:
    names = [*EMBEDDING_LAYERS]
    names += [f"transformer_layer_{i}" for i in range(num_encoder_layers(model))]
    names += ["final_layer_norm", "pooler"]
    present = {layer.name for layer in model.layers}
    return [n for n in names if n in present]


def backbone_of(model: keras.Model) -> keras.Model:
    """The encoder part of a task model (shares its layers): {sequence_output[, pooled_output]}."""
    inputs = {name: model.get_layer(name).output for name in INPUT_NAMES}
    names = {layer.name for layer in model.layers}
    last = (
        "final_layer_norm"
        if "final_layer_norm" in names
        else (f"transformer_layer_{num_encoder_layers(model) - 1}")
    )
    outputs = {"sequence_output": model.get_layer(last).output}
    if "pooler" in names:
        outputs["pooled_output"] = model.get_layer("pooler").output
    return keras.Model(inputs, outputs, name="bert_backbone")


def learning_rate_factors(model: keras.Model, decay: float) -> dict[str, float]:
    """Layer-wise learning-rate decay: factor per top-level layer name.

    Head layers (and the pooler) train at the full rate; encoder layer i of N at
    `decay ** (N - i)`; the embeddings at `decay ** (N + 1)`.
    """
    count = num_encoder_layers(model)
    factors = {layer.name: 1.0 for layer in model.layers}
    for name in EMBEDDING_LAYERS:
        factors[name] = decay ** (count + 1)
    for index in range(count):
        factors[f"transformer_layer_{index}"] = decay ** (count - index)
    return factors


def freeze(model: keras.Model, embeddings: bool, layers: int) -> None:
    """Mark the embeddings and/or the lowest `layers` encoder layers as not trainable."""
    names = (list(EMBEDDING_LAYERS) if embeddings else []) + [
        f"transformer_layer_{i}" for i in range(layers)
    ]
    present = {layer.name for layer in model.layers}
    for name in names:
        if name in present:
            model.get_layer(name).trainable = False
