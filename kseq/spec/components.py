"""The registries whose names specs choose from (`train.optimizer.type`, `train.loss`).

They live here so the spec package imports nothing of training; `kseq.train.components`
registers Keras factories into them, and a family registers its own losses (BERT's), when the
spec catalog imports those modules.
"""

from __future__ import annotations

from kseq.registry import Registry

optimizers: Registry = Registry("optimizer")
losses: Registry = Registry("loss")
