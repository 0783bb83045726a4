"""Facts of a column of texts and the tokenizer kind they call for (`kseq init`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from kseq.data.lengths import LengthProfile
from kseq.tokenizers.pretokenize import TOKEN_COUNTS, is_cjk, pretokenize

# Space-separated pieces from an inventory this small, this short on average and with
# punctuation on at most this share of them, are symbols (phonemes, syllables, tags): one token
# each. Text with punctuation on its words takes the word tokenizer, which splits it off.
SYMBOL_INVENTORY = 2000
SYMBOL_CHARACTERS = 6.0
GLUED_SHARE = 0.01
# Texts with a space in fewer than this share are single strings (words, numbers, CJK phrases).
SPACED_SHARE = 0.5
# More distinct words than this: WordPiece, with a vocabulary of this size.
WORD_VOCABULARY = 20_000
WORDPIECE_VOCABULARY = 16_000


@dataclass
class TextFacts:
    """What `kseq init` measured of one side's texts."""

    texts: int
    characters: int  # distinct characters
    cjk_share: float  # of the characters written
    spaced_share: float  # of the texts
    pieces: int  # distinct whitespace-separated pieces
    piece_length: float  # mean characters of a piece
    words: int  # distinct words (the word tokenizer's tokens)
    kind: str  # the tokenizer kind chosen
    why: str  # the fact that chose it
    lengths: LengthProfile  # tokens per text with that kind

    @property
    def vocab_size(self) -> int | None:
        return WORDPIECE_VOCABULARY if self.kind == "wordpiece" else None


def text_facts(texts: list[str], noun: str) -> TextFacts:
    """Measure `texts` (one side of the pairs) and choose its tokenizer kind: `noun` names the
    side in the reason ("sources")."""
    characters = Counter(ch for text in texts for ch in text if not ch.isspace())
    written = sum(characters.values()) or 1
    cjk = sum(n for ch, n in characters.items() if is_cjk(ch)) / written
    spaced = sum(any(ch.isspace() for ch in text.strip()) for text in texts) / max(1, len(texts))
    pieces = Counter(piece for text in texts for piece in text.split())
    piece_length = sum(len(p) * n for p, n in pieces.items()) / max(1, sum(pieces.values()))
    words = Counter(token for text in texts for token, _ in pretokenize(text))
    # Pieces the word tokenizer splits further (punctuation on a word: "cat," or "don't").
    split = sum(n for piece, n in pieces.items() if len(pretokenize(piece)) > 1)
    glued = split / max(1, sum(pieces.values()))
    if spaced < SPACED_SHARE:
        kind = "char"
        script = "CJK " if cjk > 0.5 else ""
        why = (
            f"{noun}: {script}strings without spaces ({spaced:.0%} have one), "
            f"{len(characters):,} characters"
        )
    elif (
        glued <= GLUED_SHARE
        and len(pieces) <= SYMBOL_INVENTORY
        and piece_length <= SYMBOL_CHARACTERS
    ):
        kind = "whitespace"
        why = (
            f"{noun}: {len(pieces):,} space-separated symbols, {piece_length:.1f} characters "
            "each on average"
        )
    elif len(words) <= WORD_VOCABULARY:
        kind = "word"
        why = f"{noun}: words with punctuation, {len(words):,} distinct"
    else:
        kind = "wordpiece"
        why = f"{noun}: words, {len(words):,} distinct (over {WORD_VOCABULARY:,}): subword pieces"
    count = TOKEN_COUNTS[kind]
    return TextFacts(
        texts=len(texts),
        characters=len(characters),
        cjk_share=cjk,
        spaced_share=spaced,
        pieces=len(pieces),
        piece_length=piece_length,
        words=len(words),
        kind=kind,
        why=why,
        lengths=LengthProfile.of(count(text) for text in texts),
    )
