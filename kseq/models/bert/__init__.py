"""The BERT family: encoder backbone, task heads, WordPiece data pipelines, HF import."""

# The head kinds register themselves (the data pipeline, network and export look them up).
from kseq.models.bert import heads as _heads  # noqa: E402,F401
