"""char / whitespace / word / wordpiece tokenizers: Python and in-graph ids agree, round trips,
files, CJK characters with one id, format-1 files."""

import json
import random
import re

import numpy as np
import pytest
import tensorflow as tf

from kseq.data.dates import date_splits
from kseq.errors import KseqError
from kseq.tokenizers.kinds import (
    GLUE,
    SPECIAL_TOKENS,
    is_cjk,
    learn_wordpiece_vocab,
    load_tokenizer,
    make_tokenizer,
    pretokenize,
    tokenizers,
)

KINDS = ["char", "whitespace", "word", "wordpiece"]

EXTRA = [
    "The quick brown fox, it said: jumps over the lazy dog!",
    "我们明天去北京。他说：“好的！”",
    "Prices rose 5% to $3.50 (approx.) on 2021-11-22.",
    "tab\tseparated\nand new line, ideographic\u3000space",
    "Mar 3, 99 is 1999-03-03",
    "1999年3月3日",
]


@pytest.fixture(scope="module")
def corpus():
    train, _ = date_splits(1500, 0, seed=11)
    return [s for s, _ in train] + [t for _, t in train] + EXTRA


@pytest.fixture(scope="module")
def fitted(corpus):
    return {
        "char": make_tokenizer("char").fit(corpus),
        "whitespace": make_tokenizer("whitespace").fit(corpus),
        "word": make_tokenizer("word").fit(corpus),
        "wordpiece": make_tokenizer("wordpiece").fit(corpus, vocab_size=300),
    }


def _random_texts(n: int, seed: int) -> list[str]:
    """Nasty strings: mixed scripts, every kind of whitespace, punctuation, symbols, emoji."""
    pool = list("abcXYZ019 ,.-/:'\"#\\") + ["\t", "\n", "\u3000", "\u00a0", "  "]
    pool += list("年月日一九〇星期三。，") + ["é", "ß", "€", "😀", "\ue000", "ﬁ", "\u0301", "Ж"]
    pool += ["March", "1999", "##", "<s>", "<unk>", "the", "of"]
    rng = random.Random(seed)
    return ["".join(rng.choice(pool) for _ in range(rng.randrange(0, 25))) for _ in range(n)] + [
        "",
        " ",
        "\u3000\t",
    ]


def _tf_ids(tok, texts):
    return tok.tf_tokenize(tf.constant(texts)).to_list()


def _tf_text(tok, ids):
    rt = tf.ragged.constant(ids, dtype=tf.int32, ragged_rank=1)
    return [s.decode("utf-8") for s in tok.tf_detokenize(rt.to_tensor()).numpy()]


_SPACE_BEFORE_CJK = re.compile(r" (?=[\u3007\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff])")


def _normalised(text: str) -> str:
    """What word / wordpiece decoding gives back: one space between tokens, none before CJK."""
    return _SPACE_BEFORE_CJK.sub("", " ".join(text.split()))


# ---- shared contract ----------------------------------------------------------------------------


def test_registry_lists_the_kinds():
    assert tokenizers.names() == KINDS
    with pytest.raises(KseqError, match="did you mean 'word'"):
        make_tokenizer("wrd")


@pytest.mark.parametrize("kind", KINDS)
def test_token_counts_without_tensorflow_match_encode(fitted, corpus, kind):
    """`kseq validate` measures lengths with TOKEN_COUNTS: exact, wordpiece a lower bound."""
    from kseq.tokenizers.pretokenize import TOKEN_COUNTS

    assert sorted(TOKEN_COUNTS) == sorted(KINDS)
    texts = corpus[:200] + EXTRA + _random_texts(300, seed=len(kind)) + ["unseen ⟁ words"]
    counted = [TOKEN_COUNTS[kind](text) for text in texts]
    encoded = [len(ids) for ids in fitted[kind].encode(texts)]
    if kind == "wordpiece":
        assert all(c <= e for c, e in zip(counted, encoded, strict=True))
        assert counted != encoded  # some words are several pieces
    else:
        assert counted == encoded


@pytest.mark.parametrize("kind", KINDS)
def test_units_give_encode_s_ids_and_name_the_unknown(fitted, corpus, kind):
    tok = fitted[kind]
    texts = corpus[:100] + EXTRA + _random_texts(100, seed=3)
    assert [[i for _, ids in tok._units(t) for i in ids] for t in texts] == tok.encode(texts)
    text = "March ⟁ 3 ⟁⟁, 1999"  # ⟁ is in no training text
    unknown = tok.unknown_tokens(text)
    ids = tok.encode([text])[0]
    assert (1 in ids) == bool(unknown)
    # word: a symbol is a token of its own, so "⟁⟁" is two of the same
    expected = {"char": ["⟁"], "whitespace": ["⟁", "⟁⟁,"], "word": ["⟁"]}
    if kind in expected:
        assert unknown == expected[kind]
    else:  # wordpiece: the words that cannot be pieced together
        assert unknown and all("⟁" in word for word in unknown)


@pytest.mark.parametrize("kind", KINDS)
def test_special_tokens_are_fixed(fitted, kind):
    tok = fitted[kind]
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    assert tok.vocab[:4] == list(SPECIAL_TOKENS) == ["<pad>", "<unk>", "<s>", "</s>"]
    assert tok.vocab_size == len(tok.vocab)


@pytest.mark.parametrize("kind", KINDS)
def test_python_and_graph_ids_agree(fitted, corpus, kind):
    tok = fitted[kind]
    texts = corpus[:200] + EXTRA + _random_texts(300, seed=len(kind))
    ids = tok.encode(texts)
    assert _tf_ids(tok, texts) == ids
    assert all(isinstance(i, int) for row in ids for i in row)
    assert tok.tf_tokenize(tf.constant(texts)).dtype == tf.int32


@pytest.mark.parametrize("kind", KINDS)
def test_python_and_graph_decoding_agree(fitted, kind):
    tok = fitted[kind]
    texts = _random_texts(200, seed=5) + EXTRA
    ids = tok.encode(texts)
    assert _tf_text(tok, ids) == [tok.decode(row) for row in ids]


@pytest.mark.parametrize("kind", KINDS)
def test_decode_skips_pad_and_bos_and_stops_at_eos(fitted, corpus, kind):
    tok = fitted[kind]
    texts = [corpus[0], "1999年3月3日"]
    ids = tok.encode(texts)
    assert tok.unk_id not in ids[0] + ids[1]
    rows = [[2, *ids[0], 3, *ids[1]], [2, *ids[1], 3, 0, 0, 0, 0, 0, 0]]
    width = max(map(len, rows))
    batch = np.array([r + [0] * (width - len(r)) for r in rows], np.int32)
    assert [tok.decode(r) for r in batch] == texts
    assert [s.decode() for s in tok.tf_detokenize(tf.constant(batch)).numpy()] == texts
    with pytest.raises(KseqError, match="out of range"):
        tok.decode([tok.vocab_size])


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_load_give_identical_ids(fitted, tmp_path, kind):
    tok = fitted[kind]
    tok.save(tmp_path / kind)
    config = json.loads((tmp_path / kind / "tokenizer.json").read_text())
    assert config["kind"] == kind
    lines = (tmp_path / kind / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert lines[:4] == list(SPECIAL_TOKENS) and lines[-1] == ""
    assert len(lines) - 1 == tok.vocab_size

    loaded = load_tokenizer(tmp_path / kind)
    assert type(loaded) is type(tok) and loaded.vocab == tok.vocab
    texts = _random_texts(100, seed=9) + EXTRA
    assert loaded.encode(texts) == tok.encode(texts)
    assert _tf_ids(loaded, texts) == tok.encode(texts)
    assert type(tok).load(tmp_path / kind).vocab == tok.vocab


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_characters_become_unk(fitted, kind):
    tok = fitted[kind]
    ids = tok.encode(["Жж 1999", "😀"])
    assert ids[1] == [tok.unk_id]
    assert tok.unk_id in ids[0]
    assert _tf_ids(tok, ["Жж 1999", "😀"]) == ids


@pytest.mark.parametrize("kind", KINDS)
def test_misuse_is_reported(kind):
    tok = make_tokenizer(kind)
    with pytest.raises(KseqError, match="no vocabulary"):
        tok.encode(["x"])
    with pytest.raises(TypeError, match="list of strings"):
        tok.fit("a single string")
    with pytest.raises(KseqError, match="vocab_size must be an integer > 4"):
        tok.fit(["abc"], vocab_size=4)
    tok.fit(["abc"])
    with pytest.raises(KseqError, match=r"expects a \(B,\) string tensor"):
        tok.tf_tokenize(tf.constant("abc"))


def test_string_signature_survives_a_saved_model(fitted, tmp_path):
    class Module(tf.Module):
        def __init__(self, toks):
            super().__init__()
            self.toks = toks

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def tokenize(self, text):
            return {k: t.tf_tokenize(text).to_tensor() for k, t in self.toks.items()}

    tf.saved_model.save(Module(dict(fitted)), str(tmp_path / "sm"))
    restored = tf.saved_model.load(str(tmp_path / "sm"))
    texts = ["the 3rd of march, 1999", "一九九九年三月三日", "Жx"]
    out = restored.tokenize(tf.constant(texts))
    for kind, tok in fitted.items():
        ids = tok.encode(texts)
        got = [
            [int(i) for i in row[: len(r)]] for row, r in zip(out[kind].numpy(), ids, strict=True)
        ]
        assert got == ids


# ---- char ---------------------------------------------------------------------------------------


def test_char_round_trip_is_exact_including_chinese_and_whitespace(fitted, corpus):
    tok = fitted["char"]
    for text in corpus[:300] + EXTRA + ["  leading and trailing  ", ""]:
        ids = tok.encode([text])[0]
        assert len(ids) == len(text)
        assert tok.decode(ids) == text
    assert [tok.id_to_token(i) for i in tok.encode(["年月日"])[0]] == ["年", "月", "日"]


def test_char_vocab_size_and_min_count():
    tok = make_tokenizer("char").fit(["aaab", "abc"], vocab_size=6)
    assert tok.vocab == [*SPECIAL_TOKENS, "a", "b"]  # most frequent first
    tok = make_tokenizer("char").fit(["aaab", "abc"], min_count=2)
    assert tok.vocab[4:] == ["a", "b"]
    assert tok.encode(["cab"]) == [[1, 4, 5]]


def test_char_vocab_file_escapes_whitespace_and_backslash(tmp_path):
    tok = make_tokenizer("char").fit(["a b\\c\nd\u3000e\tf"])
    tok.save(tmp_path)
    lines = (tmp_path / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(lines) == tok.vocab_size
    assert {"\\u0020", "\\\\", "\\u000a", "\\u3000", "\\u0009", "a"} <= set(lines)
    assert load_tokenizer(tmp_path).vocab == tok.vocab


# ---- word ---------------------------------------------------------------------------------------


def test_pretokenizer_splits_punctuation_and_cjk_and_marks_glue():
    assert pretokenize("Mar 3, 99") == [("Mar", False), ("3", False), (",", True), ("99", False)]
    # CJK characters are never glued; the token after one keeps its own glue
    assert pretokenize("1999年3月 3日") == [
        ("1999", False), ("年", False), ("3", True), ("月", False), ("3", False), ("日", False),
    ]  # fmt: skip
    assert pretokenize("1999年3月", cjk_glue=True) == [
        ("1999", False), ("年", True), ("3", True), ("月", True),
    ]  # fmt: skip
    assert pretokenize("  a--b\u3000c€5 ") == [
        ("a", False), ("-", True), ("-", True), ("b", True), ("c", False), ("€", True),
        ("5", True),
    ]  # fmt: skip
    assert pretokenize("") == [] and pretokenize(" \t ") == []


def test_word_tokens_and_round_trip(fitted, corpus):
    tok = fitted["word"]
    ids = tok.encode(["Mar 3, 99", "一九九九年三月三日", "1999-03-03"])
    assert [[tok.id_to_token(i) for i in row] for row in ids] == [
        ["Mar", "3", "##,", "99"],
        ["一", "九", "九", "九", "年", "三", "月", "三", "日"],
        ["1999", "##-", "##03", "##-", "##03"],
    ]
    assert not any(t.startswith(GLUE) and is_cjk(t[2:]) for t in tok.vocab)
    # lossless up to whitespace normalisation (runs of whitespace -> one space, ends stripped, no
    # space before a CJK character)
    for text in corpus + ["  Mar   3,\t99  ", "\n我们明天去北京。\t", "Mar 1999年 3月"]:
        assert tok.decode(tok.encode([text])[0]) == _normalised(text)


def test_word_falls_back_to_the_other_glue_form_then_unk():
    tok = make_tokenizer("word").fit(["a, b", "c"])
    assert tok.vocab[4:] == ["##,", "a", "b", "c"]
    assert [tok.id_to_token(i) for i in tok.encode(["c ,a d"])[0]] == ["c", "##,", "a", "<unk>"]
    assert tok.decode(tok.encode(["b ,a"])[0]) == "b, a"
    assert _tf_ids(tok, ["c ,a d", "b ,a"]) == tok.encode(["c ,a d", "b ,a"])


def test_word_vocab_size_keeps_the_most_frequent():
    tok = make_tokenizer("word").fit(["x y y z z z"], vocab_size=6)
    assert tok.vocab[4:] == ["z", "y"]


# ---- wordpiece ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [30, 120, 400, 5000])
def test_wordpiece_learns_at_most_the_requested_size(corpus, size):
    tok = make_tokenizer("wordpiece").fit(corpus, vocab_size=size)
    assert tok.vocab_size <= size
    if size <= 400:
        assert tok.vocab_size == size  # this corpus has enough pairs to fill small vocabularies
    texts = corpus[:100]
    assert _tf_ids(tok, texts) == tok.encode(texts)


def test_wordpiece_encodes_unseen_words_into_pieces(fitted):
    tok = fitted["wordpiece"]
    words = ["Septembers", "2051", "Thursdays", "nineteenth"]
    for word in words:
        (ids,) = tok.encode([word])
        pieces = [tok.id_to_token(i) for i in ids]
        assert tok.unk_id not in ids, pieces
        assert not pieces[0].startswith(GLUE) and all(p.startswith(GLUE) for p in pieces[1:])
        assert tok.decode(ids) == word
    assert len(tok.encode(["Septembers"])[0]) > 1


def test_wordpiece_round_trip_and_glued_words(fitted, corpus):
    tok = fitted["wordpiece"]
    for text in corpus + ["2051-13-45", "Wednesday,the 3rd"]:
        assert tok.decode(tok.encode([text])[0]) == _normalised(text)
    pieces = [tok.id_to_token(i) for i in tok.encode(["1999-03-03"])[0]]
    assert not pieces[0].startswith(GLUE) and all(p.startswith(GLUE) for p in pieces[1:])
    assert len(pieces) >= 5  # "-" is never merged with digits


def test_wordpiece_too_long_words_become_unk(corpus):
    tok = make_tokenizer("wordpiece", max_bytes_per_word=8).fit(corpus, vocab_size=200)
    ids = tok.encode(["abcdefgh", "abcdefghi", "x,abcde", "x,abcdef"])
    assert ids[1] == [1] and 1 not in ids[0]
    assert 1 not in ids[2] and ids[3][-1] == 1  # a glued word counts 3 more bytes
    assert _tf_ids(tok, ["abcdefgh", "abcdefghi", "x,abcde", "x,abcdef"]) == ids


def test_wordpiece_options_are_saved(tmp_path, corpus):
    tok = make_tokenizer("wordpiece", max_bytes_per_word=8).fit(corpus[:50], vocab_size=80)
    tok.save(tmp_path)
    assert json.loads((tmp_path / "tokenizer.json").read_text())["options"] == {
        "max_bytes_per_word": 8,
        "cjk_glue": False,
    }
    assert load_tokenizer(tmp_path).max_bytes_per_word == 8


# ---- files --------------------------------------------------------------------------------------


def test_load_errors_name_the_file(tmp_path, fitted):
    with pytest.raises(KseqError, match="tokenizer file not found: .*tokenizer.json"):
        load_tokenizer(tmp_path / "missing")
    fitted["word"].save(tmp_path / "w")
    with pytest.raises(KseqError, match="kind is 'word', expected 'char'"):
        tokenizers.get("char").load(tmp_path / "w")

    vocab = tmp_path / "w" / "vocab.txt"
    lines = vocab.read_text(encoding="utf-8").split("\n")
    vocab.write_text("\n".join(lines[:6] + [lines[5]] + lines[6:]), encoding="utf-8")
    with pytest.raises(KseqError, match=r"vocab.txt:7: duplicate token .* \(first on line 6\)"):
        load_tokenizer(tmp_path / "w")
    vocab.write_text("<pad>\n<s>\n", encoding="utf-8")
    with pytest.raises(KseqError, match=r"vocab.txt:2: expected special token '<unk>'"):
        load_tokenizer(tmp_path / "w")

    (tmp_path / "w" / "tokenizer.json").write_text('{"kind": "wordpeice"}')
    with pytest.raises(KseqError, match="did you mean 'wordpiece'"):
        load_tokenizer(tmp_path / "w")


# ---- CJK: one id per character ------------------------------------------------------------------

# "中" at the start, after a CJK character, after a Latin word, after a digit, after punctuation
CJK_CONTEXTS = ["中", "文中", "word中", "7中", "中中", "a, 中", ",中", "中。"]


@pytest.mark.parametrize("kind", ["word", "wordpiece"])
def test_a_cjk_character_has_one_id_wherever_it_stands(kind):
    tok = make_tokenizer(kind).fit(["中文 word 7", "文中", "word中 7中", "a, 中。"])
    (expected,) = tok.encode(["中"])[0]
    assert tok.id_to_token(expected) == "中"
    for ids in tok.encode(CJK_CONTEXTS) + _tf_ids(tok, CJK_CONTEXTS):
        assert [i for i in ids if tok.id_to_token(i).removeprefix(GLUE) == "中"] != []
        assert {i for i in ids if tok.id_to_token(i).removeprefix(GLUE) == "中"} == {expected}
    assert _tf_ids(tok, CJK_CONTEXTS) == tok.encode(CJK_CONTEXTS)
    assert GLUE + "中" not in tok.vocab and GLUE + "文" not in tok.vocab


@pytest.mark.parametrize("kind", ["word", "wordpiece"])
def test_cjk_dates_and_mixed_text_decode_exactly(kind):
    texts = ["1999年3月4日", "我们明天去北京。他说：“好的！”", "价格是100元, 3个月 2天。OK"]
    texts += ["3月2, 3月 2"]  # the token after a CJK character keeps its own glue
    tok = make_tokenizer(kind).fit(texts)
    ids = tok.encode(texts)
    assert 1 not in sum(ids, [])
    assert [tok.decode(row) for row in ids] == texts
    assert _tf_text(tok, ids) == texts
    pieces = [tok.id_to_token(i) for i in ids[0]]
    assert [p for p in pieces if p.removeprefix(GLUE) in "年月日"] == ["年", "月", "日"]
    assert pieces[pieces.index("年") + 1] == "##3"  # "3" touches "年": still glued
    assert tok.decode(tok.encode(["3 月"])[0]) == "3月"  # no space is written before CJK


def test_wordpiece_learner_leaves_out_cjk_continuations_only_when_asked():
    counts = {("年", False): 3, ("ab", False): 2}
    assert "##年" not in learn_wordpiece_vocab(counts, None, cjk_continuations=False)
    assert "##年" in learn_wordpiece_vocab(counts, None)  # the BERT tokenizer's behaviour
    assert "##b" in learn_wordpiece_vocab(counts, None, cjk_continuations=False)


@pytest.mark.parametrize("kind", ["word", "wordpiece"])
def test_format_1_files_keep_their_glued_cjk_ids(tmp_path, kind):
    """A tokenizer saved before format 2 (no `cjk_glue` option) still gives the ids it gave."""
    vocab = [*SPECIAL_TOKENS, "1999", "年", "##年", "##3", "月", "##月", "3"]
    (tmp_path / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    options = {"max_bytes_per_word": 100} if kind == "wordpiece" else {}
    config = {"kind": kind, "format_version": 1, "options": options}
    (tmp_path / "tokenizer.json").write_text(json.dumps(config), encoding="utf-8")
    texts = ["1999年3月", "年 3月"]

    old = load_tokenizer(tmp_path)
    assert old.cjk_glue is True
    assert old.encode(texts) == [[4, 6, 7, 9], [5, 10, 9]]  # "年" after "1999" is "##年"
    assert _tf_ids(old, texts) == old.encode(texts)
    assert [old.decode(r) for r in old.encode(texts)] == ["1999年3月", "年 3月"]  # v1 decoding

    config["format_version"] = 2
    config["options"]["cjk_glue"] = False
    (tmp_path / "tokenizer.json").write_text(json.dumps(config), encoding="utf-8")
    new = load_tokenizer(tmp_path)
    assert new.encode(texts) == [[4, 5, 7, 8], [5, 10, 8]]
    assert _tf_ids(new, texts) == new.encode(texts)
    assert [new.decode(r) for r in new.encode(texts)] == ["1999年3月", "年 3月"]

    new.save(tmp_path / "again")
    saved = json.loads((tmp_path / "again" / "tokenizer.json").read_text())
    assert saved["format_version"] == 2 and saved["options"]["cjk_glue"] is False


def test_a_newer_format_version_is_refused(tmp_path, fitted):
    fitted["word"].save(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"kind": "word", "format_version": 3}')
    with pytest.raises(KseqError, match="tokenizer.json: unsupported format_version 3"):
        load_tokenizer(tmp_path)


# ---- whitespace ---------------------------------------------------------------------------------

PHONEMES = ["K AE T", "D AO G", "HH AH L OW", "K AE T S"]


def test_whitespace_splits_at_every_kind_of_whitespace_only():
    tok = make_tokenizer("whitespace").fit(PHONEMES + ["a,b ##x"])
    ids = {t: i for i, t in enumerate(tok.vocab)}
    texts = [
        "K AE T",
        "K\tAE\u3000T",
        "  K   AE\n\nT\u00a0 ",
        "a,b ##x K",
        "K ZZ <s> <unk> T",
        "",
        " \t\u3000",
    ]
    expected = [
        [ids["K"], ids["AE"], ids["T"]],
        [ids["K"], ids["AE"], ids["T"]],
        [ids["K"], ids["AE"], ids["T"]],
        [ids["a,b"], ids["##x"], ids["K"]],
        [ids["K"], 1, 1, 1, ids["T"]],  # unknown pieces, special-token text included
        [],
        [],
    ]
    assert tok.encode(texts) == expected
    assert _tf_ids(tok, texts) == expected
    decoded = ["K AE T"] * 3 + ["a,b ##x K", "K <unk> <unk> <unk> T", "", ""]
    assert [tok.decode(row) for row in expected] == decoded
    assert _tf_text(tok, expected) == decoded


def test_whitespace_vocab_size_min_count_and_files(tmp_path):
    tok = make_tokenizer("whitespace").fit(PHONEMES, vocab_size=7)
    assert tok.vocab[4:] == ["AE", "K", "T"]  # most frequent first, ties by text
    assert make_tokenizer("whitespace").fit(PHONEMES, min_count=2).vocab[4:] == ["AE", "K", "T"]
    tok = make_tokenizer("whitespace").fit(PHONEMES)
    tok.save(tmp_path)
    assert json.loads((tmp_path / "tokenizer.json").read_text())["kind"] == "whitespace"
    loaded = load_tokenizer(tmp_path)
    assert loaded.vocab == tok.vocab
    assert loaded.encode(PHONEMES) == tok.encode(PHONEMES) == _tf_ids(loaded, PHONEMES)
    assert [loaded.decode(row) for row in loaded.encode(PHONEMES)] == PHONEMES
