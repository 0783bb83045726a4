"""BERT WordPiece: known BERT behaviour, Python == tensorflow-text, packing, files."""

from __future__ import annotations

import random

import numpy as np
import pytest
import tensorflow as tf
from helpers import BERT_VOCAB as VOCAB

from kseq.errors import KseqError
from kseq.tokenizers.bert import BertTokenizer, basic_tokenize, read_vocab


@pytest.fixture(scope="module")
def tok():
    return BertTokenizer(VOCAB)


def test_known_bert_behaviour(tok):
    # Uncased BERT lowercases and strips accents (NFD, drop Mn): keras-hub maps these to [UNK].
    assert tok.tokenize("Café déjà vu!") == ["cafe", "de", "##ja", "vu", "!"]
    assert tok.tokenize("unaffable") == ["un", "##aff", "##able"]  # BERT's README example
    assert tok.tokenize("我爱Paris") == ["我", "爱", "paris"]  # a token per CJK character
    assert tok.tokenize("isn't") == ["is", "##n", "'", "t"]
    assert tok.tokenize("runx ab") == ["[UNK]", "a", "##b"]  # an uncoverable word -> one [UNK]
    assert tok.tokenize("a" * 101) == ["[UNK]"] and tok.tokenize("the\u200b\x00") == ["the"]
    assert basic_tokenize("[MASK]") == ["[", "mask", "]"]  # special tokens in text are split
    assert basic_tokenize("Hello,\tWORLD\u3000x\x07y") == ["hello", ",", "world", "xy"]
    assert basic_tokenize("ΟΔΟΣ") == ["οδος"]  # final sigma, as str.lower
    assert basic_tokenize("Café Naïve", lowercase=False) == ["Café", "Naïve"]
    assert basic_tokenize("Café", lowercase=False, strip_accents=True) == ["Cafe"]
    cased = BertTokenizer(VOCAB, lowercase=False)
    assert cased.tokenize("café Café") == ["café", "[UNK]"]
    ids = tok.encode(["Hello world"])[0]
    assert ids == [14, 15] and tok.decode([2, *ids, 3]) == "hello world"
    assert tok.decode(tok.encode(["unaffable deja vu"])[0]) == "unaffable deja vu"


def _random_texts(count, seed=0):
    pool = (
        list("abcdefghijklmnopqrstuvwxyzABCDEFXYZ0123456789 ,.!?;:'\"()[]{}-_/\\@#$%^&*+=<>~`|")
        + list("éèêëàâäïîôöùûüçñÉÀÖÜßøåæœ")  # accents, ß
        + list("我爱北京天安门日本語한국어ひらがなカタカナ")  # CJK, Hangul, kana
        + list("αβγΔΣςπρ ΟΔΟΣ абвгдЖЩ")  # Greek, Cyrillic
        + ["\t", "\n", "\r", "\u00a0", "\u3000", "\u2028", "\u200b", "\x00", "\x07", "\ufffd"]
        + ["\u0301", "\u0308", "ﬁ", "²", "½", "Ａ", "😀", "‐", "—", "…", "«", "»", "¿", "¡"]
    )
    rng = random.Random(seed)
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, 40))) for _ in range(count)]


def test_tensorflow_text_tokenizer_equals_python():
    texts = _random_texts(300)
    texts += ["Café déjà vu!", "我爱北京天安门", "naïve résumé ﬁne ß İstanbul ΟΔΟΣ", "x" * 150]
    for lowercase, strip in [(True, None), (False, None), (False, True)]:
        words = [w for t in texts for w in basic_tokenize(t, lowercase, strip)]
        tok = BertTokenizer.learn(texts, vocab_size=150, lowercase=lowercase, strip_accents=strip)
        assert len(tok.vocab) == 150 and len(set(words)) > 50
        expected = tok.encode(texts)
        got = tok.tf_tokenize(tf.constant(texts)).to_list()
        assert got == expected
        assert sum(tok.unk_id in row for row in expected) > 5  # [UNK]s are exercised too


def test_fast_bert_tokenizer_equals_python_on_ordinary_text():
    texts = ["Café déjà vu!", "Hello, WORLD... isn't it?", "我爱北京天安门 and 日本語",
             "Zoë Müller moved to Zürich in 1999.", "naïve résumé, à la carte; x$y^z~"]  # fmt: skip
    tok = BertTokenizer.learn(texts * 2, vocab_size=200)
    assert tok.fast_tokenize(tf.constant(texts)).to_list() == tok.encode(texts)


def test_pack_truncates_longest_first_like_bert():
    tok = BertTokenizer(VOCAB)
    a, b = list(range(10, 20)), list(range(20, 24))
    packed = tok.pack([a], [b], sequence_length=10)
    # 7 slots: the longer text is cut first until the two are balanced; ties cut the second.
    assert packed["token_ids"][0].tolist() == [2, 10, 11, 12, 13, 3, 20, 21, 22, 3]
    assert packed["segment_ids"][0].tolist() == [0] * 6 + [1] * 4
    assert packed["padding_mask"][0].tolist() == [1] * 10

    def kept(la, lb, length):
        p = tok.pack([[5] * la], [[6] * lb], length)["token_ids"][0]
        return int((p == 5).sum()), int((p == 6).sum())

    def reference(la, lb, length):  # BERT's _truncate_seq_pair
        a, b = [5] * la, [6] * lb
        while len(a) + len(b) > length - 3:
            (a if len(a) > len(b) else b).pop()
        return len(a), len(b)

    for la, lb, length in [(10, 4, 10), (4, 10, 10), (9, 9, 10), (3, 2, 20), (50, 1, 8), (6, 6, 8)]:
        assert kept(la, lb, length) == reference(la, lb, length)


@pytest.mark.parametrize("fixed", [False, True])
def test_tf_pack_equals_pack(fixed):
    tok = BertTokenizer(VOCAB)
    rng = np.random.default_rng(0)
    first = [rng.integers(5, 40, rng.integers(0, 14)).tolist() for _ in range(12)]
    second = [rng.integers(5, 40, rng.integers(0, 14)).tolist() for _ in range(12)]
    ragged = [
        tf.ragged.constant(x, dtype=tf.int32, row_splits_dtype=tf.int64) for x in (first, second)
    ]
    for length in (6, 11, 32):
        pad = length if fixed else None
        cases = [
            (
                tok.pack(first, None, length, pad_to=pad),
                tok.tf_pack(ragged[0], None, length, fixed),
            ),
            (tok.pack(first, second, length, pad_to=pad), tok.tf_pack(*ragged, length, fixed)),
            (tok.pack(first, second, length, pad_to=pad, first_max=3),
             tok.tf_pack(*ragged, length, fixed, first_max=3)),
        ]  # fmt: skip
        for expected, got in cases:
            for key, value in expected.items():
                np.testing.assert_array_equal(got[key].numpy(), value)


def test_files_round_trip(tmp_path):
    tok = BertTokenizer.learn(["Déjà vu, café!", "Hello world"], vocab_size=40, lowercase=False)
    tok.save(tmp_path / "assets")
    loaded = BertTokenizer.load(tmp_path / "assets")
    assert loaded.vocab == tok.vocab and loaded.options() == tok.options()
    assert read_vocab(tmp_path / "assets" / "vocab.txt")[:5] == [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
    ]  # fmt: skip
    (tmp_path / "dup.txt").write_text("[UNK]\n[CLS]\n[SEP]\na\na\n")
    with pytest.raises(KseqError, match="dup.txt:5: duplicate token 'a'"):
        read_vocab(tmp_path / "dup.txt")
    with pytest.raises(KseqError, match="lacks the special token"):
        BertTokenizer(["a", "b"])


def test_unknown_tokens_are_the_words_that_become_unk(tok, capsys):
    from kseq.data.unknown_input import warn_unknown_input

    text = "Hello zebra world, unaffable xyzzy zebra!"
    assert tok.unknown_tokens(text) == ["zebra", "xyzzy"]  # once each, in order
    ids = tok.encode([text])[0]
    assert ids.count(tok.unk_id) == 3  # zebra twice, xyzzy once
    assert tok.unknown_tokens("hello world!") == []
    warn_unknown_input(tok, ["hello world", text])
    assert capsys.readouterr().err.splitlines() == [
        "kseq: warning: input 2 ('Hello zebra world, unaffable xyzzy zebr…'): 'zebra', "
        "'xyzzy' not in the vocabulary (read as unknown)"
    ]
