"""Every model family, once, named by module: importing a family's spec module registers its
`type:` name (and the spec class names the family's `Family` class, imported only when a model
is built or loaded); `kseq.train.components` registers the optimizers and losses specs choose.

Named as strings, so the spec package imports nothing of the families or of training (it is a
leaf: they import it). Spec modules are pure Python (no TensorFlow): `kseq validate` stays fast.
"""

from __future__ import annotations

import importlib

MODULES = (
    "kseq.train.components",
    "kseq.models.autoencoder.spec",
    "kseq.models.bert.spec",
    "kseq.models.seq2seq.rnn.spec",
    "kseq.models.seq2seq.transformer.spec",
)

for _module in MODULES:
    importlib.import_module(_module)
