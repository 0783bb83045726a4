"""Finding a seq2seq model's layers by the names its builder gave them, for the decoding graphs."""

from __future__ import annotations

import keras

__all__ = ["token_embeddings"]


def token_embeddings(model: keras.Model) -> tuple[keras.layers.Layer, keras.layers.Layer]:
    """`(source_embedding, target_embedding)`; a model built with shared embeddings has no
    `target_embedding` layer, and the source's table serves both sides."""
    source = model.get_layer("source_embedding")
    if any(layer.name == "target_embedding" for layer in model.layers):
        return source, model.get_layer("target_embedding")
    return source, source
