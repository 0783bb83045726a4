"""The BERT family: encoder backbone, task heads, WordPiece data pipelines, HF import."""
