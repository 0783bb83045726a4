"""Tokenizers: text <-> ids, in Python and inside the graph, saved beside the model in RUN_DIR.

- `kinds`: the kinds a sequence-to-sequence spec names (`char`, `whitespace`, `word`,
  `wordpiece`), one registry; `load_tokenizer(directory)` reads any of them back.
- `bert`: BERT's WordPiece tokenizer (Google BERT's rules; Hugging Face vocabularies import).
- `pretokenize`, `special_tokens`: the pieces they share with the data readers.

Both follow one protocol, `TextTokenizer`: what `kseq.load(RUN_DIR).tokenizers` gives and what
`kseq tokenize` calls, whatever the family. This module imports no TensorFlow (`kseq validate`
reads the pre-tokenizer); its submodules do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["TextTokenizer"]


@runtime_checkable
class TextTokenizer(Protocol):
    """Text <-> ids with a fixed vocabulary, the same ids in Python and in the graph.

    Attributes:
        vocab: the tokens in id order.
        vocab_size: `len(vocab)`.
        pad_id, unk_id: the padding and unknown-token ids.
    """

    @property
    def vocab(self) -> list[str]: ...

    @property
    def vocab_size(self) -> int: ...

    @property
    def pad_id(self) -> int: ...

    @property
    def unk_id(self) -> int: ...

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, without begin/end markers."""

    def decode(self, ids) -> str:
        """The text of one id sequence (special tokens skipped)."""

    def unknown_tokens(self, text: str) -> list[str]:
        """The pieces of `text` read as the unknown token, once each, in order."""

    def tf_tokenize(self, texts) -> Any:
        """`(B,)` tf.string -> `tf.RaggedTensor` `(B, [T])` int32, equal to `encode`."""

    def options(self) -> dict:
        """The constructor options written beside the vocabulary."""

    def save(self, directory: str | Path) -> Path:
        """Write the vocabulary and options into `directory`."""
