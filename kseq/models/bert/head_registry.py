"""The registry of BERT head kinds (the modules of `kseq.models.bert.heads` define and register
them, at `import kseq.models.bert`): the one place the data pipeline, the network builder and
the export look a head up, so none of them imports the kinds that call into them."""

from __future__ import annotations

from kseq.registry import Registry

__all__ = ["bert_head", "bert_heads", "head_of_model", "register_bert_head"]

bert_heads: Registry = Registry("head type")


def register_bert_head(cls: type) -> type:
    """Class decorator: make `cls` available under `cls.name`."""
    return bert_heads.register(cls.name)(cls)


def bert_head(name: str):
    """The head kind registered as `name`."""
    if name not in bert_heads:
        raise ValueError(f"`head`: {bert_heads.unknown_message(name)}")
    return bert_heads.get(name)()


def head_of_model(model):
    """The head kind of a built BERT model, read from the layer its head adds."""
    names = {layer.name for layer in model.layers}
    for _, kind in bert_heads.items():
        if kind.layer is not None and kind.layer in names:
            return kind()
    return bert_head("none")
