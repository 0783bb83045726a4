"""Tokenizers for the seq2seq families: `char`, `whitespace`, `word` and `wordpiece`.

Every kind offers the same interface twice, once in Python (lists of ints) and once as TensorFlow /
tensorflow-text ops for in-graph string signatures, and the two give identical ids:

    tok = tokenizers.get("wordpiece")()
    tok.fit(train_texts, vocab_size=2000)
    tok.encode(["Mar 3, 99"])            # [[...]] python ints, no <s>/</s> added
    tok.tf_tokenize(tf.constant([...]))  # tf.RaggedTensor (B, [T]) int32, same ids
    tok.decode(ids)                      # str
    tok.tf_detokenize(ids)               # (B, L) int32, 0-padded -> tf.string (B,)
    tok.save(directory); load_tokenizer(directory)

Special tokens are fixed for every kind: `<pad>`=0, `<unk>`=1, `<s>`=2, `</s>`=3.

`whitespace`: text is split at whitespace only (`str.isspace`) and every piece is one token
(phoneme strings such as `K AE T`); `decode` joins tokens with one space.

Pre-tokenization (`word` and `wordpiece`): text is split at whitespace (`str.isspace`, which
includes U+3000 and U+00A0); every punctuation or symbol character (Unicode categories P* and S*,
plus all ASCII non-alphanumerics) and every CJK ideograph / kana character is a token of its own; no
lower-casing and no Unicode normalisation. A token that touches the previous one without whitespace
in between is *glued*; glued tokens carry the `##` prefix in the vocabulary (as WordPiece
continuation pieces do), so "Mar 3, 99" becomes `Mar 3 ##, 99`. A CJK character is never glued, so
it has one id wherever it stands, and decoding writes no space before it: "1999年3月" becomes
`1999 年 ##3 月` (the token after a CJK character keeps its own glue: "月2" vs "月 2"). This makes
`decode` the inverse of `encode` up to whitespace normalisation: `decode(encode(x))` is
`" ".join(x.split())` without the spaces before CJK characters, for text without unknown tokens.
Tokenizers saved with format version 1 glued CJK characters like any other token (`##年`); they
load with that behaviour (option `cjk_glue: true`) so their ids do not change.

Decoding (all kinds, Python and TF alike): `<pad>` and `<s>` are skipped, output stops at the
first `</s>`, `<unk>` is rendered as the text "<unk>". `char` concatenates characters;
`whitespace` joins tokens with one space; `word`/`wordpiece` join tokens with one space except
before glued (`##`) tokens and CJK characters.

Files (`save`/`load`): `vocab.txt` (UTF-8, one token per line in id order, starting with the four
special tokens; a backslash is written `\\\\`, whitespace and non-printable characters as
`\\uXXXX` / `\\UXXXXXXXX`) and `tokenizer.json`
(`{"kind": ..., "format_version": 2, "options": {...}}`).
"""

from __future__ import annotations

import heapq
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import tensorflow as tf
import tensorflow_text as tf_text

from kseq.errors import KseqError
from kseq.registry import Registry
from kseq.tokenizers.pretokenize import (  # noqa: F401  (re-exported: the tokenizers' public names)
    _CJK_RANGES,
    _patterns,
    code_point_ranges,
    is_cjk,
    pretokenize,
    re2_class,
    whitespace_patterns,
)
from kseq.tokenizers.special_tokens import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK,
    UNK_ID,
)

GLUE = "##"
VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "tokenizer.json"
FORMAT_VERSION = 2  # 2: CJK characters are never glued (v1 files keep `cjk_glue`)

tokenizers: Registry[type[Tokenizer]] = Registry("tokenizer")


_CJK_RE2 = re2_class(list(_CJK_RANGES))


def tf_pretokenize(
    texts: tf.Tensor, cjk_glue: bool = False
) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """In-graph `pretokenize`: (B,) tf.string -> tokens (B, [W]) tf.string, glued (B, [W]) bool."""
    delim, keep, _ = _patterns()
    tokens, begin, end = tf_text.regex_split_with_offsets(texts, delim, keep)
    rowids = tokens.value_rowids()
    row_start = tf.gather(tokens.row_starts(), rowids)
    position = tf.range(tf.shape(rowids, out_type=tf.int64)[0]) - row_start
    prev_end = tf.concat([tf.constant([-1], tf.int64), end.values], axis=0)[:-1]
    glued = (position > 0) & tf.equal(begin.values, prev_end)
    if not cjk_glue:
        glued &= ~tf.strings.regex_full_match(tokens.flat_values, _CJK_RE2)
    return tokens, tokens.with_flat_values(glued)


# --------------------------------------------------------------------------------------------------
# vocab.txt escaping


def _escape(token: str) -> str:
    out = []
    for ch in token:
        if ch == "\\":
            out.append("\\\\")
        elif ch.isspace() or not ch.isprintable():
            cp = ord(ch)
            out.append(f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}")
        else:
            out.append(ch)
    return "".join(out)


_UNESCAPE = re.compile(r"\\(\\|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})")


def _unescape(line: str) -> str:
    def one(m: re.Match) -> str:
        return "\\" if m.group(1) == "\\" else chr(int(m.group(1)[1:], 16))

    return _UNESCAPE.sub(one, line)


def _check_texts(texts: Any, what: str) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{what} expects a list of strings, not one string; use {what}([text])")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{what} expects strings; item {i} is {type(t).__name__}")
    return texts


class _State:
    """Plain-Python vocabulary state (kept out of tf.Module attribute tracking)."""

    def __init__(self, vocab: list[str], surface: list[str], glued: list[bool]):
        self.vocab = vocab
        self.index = {tok: i for i, tok in enumerate(vocab)}
        self.surface = surface
        self.glued = glued


class Tokenizer(tf.Module):
    """Base class: vocabulary handling, decoding, files. Subclasses define how text becomes tokens.

    A tokenizer is a `tf.Module`: attach it to the exported module (or `ExportArchive.track` it) so
    the lookup tables used by `tf_tokenize` are saved with the SavedModel.
    """

    kind: ClassVar[str] = ""

    def __init__(self, name: str | None = None):
        super().__init__(name=name or f"{self.kind}_tokenizer")
        self._state: _State | None = None

    # ---- vocabulary ------------------------------------------------------------------------------
    @property
    def vocab(self) -> list[str]:
        return list(self._require().vocab)

    @property
    def vocab_size(self) -> int:
        return len(self._require().vocab)

    pad_id = property(lambda self: PAD_ID)
    unk_id = property(lambda self: UNK_ID)
    bos_id = property(lambda self: BOS_ID)
    eos_id = property(lambda self: EOS_ID)

    def token_to_id(self, token: str) -> int:
        return self._require().index.get(token, UNK_ID)

    def id_to_token(self, token_id: int) -> str:
        return self._require().vocab[token_id]

    def options(self) -> dict[str, Any]:
        """Kind-specific constructor options, written to tokenizer.json."""
        return {}

    @classmethod
    def _upgrade_options(cls, options: dict[str, Any], version: int) -> dict[str, Any]:
        """Options of a file written with an older `format_version`, as this version reads them."""
        return options

    def _require(self) -> _State:
        if self._state is None:
            raise KseqError(f"{self.kind} tokenizer has no vocabulary: call fit() or load() first")
        return self._state

    def _set_vocab(self, vocab: list[str]) -> None:
        if tuple(vocab[:4]) != SPECIAL_TOKENS:
            raise KseqError(
                f"vocabulary must start with {', '.join(SPECIAL_TOKENS)}; Received: {vocab[:4]!r}"
            )
        if len(set(vocab)) != len(vocab):
            dup = next(t for t, c in Counter(vocab).items() if c > 1)
            raise KseqError(f"vocabulary has duplicate token {dup!r}")
        surface, glued = zip(*(self._surface(t) for t in vocab), strict=True)
        self._state = _State(list(vocab), list(surface), list(glued))
        with tf.init_scope():
            self._detok_surface = tf.constant(surface, tf.string)
            self._detok_glued = tf.constant(glued, tf.bool)
            self._build_tf(vocab)

    @staticmethod
    def _vocab_budget(vocab_size: int | None) -> int | None:
        if vocab_size is None:
            return None
        if not isinstance(vocab_size, int) or vocab_size <= len(SPECIAL_TOKENS):
            raise KseqError(
                f"vocab_size must be an integer > {len(SPECIAL_TOKENS)} (it includes the special "
                f"tokens); Received: vocab_size={vocab_size!r}"
            )
        return vocab_size - len(SPECIAL_TOKENS)

    @staticmethod
    def _ranked(counts: Counter, min_count: int, budget: int | None) -> list[str]:
        kept = (t for t, c in counts.items() if c >= min_count)
        items = sorted(kept, key=lambda t: (-counts[t], t))
        return items if budget is None else items[:budget]

    # ---- subclass hooks --------------------------------------------------------------------------
    def fit(self, texts: Iterable[str], vocab_size: int | None = None, min_count: int = 1):
        raise NotImplementedError

    def _units(self, text: str) -> list[tuple[str, list[int]]]:
        """The text's units as the vocabulary sees them (a character, a piece, a word) with the
        ids each becomes; `encode` is their ids in order."""
        raise NotImplementedError

    def _encode_one(self, text: str) -> list[int]:
        return [i for _, ids in self._units(text) for i in ids]

    def _build_tf(self, vocab: list[str]) -> None:
        raise NotImplementedError

    def _tf_tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        raise NotImplementedError

    def _surface(self, token: str) -> tuple[str, bool]:
        """(text written for the token, whether it attaches to the previous one without space)."""
        if token in SPECIAL_TOKENS:
            return token, False
        if token.startswith(GLUE) and len(token) > len(GLUE):
            return token[len(GLUE) :], True
        return token, False

    # ---- encoding --------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (no `<s>`/`</s>` added)."""
        self._require()
        return [self._encode_one(t) for t in _check_texts(texts, "encode")]

    def unknown_tokens(self, text: str) -> list[str]:
        """The units of `text` the vocabulary lacks (each read as `<unk>`), once each, in order."""
        self._require()
        found = [unit for unit, ids in self._units(text) if UNK_ID in ids]
        return list(dict.fromkeys(found))

    def tf_tokenize(self, texts) -> tf.RaggedTensor:
        """(B,) tf.string -> tf.RaggedTensor (B, [T]) int32 ids; equal to `encode`."""
        self._require()
        texts = tf.convert_to_tensor(texts, tf.string)
        if texts.shape.rank is not None and texts.shape.rank != 1:
            raise KseqError(
                f"tf_tokenize expects a (B,) string tensor; Received: shape {texts.shape}"
            )
        return self._tf_tokenize(texts)

    # ---- decoding --------------------------------------------------------------------------------
    def decode(self, ids: Iterable[int]) -> str:
        """Text of one id sequence: skips `<pad>`/`<s>`, stops at the first `</s>`."""
        state = self._require()
        out: list[str] = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(state.vocab):
                raise KseqError(f"token id out of range [0, {len(state.vocab)}); Received: {i}")
            if i == EOS_ID:
                break
            if i in (PAD_ID, BOS_ID):
                continue
            if out and not state.glued[i]:
                out.append(" ")
            out.append(state.surface[i])
        return "".join(out)

    def tf_detokenize(self, ids) -> tf.Tensor:
        """(B, L) int ids, 0-padded (or ragged) -> (B,) tf.string; equal to `decode` row by row."""
        self._require()
        if isinstance(ids, tf.RaggedTensor):
            ids = ids.to_tensor(PAD_ID)
        ids = tf.cast(tf.convert_to_tensor(ids), tf.int32)
        after_eos = tf.cumsum(tf.cast(tf.equal(ids, EOS_ID), tf.int32), axis=1) > 0
        keep = ~after_eos & tf.not_equal(ids, PAD_ID) & tf.not_equal(ids, BOS_ID)
        first = keep & tf.equal(tf.cumsum(tf.cast(keep, tf.int32), axis=1), 1)
        glued = tf.gather(self._detok_glued, ids)
        surface = tf.gather(self._detok_surface, ids)
        sep = tf.where(glued | first, "", " ")
        pieces = tf.where(keep, tf.strings.join([sep, surface]), "")
        return tf.strings.reduce_join(pieces, axis=1)

    # ---- files -----------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Writes vocab.txt and tokenizer.json into `directory` (created if needed)."""
        state = self._require()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        text = "".join(_escape(t) + "\n" for t in state.vocab)
        (directory / VOCAB_FILE).write_text(text, encoding="utf-8", newline="\n")
        config = {"kind": self.kind, "format_version": FORMAT_VERSION, "options": self.options()}
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Tokenizer:
        """Reads a directory written by `save` (the kind must match this class)."""
        config = _read_config(Path(directory))
        if config["kind"] != cls.kind:
            raise KseqError(
                f"{Path(directory) / CONFIG_FILE}: tokenizer kind is {config['kind']!r}, "
                f"expected {cls.kind!r}"
            )
        return cls._from_config(Path(directory), config)

    @classmethod
    def _from_config(cls, directory: Path, config: dict) -> Tokenizer:
        where = directory / CONFIG_FILE
        version = config.get("format_version", 1)
        if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
            raise KseqError(
                f"{where}: unsupported format_version {version!r}; this kseq reads 1 to "
                f"{FORMAT_VERSION}"
            )
        options = config.get("options", {})
        if not isinstance(options, dict):
            raise KseqError(f"{where}: 'options' must be a JSON object; Received: {options!r}")
        try:
            tok = cls(**cls._upgrade_options(dict(options), version))
        except TypeError as e:
            raise KseqError(f"{where}: bad options for {cls.kind!r}: {e}") from None
        tok._set_vocab(_read_vocab(directory / VOCAB_FILE))
        return tok


def _read_config(directory: Path) -> dict:
    path = directory / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KseqError(f"tokenizer file not found: {path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KseqError(f"{path}: not a valid tokenizer config: {e}") from None
    if not isinstance(config, dict) or "kind" not in config:
        raise KseqError(f"{path}: expected a JSON object with a 'kind' key")
    if config["kind"] not in tokenizers:
        raise KseqError(f"{path}: {tokenizers.unknown_message(config['kind'])}")
    return config


def _read_vocab(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KseqError(f"vocabulary file not found: {path}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise KseqError(f"{path}:{line}: invalid UTF-8") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    vocab = []
    for n, line in enumerate(lines, 1):
        if line == "":
            raise KseqError(f"{path}:{n}: empty token")
        vocab.append(_unescape(line))
    for n, (got, want) in enumerate(zip(vocab, SPECIAL_TOKENS, strict=False), 1):
        if got != want:
            raise KseqError(f"{path}:{n}: expected special token {want!r}; Received: {got!r}")
    if len(vocab) < len(SPECIAL_TOKENS):
        raise KseqError(f"{path}: fewer tokens than the {len(SPECIAL_TOKENS)} special tokens")
    seen: dict[str, int] = {}
    for n, tok in enumerate(vocab, 1):
        if tok in seen:
            raise KseqError(f"{path}:{n}: duplicate token {tok!r} (first on line {seen[tok]})")
        seen[tok] = n
    return vocab


def make_tokenizer(kind: str, **options: Any) -> Tokenizer:
    """An empty (unfitted) tokenizer of a registered kind."""
    if kind not in tokenizers:
        raise KseqError(tokenizers.unknown_message(kind))
    return tokenizers.get(kind)(**options)


def load_tokenizer(directory: str | Path) -> Tokenizer:
    """Loads any kind of tokenizer saved with `Tokenizer.save`."""
    directory = Path(directory)
    config = _read_config(directory)
    return tokenizers.get(config["kind"])._from_config(directory, config)


def _lookup_table(keys: list, values: list[int], key_dtype) -> tf.lookup.StaticHashTable:
    init = tf.lookup.KeyValueTensorInitializer(
        tf.constant(keys, key_dtype), tf.constant(values, tf.int32)
    )
    return tf.lookup.StaticHashTable(init, default_value=-1)


# --------------------------------------------------------------------------------------------------


@tokenizers.register("char")
class CharTokenizer(Tokenizer):
    """One token per Unicode code point (spaces included); `decode(encode(x)) == x` exactly.

    In graph: `tf_text.UnicodeCharTokenizer` (code points) + a code point -> id hash table.
    """

    kind = "char"

    def fit(self, texts: Iterable[str], vocab_size: int | None = None, min_count: int = 1):
        budget = self._vocab_budget(vocab_size)
        counts = Counter()
        for t in _check_texts(texts, "fit"):
            counts.update(t)
        self._set_vocab(list(SPECIAL_TOKENS) + self._ranked(counts, min_count, budget))
        return self

    def _set_vocab(self, vocab: list[str]) -> None:
        bad = [t for t in vocab[4:] if len(t) != 1]
        if bad:
            raise KseqError(
                f"char vocabulary tokens must be single characters; Received: {bad[0]!r}"
            )
        super()._set_vocab(vocab)

    def _surface(self, token: str) -> tuple[str, bool]:
        return token, True

    def _units(self, text: str) -> list[tuple[str, list[int]]]:
        index = self._state.index
        return [(ch, [index.get(ch, UNK_ID)]) for ch in text]

    def _encode_one(self, text: str) -> list[int]:  # the hot path of data loading, kept flat
        index = self._state.index
        return [index.get(ch, UNK_ID) for ch in text]

    def _build_tf(self, vocab: list[str]) -> None:
        keys = [ord(t) for t in vocab[4:]]
        self._char_tokenizer = tf_text.UnicodeCharTokenizer()
        self._table = _lookup_table(keys or [-1], list(range(4, len(vocab))) or [UNK_ID], tf.int64)

    def _tf_tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        codepoints = self._char_tokenizer.tokenize(texts)
        ids = self._table.lookup(tf.cast(codepoints.flat_values, tf.int64))
        ids = tf.where(ids < 0, UNK_ID, ids)
        return codepoints.with_flat_values(ids)


@tokenizers.register("whitespace")
class WhitespaceTokenizer(Tokenizer):
    """Every whitespace-separated piece is one token (phoneme strings such as `K AE T`).

    Whitespace is `str.isspace` (the pre-tokenizer's class); a piece outside the vocabulary is
    `<unk>`; `decode` joins tokens with one space. In graph: `tf_text.regex_split` + a hash table.
    """

    kind = "whitespace"

    def fit(self, texts: Iterable[str], vocab_size: int | None = None, min_count: int = 1):
        budget = self._vocab_budget(vocab_size)
        counts = Counter()
        for t in _check_texts(texts, "fit"):
            counts.update(self._pieces(t))
        counts = Counter({t: c for t, c in counts.items() if t not in SPECIAL_TOKENS})
        self._set_vocab(list(SPECIAL_TOKENS) + self._ranked(counts, min_count, budget))
        return self

    @staticmethod
    def _pieces(text: str) -> list[str]:
        return [piece for piece in whitespace_patterns()[1].split(text) if piece]

    def _surface(self, token: str) -> tuple[str, bool]:
        return token, False  # a leading "##" is text here, not glue

    def _units(self, text: str) -> list[tuple[str, list[int]]]:
        index = self._state.index
        # The text "<s>" is an unknown piece, not the special token (the graph table agrees).
        ids = [(piece, index.get(piece, UNK_ID)) for piece in self._pieces(text)]
        return [(piece, [i if i >= len(SPECIAL_TOKENS) else UNK_ID]) for piece, i in ids]

    def _set_vocab(self, vocab: list[str]) -> None:
        bad = [t for t in vocab[4:] if not t or any(ch.isspace() for ch in t)]
        if bad:
            raise KseqError(
                f"whitespace vocabulary tokens must be non-empty and without whitespace; "
                f"Received: {bad[0]!r}"
            )
        super()._set_vocab(vocab)

    def _build_tf(self, vocab: list[str]) -> None:
        self._table = _lookup_table(vocab[4:] or [""], list(range(4, len(vocab))) or [1], tf.string)

    def _tf_tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        pieces = tf_text.regex_split(texts, whitespace_patterns()[0])
        ids = self._table.lookup(pieces.flat_values)
        return pieces.with_flat_values(tf.where(ids < 0, UNK_ID, ids))


class _PretokenizedTokenizer(Tokenizer):
    """Base of the kinds built on `pretokenize` (`word`, `wordpiece`).

    Args:
        cjk_glue: the format-1 behaviour, where a CJK character touching the previous token is
            glued (`##年`, a second id); files of format version 1 load with it on.
    """

    def __init__(self, cjk_glue: bool = False, name: str | None = None):
        super().__init__(name=name)
        if not isinstance(cjk_glue, bool):  # tokenizer.json: "false" must not read as true
            raise TypeError(f"cjk_glue must be true or false; Received: {cjk_glue!r}")
        self.cjk_glue = cjk_glue

    def options(self) -> dict[str, Any]:
        return {"cjk_glue": self.cjk_glue}

    @classmethod
    def _upgrade_options(cls, options: dict[str, Any], version: int) -> dict[str, Any]:
        if version < 2:
            options.setdefault("cjk_glue", True)  # keeps the ids of runs trained before
        return options

    def _pretokenize(self, text: str) -> list[tuple[str, bool]]:
        return pretokenize(text, cjk_glue=self.cjk_glue)

    def _tf_pretokenize(self, texts: tf.Tensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        return tf_pretokenize(texts, cjk_glue=self.cjk_glue)

    def _surface(self, token: str) -> tuple[str, bool]:
        surface, glued = super()._surface(token)
        # A CJK character sits against the previous token: "1999年3月" decodes as it was written.
        return surface, glued or (not self.cjk_glue and is_cjk(token))


@tokenizers.register("word")
class WordTokenizer(_PretokenizedTokenizer):
    """Whole tokens from the pre-tokenizer (whitespace / punctuation / CJK split, glue marked `##`).

    A token seen only in the other form (glued vs. not) falls back to that form (losing one space in
    `decode`) before falling back to `<unk>`. In graph: `tf_text.regex_split_with_offsets` + a hash
    table.
    """

    kind = "word"

    def fit(self, texts: Iterable[str], vocab_size: int | None = None, min_count: int = 1):
        budget = self._vocab_budget(vocab_size)
        counts = Counter()
        for t in _check_texts(texts, "fit"):
            counts.update(GLUE + w if g else w for w, g in self._pretokenize(t))
        self._set_vocab(list(SPECIAL_TOKENS) + self._ranked(counts, min_count, budget))
        return self

    def _units(self, text: str) -> list[tuple[str, list[int]]]:
        index = self._state.index
        out = []
        for w, g in self._pretokenize(text):
            first, second = (GLUE + w, w) if g else (w, GLUE + w)
            out.append((w, [index.get(first, index.get(second, UNK_ID))]))
        return out

    def _build_tf(self, vocab: list[str]) -> None:
        self._table = _lookup_table(vocab[4:] or [""], list(range(4, len(vocab))) or [1], tf.string)

    def _tf_tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        tokens, glued = self._tf_pretokenize(texts)
        words, flags = tokens.flat_values, glued.flat_values
        marked = tf.strings.join([GLUE, words])
        first = self._table.lookup(tf.where(flags, marked, words))
        second = self._table.lookup(tf.where(flags, words, marked))
        ids = tf.where(first >= 0, first, tf.where(second >= 0, second, UNK_ID))
        return tokens.with_flat_values(ids)


# --------------------------------------------------------------------------------------------------
# WordPiece

# Glued words are tokenized in "continuation" mode (all pieces `##`). FastWordpieceTokenizer has no
# such mode, so in graph a private-use sentinel (never part of the public vocabulary) is prepended
# to glued words and its piece dropped afterwards. Input occurrences of the sentinel become U+FFFD.
_SENTINEL = "\ue000"
_REPLACEMENT = "\ufffd"


def learn_wordpiece_vocab(
    word_counts: Counter,
    budget: int | None,
    min_count: int = 1,
    cjk_continuations: bool = True,
) -> list[str]:
    """Learns WordPiece pieces (BPE-style most-frequent-pair merges) from `(word, glued)` counts.

    Returns at most `budget` pieces (without the special tokens): first every character kept
    (count >= `min_count`) in both word-initial and `##` form, most frequent first, then merged
    pieces in merge order. Merging stops at the budget or when no pair occurs at least
    max(2, min_count) times. `cjk_continuations=False` leaves out the `##` forms of CJK characters
    (never glued by the format-2 pre-tokenizer, so they would only waste the budget).
    """
    char_counts: Counter = Counter()
    form_counts: Counter = Counter()
    for (word, glued), c in word_counts.items():
        for i, ch in enumerate(word):
            char_counts[ch] += c
            form_counts[ch if i == 0 and not glued else GLUE + ch] += c
    chars = [ch for ch, c in char_counts.items() if c >= min_count]
    symbols = [
        form
        for ch in chars
        for form in ((ch,) if not cjk_continuations and is_cjk(ch) else (ch, GLUE + ch))
    ]
    symbols.sort(key=lambda s: (-form_counts[s], -char_counts[s.removeprefix(GLUE)], s))
    if budget is not None:
        symbols = symbols[:budget]
    vocab = list(symbols)
    known = set(vocab)

    words: list[list[str]] = []
    counts: list[int] = []
    for (word, glued), c in sorted(word_counts.items()):
        seq = [ch if i == 0 and not glued else GLUE + ch for i, ch in enumerate(word)]
        if len(seq) > 1 and all(s in known for s in seq):
            words.append(seq)
            counts.append(c)

    pair_counts: Counter = Counter()
    where: dict[tuple[str, str], set[int]] = {}
    for wi, seq in enumerate(words):
        for pair in zip(seq, seq[1:], strict=False):
            pair_counts[pair] += counts[wi]
            where.setdefault(pair, set()).add(wi)
    heap = [(-c, pair) for pair, c in pair_counts.items()]
    heapq.heapify(heap)
    threshold = max(2, min_count)

    while heap and (budget is None or len(vocab) < budget):
        neg, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -neg:
            continue  # stale entry
        if -neg < threshold:
            break
        a, b = pair
        merged = a + b[len(GLUE) :]
        if merged not in known:
            known.add(merged)
            vocab.append(merged)
        changed: set[tuple[str, str]] = set()
        for wi in where.pop(pair, ()):
            seq, c = words[wi], counts[wi]
            if not any(x == a and y == b for x, y in zip(seq, seq[1:], strict=False)):
                continue
            for p in zip(seq, seq[1:], strict=False):
                pair_counts[p] -= c
                changed.add(p)
            new, i = [], 0
            while i < len(seq):
                if i + 1 < len(seq) and seq[i] == a and seq[i + 1] == b:
                    new.append(merged)
                    i += 2
                else:
                    new.append(seq[i])
                    i += 1
            words[wi] = new
            for p in zip(new, new[1:], strict=False):
                pair_counts[p] += c
                changed.add(p)
                where.setdefault(p, set()).add(wi)
        for p in changed:
            if pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p))
            else:
                pair_counts.pop(p, None)
    return vocab


@tokenizers.register("wordpiece")
class WordPieceTokenizer(_PretokenizedTokenizer):
    """Pre-tokenizer words split into WordPiece pieces by greedy longest match.

    The vocabulary is learned by `learn_wordpiece_vocab` (own BPE-style learner; the learned size
    is `vocab_size` or less). A glued word is tokenized with `##` pieces only, so decoding is
    lossless like `word`. A word that cannot be covered, or longer than `max_bytes_per_word` UTF-8
    bytes (plus 3 for a glued word), becomes one `<unk>`. In graph:
    `tf_text.regex_split_with_offsets` + `tf_text.FastWordpieceTokenizer`.

    Args:
        max_bytes_per_word: longest word (UTF-8 bytes) tokenized into pieces.
        cjk_glue: the format-1 CJK behaviour (see `_PretokenizedTokenizer`).
    """

    kind = "wordpiece"

    def __init__(
        self, max_bytes_per_word: int = 100, cjk_glue: bool = False, name: str | None = None
    ):
        super().__init__(cjk_glue=cjk_glue, name=name)
        self.max_bytes_per_word = int(max_bytes_per_word)

    def options(self) -> dict[str, Any]:
        return {"max_bytes_per_word": self.max_bytes_per_word, **super().options()}

    def fit(self, texts: Iterable[str], vocab_size: int | None = None, min_count: int = 1):
        budget = self._vocab_budget(vocab_size)
        counts: Counter = Counter()
        for t in _check_texts(texts, "fit"):
            counts.update(self._pretokenize(t.replace(_SENTINEL, _REPLACEMENT)))
        pieces = learn_wordpiece_vocab(counts, budget, min_count, cjk_continuations=self.cjk_glue)
        self._set_vocab(list(SPECIAL_TOKENS) + pieces)
        return self

    def _set_vocab(self, vocab: list[str]) -> None:
        bad = [t for t in vocab if _SENTINEL in t]
        if bad:
            raise KseqError(f"wordpiece vocabulary may not contain U+E000; Received: {bad[0]!r}")
        super()._set_vocab(vocab)
        self._max_piece = max(len(t) for t in vocab)

    def _word_ids(self, word: str, glued: bool) -> list[int]:
        index = self._state.index
        if len(word.encode("utf-8")) + (len(_SENTINEL.encode()) if glued else 0) > (
            self.max_bytes_per_word
        ):
            return [UNK_ID]
        out, start = [], 0
        while start < len(word):
            prefix = GLUE if (start > 0 or glued) else ""
            end = min(len(word), start + self._max_piece)
            while end > start:
                i = index.get(prefix + word[start:end])
                if i is not None and i >= 4:
                    out.append(i)
                    break
                end -= 1
            else:
                return [UNK_ID]
            start = end
        return out

    def _units(self, text: str) -> list[tuple[str, list[int]]]:
        words = self._pretokenize(text.replace(_SENTINEL, _REPLACEMENT))
        return [(w, self._word_ids(w, g)) for w, g in words]

    def _build_tf(self, vocab: list[str]) -> None:
        self._sentinel_id = len(vocab)
        # Special tokens stay in the list to keep ids aligned; pre-tokenized words never match them.
        self._fwp = tf_text.FastWordpieceTokenizer(
            vocab=list(vocab) + [_SENTINEL],
            suffix_indicator=GLUE,
            max_bytes_per_word=self.max_bytes_per_word,
            token_out_type=tf.int32,
            unknown_token=UNK,
            no_pretokenization=True,
        )

    def _tf_tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        texts = tf.strings.regex_replace(texts, _SENTINEL, _REPLACEMENT)
        tokens, glued = self._tf_pretokenize(texts)
        words, flags = tokens.flat_values, glued.flat_values
        words = tf.where(flags, tf.strings.join([_SENTINEL, words]), words)
        pieces = self._fwp.tokenize(words)  # (N, [P])
        rowids = pieces.value_rowids()
        position = tf.range(tf.shape(rowids, out_type=tf.int64)[0]) - tf.gather(
            pieces.row_starts(), rowids
        )
        drop = tf.equal(pieces.values, self._sentinel_id) & tf.equal(position, 0)
        keep = ~drop
        pieces = tf.RaggedTensor.from_value_rowids(
            tf.boolean_mask(pieces.values, keep),
            tf.boolean_mask(rowids, keep),
            nrows=pieces.nrows(),
        )
        nested = tf.RaggedTensor.from_row_splits(pieces, tokens.row_splits, validate=False)
        return nested.merge_dims(1, 2)
