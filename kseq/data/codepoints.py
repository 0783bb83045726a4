"""Unicode code points <-> char-vocabulary ids inside a graph, with builtin TFLite ops only.

An app on a phone has code points at hand (Java/Kotlin `codePoints()`, Swift `unicodeScalars`)
but no tokenizer; with these tables in the exported file it needs none. Both directions are one
GATHER from a constant table, so they run on every LiteRT runtime and accelerator.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kseq.errors import KseqError
from kseq.tokenizers.special_tokens import PAD_ID, SPECIAL_TOKENS, UNK_ID

__all__ = ["MAX_TABLE_CODE_POINT", "REPLACEMENT", "CodePointMap"]

# A table row per code point up to the vocabulary's largest, 4 bytes each: up to 1 MB for
# planes 0-3 (every script, CJK and emoji); the whole of Unicode would cost 4.4 MB, so
# vocabularies with characters from planes 4-16 (tags, private use) get no code point signature.
MAX_TABLE_CODE_POINT = 0x3FFFF
REPLACEMENT = 0xFFFD  # what `<unk>` becomes on the way out, as text decoders do with bad bytes


class CodePointMap:
    """Lookup tables of one char vocabulary (`vocab[i]` is the character of id i)."""

    @staticmethod
    def supports(tokenizer) -> bool:
        """Whether a tokenizer's ids map to code points: a char vocabulary within the bound."""
        if tokenizer.kind != "char":
            return False
        chars = tokenizer.vocab[len(SPECIAL_TOKENS) :]
        return all(ord(c) <= MAX_TABLE_CODE_POINT for c in chars)

    def __init__(self, vocab: Sequence[str]) -> None:
        chars = list(vocab[len(SPECIAL_TOKENS) :])
        if any(len(c) != 1 for c in chars):
            raise KseqError("code point signatures need a char vocabulary (one character per id)")
        points = [ord(c) for c in chars]
        top = max(points, default=0)
        if top > MAX_TABLE_CODE_POINT:
            raise KseqError(
                f"the vocabulary holds U+{top:04X}; code point signatures support characters up "
                f"to U+{MAX_TABLE_CODE_POINT:04X}"
            )
        # Row cp -> id; the extra last row catches every code point the vocabulary lacks.
        self.ids_by_code_point = np.full(top + 2, UNK_ID, np.int32)
        for token_id, point in enumerate(points, start=len(SPECIAL_TOKENS)):
            self.ids_by_code_point[point] = token_id
        self.ids_by_code_point[0] = PAD_ID  # 0 is padding, even if the vocabulary holds U+0000
        # Row id -> cp: padding, bos and eos write nothing (0), unk writes U+FFFD.
        self.code_points_by_id = np.array([0, REPLACEMENT, 0, 0, *points], np.int32)

    def to_ids(self, code_points):
        """(B, S) int32 code points, 0-padded -> (B, S) int32 ids; unknown or invalid -> unk."""
        import tensorflow as tf

        code_points = tf.convert_to_tensor(code_points, tf.int32)
        last = len(self.ids_by_code_point) - 1
        rows = tf.where(code_points < 0, last, tf.minimum(code_points, last))
        return tf.gather(tf.constant(self.ids_by_code_point), rows)

    def to_code_points(self, ids):
        """(B, L) int32 ids (0 after eos) -> (B, L) int32 code points, 0 for no character."""
        import tensorflow as tf

        return tf.gather(tf.constant(self.code_points_by_id), tf.convert_to_tensor(ids, tf.int32))

    def encode(self, texts: Sequence[str], length: int) -> np.ndarray:
        """Code points of `texts`, cut to `length` and 0-padded: what an app passes in."""
        out = np.zeros((len(texts), length), np.int32)
        for row, text in enumerate(texts):
            points = [ord(c) for c in text[:length]]
            out[row, : len(points)] = points
        return out
