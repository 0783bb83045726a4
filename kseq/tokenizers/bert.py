"""BERT's WordPiece tokenizer, in Python and in TensorFlow, giving identical ids.

Python (`BertTokenizer.encode`) follows Google BERT's `tokenization.py` (and Hugging Face's
`BertTokenizer`, which copies it) step by step:

1. clean: drop U+0000, U+FFFD and control characters (categories Cc/Cf except tab, newline,
   carriage return); map tab/newline/CR and every Zs space to " ";
2. put spaces around CJK ideographs (BERT's code point ranges), so each is a word of its own;
3. split at whitespace; per word: lowercase (`str.lower`) when uncased, strip accents (NFD,
   drop category Mn) when `strip_accents` (default: same as `lowercase`), then split off every
   punctuation character (ASCII non-alphanumeric symbols and Unicode categories P*);
4. WordPiece: greedy longest-match-first with `##` continuation pieces; a word that cannot be
   covered, or longer than 100 characters, becomes one [UNK].

Special tokens in the text ("[MASK]") are not recognised: like BERT's own tokenizer, "[" and "]"
are split off as punctuation.

In graph there are two versions:

- `tf_tokenize` (exact): `regex_replace` with character classes generated from the same Python
  predicates, `tf.strings.lower`, `tensorflow_text.normalize_utf8` (NFD), `regex_split` and
  `tensorflow_text.FastWordpieceTokenizer`. It equals `encode` for every character whose
  lowercase and NFD mappings are the same in ICU and in this Python's `unicodedata` (they
  differ only on a few dozen code points added in recent Unicode versions).
- `fast_tokenize` (for TFLite): `tensorflow_text.FastBertTokenizer`, which converts to TFLite
  custom ops. It equals `encode` on ordinary text — accented letters ("café" -> "cafe"), CJK,
  punctuation — but its normaliser folds compatibility characters (NFKC: "ﬁ" -> "fi",
  fullwidth "Ａ" -> "a", "²" -> "2"), case-folds "ß" to "ss", does not use the final sigma, and
  treats control characters differently; for such text the ids can differ from BERT's.

Packing (`pack`, `tf_pack`): `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, segment ids 0/1,
truncation longest-first (ties shorten the second text, as BERT's `_truncate_seq_pair`).
`tf_pack` uses builtin-lowering ops only (GATHER, SCATTER_ND, comparisons), so it also runs in
TFLite.

Files: `vocab.txt` (one token per line, the format of BERT checkpoints) and
`bert_tokenizer.json` (`{"lowercase": ..., "strip_accents": ..., "max_chars_per_word": ...}`).
"""

from __future__ import annotations

import functools
import json
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from kseq.errors import KseqError
from kseq.tokenizers.kinds import code_point_ranges, learn_wordpiece_vocab, re2_class

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "bert_tokenizer.json"
SUFFIX = "##"

# --------------------------------------------------------------------------------------------------
# BERT's character classes (tokenization.py), shared by the Python and the in-graph tokenizer.


def is_whitespace(ch: str) -> bool:
    """BERT's `_is_whitespace`: space, tab, newline, CR and category Zs."""
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_control(ch: str) -> bool:
    """BERT's `_is_control`: categories Cc and Cf, except tab, newline and CR."""
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf")


def is_punctuation(ch: str) -> bool:
    """BERT's `_is_punctuation`: ASCII non-alphanumeric symbols and categories P*."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def is_cjk(ch: str) -> bool:
    """BERT's `_is_chinese_char` (CJK Unified/Compatibility Ideographs blocks)."""
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def _split_punctuation(word: str) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    for ch in word:
        if is_punctuation(ch):
            if current:
                out.append("".join(current))
                current = []
            out.append(ch)
        else:
            current.append(ch)
    if current:
        out.append("".join(current))
    return out


def basic_tokenize(text: str, lowercase: bool = True, strip_accents: bool | None = None) -> list:
    """BERT's BasicTokenizer: clean, CJK split, whitespace split, lowercase/strip, punctuation."""
    strip = lowercase if strip_accents is None else strip_accents
    cleaned = []
    for ch in text:
        if ch in ("\x00", "\ufffd") or is_control(ch):
            continue
        if is_whitespace(ch):
            cleaned.append(" ")
        elif is_cjk(ch):
            cleaned.append(f" {ch} ")
        else:
            cleaned.append(ch)
    words: list[str] = []
    for word in "".join(cleaned).split():
        if lowercase:
            word = word.lower()
        if strip:
            word = _strip_accents(word)
        words.extend(_split_punctuation(word))
    return words


def wordpiece(word: str, index: dict, max_chars: int = 100) -> list[str]:
    """BERT's WordpieceTokenizer on one word: greedy longest match, or [UNK]."""
    if len(word) > max_chars:
        return [UNK]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        found = None
        while start < end:
            piece = word[start:end] if start == 0 else SUFFIX + word[start:end]
            if piece in index:
                found = piece
                break
            end -= 1
        if found is None:
            return [UNK]
        pieces.append(found)
        start = end
    return pieces


# --------------------------------------------------------------------------------------------------
# RE2 character classes for the in-graph tokenizer, generated from the predicates above.


def _ranges(predicate) -> list[tuple[int, int]]:
    """Code point ranges where `predicate(char)` holds (surrogates excluded)."""
    return code_point_ranges([predicate(chr(cp)) for cp in range(sys.maxunicode + 1)])


@functools.cache
def _patterns() -> dict[str, str]:
    """RE2 patterns of BERT's character classes; built once (about a second), on first use."""
    removed = re2_class(_ranges(lambda c: c in ("\x00", "\ufffd") or is_control(c)))
    spaces = re2_class(_ranges(is_whitespace))
    split_space = re2_class(_ranges(str.isspace))
    marks = re2_class(_ranges(lambda c: unicodedata.category(c) == "Mn"))
    single = re2_class(_ranges(lambda c: is_punctuation(c) or is_cjk(c)))
    return {
        "removed": removed,
        "spaces": spaces,
        "marks": marks,
        "delimiters": f"{split_space}+|{single}",
        "keep": single,
    }


# --------------------------------------------------------------------------------------------------


def read_vocab(path: str | Path) -> list[str]:
    """Tokens of a BERT `vocab.txt` (one per line, UTF-8), checked for duplicates."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KseqError(f"vocabulary file not found: {path}") from None
    except UnicodeDecodeError as e:
        raise KseqError(f"{path}: invalid UTF-8 at byte {e.start}") from None
    tokens = text.split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    tokens = [t.rstrip("\r") for t in tokens]
    seen: dict[str, int] = {}
    for line, token in enumerate(tokens, 1):
        if token in seen:
            raise KseqError(
                f"{path}:{line}: duplicate token {token!r} (first on line {seen[token]})"
            )
        seen[token] = line
    return tokens


def learn_vocab(
    texts: Iterable[str],
    vocab_size: int,
    min_count: int = 1,
    lowercase: bool = True,
    strip_accents: bool | None = None,
) -> list[str]:
    """A WordPiece vocabulary (special tokens first) learned from texts.

    Words come from `basic_tokenize`; pieces are learned by `kseq.tokenizers.kinds.
    learn_wordpiece_vocab` (every character in word-initial and `##` form, then the most frequent
    merges), at most `vocab_size` tokens in all.
    """

    budget = vocab_size - len(SPECIAL_TOKENS)
    if budget < 1:
        raise KseqError(
            f"tokenizer vocab_size must exceed the {len(SPECIAL_TOKENS)} special tokens. "
            f"Received: vocab_size={vocab_size}"
        )
    counts: Counter = Counter()
    for text in texts:
        counts.update((w, False) for w in basic_tokenize(text, lowercase, strip_accents))
    pieces = learn_wordpiece_vocab(counts, budget, min_count)
    return list(SPECIAL_TOKENS) + [p for p in pieces if p not in SPECIAL_TOKENS]


def _tf():
    import tensorflow as tf

    return tf


class BertTokenizer:
    """BERT WordPiece tokenizer with a Python and two in-graph implementations (module docs).

    Args:
        vocab: the tokens, in id order; must contain [UNK], [CLS] and [SEP] ([PAD] defaults
            to id 0 when absent, [MASK] is needed for masked-LM training only).
        lowercase: lowercase the text (uncased models).
        strip_accents: NFD + drop Mn; None = same as `lowercase` (BERT's behaviour).
        max_chars_per_word: longer words become [UNK].

    Example:
    ```python
    tok = BertTokenizer.learn(texts, vocab_size=2000)
    tok.tokenize("Café déjà vu")  # ['cafe', 'de', '##ja', 'vu']
    packed = tok.pack(tok.encode(["a question"]), tok.encode(["a context"]))
    ```
    """

    def __init__(
        self,
        vocab: Sequence[str],
        lowercase: bool = True,
        strip_accents: bool | None = None,
        max_chars_per_word: int = 100,
    ):
        self.vocab = list(vocab)
        self.lowercase = bool(lowercase)
        self.strip_accents = strip_accents
        self.max_chars_per_word = int(max_chars_per_word)
        self.index = {token: i for i, token in enumerate(self.vocab)}
        if len(self.index) != len(self.vocab):
            dup = next(t for t, c in Counter(self.vocab).items() if c > 1)
            raise KseqError(f"vocabulary has duplicate token {dup!r}")
        missing = [t for t in (UNK, CLS, SEP) if t not in self.index]
        if missing:
            raise KseqError(f"vocabulary lacks the special token(s) {', '.join(missing)}")
        self._tf_state: dict = {}

    # ---- ids ---------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def pad_id(self) -> int:
        return self.index.get(PAD, 0)

    @property
    def unk_id(self) -> int:
        return self.index[UNK]

    @property
    def cls_id(self) -> int:
        return self.index[CLS]

    @property
    def sep_id(self) -> int:
        return self.index[SEP]

    @property
    def mask_id(self) -> int:
        if MASK not in self.index:
            raise KseqError("the vocabulary has no [MASK] token (needed for masked-LM training)")
        return self.index[MASK]

    def special_ids(self) -> list[int]:
        return sorted(self.index[t] for t in SPECIAL_TOKENS if t in self.index)

    def continuation_flags(self) -> np.ndarray:
        """(V,) bool: the token is a `##` continuation piece (for whole-word masking)."""
        return np.array([t.startswith(SUFFIX) and len(t) > 2 for t in self.vocab], bool)

    # ---- Python ------------------------------------------------------------------------------
    def basic_tokenize(self, text: str) -> list[str]:
        return basic_tokenize(text, self.lowercase, self.strip_accents)

    def tokenize(self, text: str) -> list[str]:
        """WordPiece tokens of one text (no [CLS]/[SEP])."""
        out: list[str] = []
        for word in self.basic_tokenize(text):
            out.extend(wordpiece(word, self.index, self.max_chars_per_word))
        return out

    def unknown_tokens(self, text: str) -> list[str]:
        """The words of `text` that become [UNK], once each, in order."""
        found = [
            word
            for word in self.basic_tokenize(text)
            if UNK in wordpiece(word, self.index, self.max_chars_per_word)
        ]
        return list(dict.fromkeys(found))

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids of each text (no [CLS]/[SEP])."""
        if isinstance(texts, str):
            raise TypeError("encode expects a list of strings; use encode([text])")
        return [[self.index[t] for t in self.tokenize(text)] for text in texts]

    def encode_words(self, words: Sequence[str]) -> tuple[list[int], list[int]]:
        """Ids of pre-split words and, per id, the index of the word it came from.

        A word that tokenizes to nothing (e.g. only control characters) contributes no id.
        """
        ids: list[int] = []
        owners: list[int] = []
        for i, word in enumerate(words):
            for piece in self.tokenize(word):
                ids.append(self.index[piece])
                owners.append(i)
        return ids, owners

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """Text of ids: pieces joined with spaces, `##` pieces glued to the previous one."""
        specials = set(self.special_ids()) if skip_special else set()
        out: list[str] = []
        for i in ids:
            i = int(i)
            if i in specials:
                continue
            token = self.vocab[i]
            if token.startswith(SUFFIX) and out:
                out.append(token[len(SUFFIX) :])
            else:
                if out:
                    out.append(" ")
                out.append(token)
        return "".join(out)

    def pack(
        self,
        first: Sequence[Sequence[int]],
        second: Sequence[Sequence[int]] | None = None,
        sequence_length: int = 128,
        pad_to: int | None = None,
        first_max: int | None = None,
    ) -> dict[str, np.ndarray]:
        """`[CLS] a [SEP] (b [SEP])` rows, truncated longest-first to `sequence_length`.

        With `first_max` (pairs only), the first text keeps at most that many tokens and only the
        second is truncated to fit. Returns int32 arrays `token_ids`, `segment_ids`,
        `padding_mask` of shape `(N, L)`, where L is `pad_to` or the longest packed row.
        """
        rows = [
            pack_one(a, None if second is None else second[i], sequence_length, self, first_max)
            for i, a in enumerate(first)
        ]
        width = pad_to or max((len(r[0]) for r in rows), default=1)
        out = {k: np.zeros((len(rows), width), np.int32) for k in PACKED_KEYS}
        out["token_ids"][:] = self.pad_id
        for n, (ids, segments) in enumerate(rows):
            out["token_ids"][n, : len(ids)] = ids
            out["segment_ids"][n, : len(ids)] = segments
            out["padding_mask"][n, : len(ids)] = 1
        return out

    # ---- in graph ----------------------------------------------------------------------------
    def _wordpiece_op(self):
        if "wordpiece" not in self._tf_state:
            import tensorflow_text as tf_text

            tf = _tf()
            with tf.init_scope():
                self._tf_state["wordpiece"] = tf_text.FastWordpieceTokenizer(
                    vocab=self.vocab,
                    suffix_indicator=SUFFIX,
                    max_bytes_per_word=4 * self.max_chars_per_word + 4,
                    token_out_type=tf.int32,
                    unknown_token=UNK,
                    no_pretokenization=True,
                )
        return self._tf_state["wordpiece"]

    def _fast_bert_op(self):
        if "fast_bert" not in self._tf_state:
            import tensorflow_text as tf_text

            tf = _tf()
            with tf.init_scope():
                self._tf_state["fast_bert"] = tf_text.FastBertTokenizer(
                    vocab=self.vocab,
                    suffix_indicator=SUFFIX,
                    max_bytes_per_word=self.max_chars_per_word,
                    token_out_type=tf.int32,
                    unknown_token=UNK,
                    lower_case_nfd_strip_accents=self.lowercase,
                )
        return self._tf_state["fast_bert"]

    def trackables(self) -> list:
        """tf.Module objects holding the in-graph tokenizers' tables; track them when exporting."""
        return list(self._tf_state.values())

    def tf_words(self, texts):
        """(B,) tf.string -> (B, [W]) words after BERT's basic tokenizer (exact version)."""
        import tensorflow_text as tf_text

        tf = _tf()
        patterns = _patterns()
        texts = tf.convert_to_tensor(texts, tf.string)
        texts = tf.strings.regex_replace(texts, patterns["removed"], "")
        texts = tf.strings.regex_replace(texts, patterns["spaces"], " ")
        strip = self.lowercase if self.strip_accents is None else self.strip_accents
        if self.lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        if strip:
            texts = tf_text.normalize_utf8(texts, "NFD")
            texts = tf.strings.regex_replace(texts, patterns["marks"], "")
        return tf_text.regex_split(texts, patterns["delimiters"], patterns["keep"])

    def tf_tokenize(self, texts):
        """(B,) tf.string -> tf.RaggedTensor (B, [T]) int32, equal to `encode` (module docs)."""
        tf = _tf()
        words = self.tf_words(texts)
        flat = words.flat_values
        too_long = tf.strings.length(flat, unit="UTF8_CHAR") > self.max_chars_per_word
        flat = tf.where(too_long, UNK, flat)  # "[UNK]" is a vocabulary entry: one [UNK] id
        pieces = self._wordpiece_op().tokenize(flat)  # (N, [P])
        nested = tf.RaggedTensor.from_row_splits(pieces, words.row_splits, validate=False)
        return nested.merge_dims(1, 2)

    def fast_tokenize(self, texts):
        """(B,) tf.string -> (B, [T]) int32 with FastBertTokenizer (TFLite custom ops)."""
        tf = _tf()
        return self._fast_bert_op().tokenize(tf.convert_to_tensor(texts, tf.string))

    def tf_pack(
        self, first, second=None, sequence_length: int = 128, fixed_length=False, first_max=None
    ):
        """In-graph `pack` of ragged ids `(B, [T])`; builtin-lowering ops only.

        Returns a dict of `(B, L)` int32 tensors; L = `sequence_length` when `fixed_length`,
        else the longest packed row.
        """
        return tf_pack(
            first,
            second,
            sequence_length,
            cls_id=self.cls_id,
            sep_id=self.sep_id,
            pad_id=self.pad_id,
            fixed_length=fixed_length,
            first_max=first_max,
        )

    # ---- files -------------------------------------------------------------------------------
    def options(self) -> dict:
        return {
            "lowercase": self.lowercase,
            "strip_accents": self.strip_accents,
            "max_chars_per_word": self.max_chars_per_word,
        }

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        bad = [t for t in self.vocab if "\n" in t or "\r" in t]
        if bad:
            raise KseqError(f"vocabulary token {bad[0]!r} contains a line break")
        (directory / VOCAB_FILE).write_text(
            "".join(t + "\n" for t in self.vocab), encoding="utf-8", newline="\n"
        )
        (directory / CONFIG_FILE).write_text(
            json.dumps(self.options(), indent=2) + "\n", encoding="utf-8"
        )
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> BertTokenizer:
        directory = Path(directory)
        path = directory / CONFIG_FILE
        options = {}
        if path.is_file():
            try:
                options = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise KseqError(f"{path}: not a valid tokenizer config: {e}") from None
        return cls(read_vocab(directory / VOCAB_FILE), **options)

    @classmethod
    def learn(
        cls,
        texts: Iterable[str],
        vocab_size: int = 4000,
        min_count: int = 1,
        lowercase: bool = True,
        strip_accents: bool | None = None,
    ) -> BertTokenizer:
        vocab = learn_vocab(texts, vocab_size, min_count, lowercase, strip_accents)
        return cls(vocab, lowercase=lowercase, strip_accents=strip_accents)


PACKED_KEYS = ("token_ids", "segment_ids", "padding_mask")


def truncate_lengths(
    first: int, second: int | None, budget: int, first_max: int | None = None
) -> tuple[int, int]:
    """Kept lengths under BERT's longest-first truncation (pop from the longer; ties: second).

    With `first_max`, the first text is cut to `first_max` tokens and only the second one is
    truncated to fit (question answering: question, then as much context as fits).
    """
    if second is None:
        return min(first, budget), 0
    if first_max is not None:
        keep_first = min(first, first_max, budget)
        return keep_first, min(second, budget - keep_first)
    keep_second = min(second, max(budget - first, budget // 2))
    return min(first, budget - keep_second), keep_second


def pack_one(
    first, second, sequence_length, tokenizer, first_max=None
) -> tuple[list[int], list[int]]:
    """(ids, segment ids) of one packed row."""
    specials = 2 if second is None else 3
    budget = sequence_length - specials
    if budget < 0:
        raise KseqError(f"sequence_length {sequence_length} leaves no room for [CLS]/[SEP]")
    keep_a, keep_b = truncate_lengths(
        len(first), None if second is None else len(second), budget, first_max
    )
    ids = [tokenizer.cls_id, *first[:keep_a], tokenizer.sep_id]
    segments = [0] * len(ids)
    if second is not None:
        ids += [*second[:keep_b], tokenizer.sep_id]
        segments += [1] * (keep_b + 1)
    return ids, segments


def _row_positions(ragged):
    """(row id, position in row) of each value of a (B, [T]) ragged tensor, builtin ops only."""
    tf = _tf()
    splits = tf.cast(ragged.row_splits, tf.int32)  # (B + 1,)
    count = tf.shape(ragged.flat_values)[0]
    index = tf.range(count)  # (N,)
    rows = tf.reduce_sum(
        tf.cast(tf.expand_dims(index, 1) >= tf.expand_dims(splits[1:], 0), tf.int32), axis=1
    )  # (N,)
    return rows, index - tf.gather(splits, rows)


def tf_pack(
    first, second, sequence_length, cls_id, sep_id, pad_id, fixed_length=False, first_max=None
):
    """See `BertTokenizer.tf_pack`. `first`/`second`: tf.RaggedTensor (B, [T]) int32."""
    tf = _tf()
    specials = 2 if second is None else 3
    budget = sequence_length - specials
    splits = tf.cast(first.row_splits, tf.int32)
    len_a = splits[1:] - splits[:-1]  # (B,)
    if second is None:
        keep_a = tf.minimum(len_a, budget)
        keep_b = tf.zeros_like(keep_a)
    else:
        splits_b = tf.cast(second.row_splits, tf.int32)
        len_b = splits_b[1:] - splits_b[:-1]
        if first_max is not None:
            keep_a = tf.minimum(len_a, min(first_max, budget))
            keep_b = tf.minimum(len_b, budget - keep_a)
        else:
            keep_b = tf.minimum(len_b, tf.maximum(budget - len_a, budget // 2))
            keep_a = tf.minimum(len_a, budget - keep_b)
    total = keep_a + keep_b + specials  # (B,)
    width = sequence_length if fixed_length else tf.maximum(tf.reduce_max(total), 1)
    batch = tf.shape(len_a)[0]

    def scatter(ragged, keep, offset):
        rows, position = _row_positions(ragged)
        kept = position < tf.gather(keep, rows)
        columns = tf.where(kept, position + tf.gather(offset, rows), width)  # dropped: spare col
        indices = tf.stack([rows, columns], axis=1)
        values = tf.cast(ragged.flat_values, tf.int32)
        return tf.scatter_nd(indices, values, tf.stack([batch, width + 1]))[:, :width]

    ids = scatter(first, keep_a, tf.ones_like(keep_a))  # first text from column 1
    columns = tf.expand_dims(tf.range(width), 0)  # (1, L)
    keep_a_col = tf.expand_dims(keep_a, 1)
    total_col = tf.expand_dims(total, 1)
    sep_cols = tf.equal(columns, keep_a_col + 1)
    segments = tf.zeros_like(ids)
    if second is not None:
        ids += scatter(second, keep_b, keep_a + 2)
        sep_cols = sep_cols | tf.equal(columns, total_col - 1)
        # tf.where, not a bool->int cast: the TFLite converter folds `cast(bool) < 0` (from the
        # embedding lookup) into a zeros_like on bools, which has no kernel.
        segments = tf.where((columns >= keep_a_col + 2) & (columns < total_col), 1, 0)
    ids = tf.where(tf.equal(columns, 0), cls_id, ids)
    ids = tf.where(sep_cols, sep_id, ids)
    real = columns < total_col
    ids = tf.where(real, ids, pad_id)
    padding = tf.where(real, 1, 0)
    return {"token_ids": ids, "segment_ids": segments, "padding_mask": padding}
