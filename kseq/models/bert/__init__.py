"""The BERT family: encoder backbone, task heads, WordPiece data pipelines, HF import."""

# The head kinds register themselves (the data pipeline, network and export look them up).
from kseq.models.bert import head_kinds as _head_kinds  # noqa: E402,F401
