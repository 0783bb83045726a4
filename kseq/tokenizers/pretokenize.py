"""How text splits into tokens, in plain Python (no TensorFlow): the character classes that the
Python and the in-graph pre-tokenizers of `kseq.tokenizers.kinds` share, and token counts of each
tokenizer kind, so `kseq validate` can measure sequence lengths without importing TensorFlow.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata

# --------------------------------------------------------------------------------------------------
# Character classes shared by the Python and the in-graph pre-tokenizer. Both are generated from the
# same predicate, so Python `re` and RE2 (tensorflow-text) split text identically.

_CJK_RANGES = (
    (0x3007, 0x3007),  # 〇 ideographic zero (category Nl), used in Chinese dates
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0x2F800, 0x2FA1F),
)


def _single_flags() -> list[bool]:
    """Per code point: does the character always form a token of its own (punctuation, symbols,
    ASCII non-alphanumerics, CJK ideographs and kana)?"""
    flags = [unicodedata.category(chr(cp))[0] in "PS" for cp in range(sys.maxunicode + 1)]
    for cp in range(33, 127):
        flags[cp] = not chr(cp).isalnum()
    for lo, hi in _CJK_RANGES:
        flags[lo : hi + 1] = [True] * (hi + 1 - lo)
    return flags


def code_point_ranges(flags: list[bool]) -> list[tuple[int, int]]:
    """Maximal code point ranges (surrogates excluded) where `flags[cp]` holds."""
    out: list[tuple[int, int]] = []
    start = None
    for cp, ok in enumerate([*flags, False]):
        ok = ok and not 0xD800 <= cp <= 0xDFFF
        if ok and start is None:
            start = cp
        elif not ok and start is not None:
            out.append((start, cp - 1))
            start = None
    return out


def re2_class(ranges: list[tuple[int, int]]) -> str:
    parts = [f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges]
    return "[" + "".join(parts) + "]"


def _py_class(ranges: list[tuple[int, int]]) -> str:
    parts = [f"\\U{a:08X}" if a == b else f"\\U{a:08X}-\\U{b:08X}" for a, b in ranges]
    return "[" + "".join(parts) + "]"


@functools.cache
def _space_ranges() -> list[tuple[int, int]]:
    return code_point_ranges([chr(cp).isspace() for cp in range(sys.maxunicode + 1)])


@functools.cache
def _patterns() -> tuple[str, str, re.Pattern]:
    """(RE2 delimiter pattern, RE2 keep pattern, Python pattern); built once, on first use."""
    space = _space_ranges()
    single = code_point_ranges(_single_flags())
    re2_delim = f"{re2_class(space)}+|{re2_class(single)}"
    py = re.compile(f"(?P<space>{_py_class(space)}+)|{_py_class(single)}")
    return re2_delim, re2_class(single), py


@functools.cache
def whitespace_patterns() -> tuple[str, re.Pattern]:
    """(RE2, Python) patterns of a whitespace run: the pre-tokenizer's space class."""
    space = _space_ranges()
    return f"{re2_class(space)}+", re.compile(f"{_py_class(space)}+")


def is_cjk(token: str) -> bool:
    """Whether `token` is one CJK character (`_CJK_RANGES`): never glued (format version 2)."""
    return len(token) == 1 and any(lo <= ord(token) <= hi for lo, hi in _CJK_RANGES)


def pretokenize(text: str, cjk_glue: bool = False) -> list[tuple[str, bool]]:
    """Splits `text` into `(token, glued)` pairs (see the module docstring).

    `cjk_glue=True` is the format-1 behaviour: CJK characters glue like any other token.
    """
    pattern = _patterns()[2]
    out: list[tuple[str, bool]] = []
    pos = 0
    last_end = -1

    def add(start: int, end: int) -> None:
        nonlocal last_end
        token = text[start:end]
        out.append((token, start == last_end and (cjk_glue or not is_cjk(token))))
        last_end = end

    for m in pattern.finditer(text):
        if m.start() > pos:
            add(pos, m.start())
        if m.group("space") is None:
            add(m.start(), m.end())
        pos = m.end()
    if pos < len(text):
        add(pos, len(text))
    return out


def _whitespace_pieces(text: str) -> int:
    return len([piece for piece in whitespace_patterns()[1].split(text) if piece])


# Tokens a text becomes with each tokenizer kind, whatever its vocabulary (an unknown token is
# one `<unk>`); for `wordpiece`, the words it splits into: a lower bound. The tokenizer tests
# check each against the kind's `encode`.
TOKEN_COUNTS = {
    "char": len,
    "whitespace": _whitespace_pieces,
    "word": lambda text: len(pretokenize(text)),
    "wordpiece": lambda text: len(pretokenize(text)),
}
