"""Code points <-> char ids inside the graph: hand-made cases, and agreement with the tokenizer."""

from __future__ import annotations

import numpy as np
import pytest

from kseq.data.codepoints import CodePointMap
from kseq.errors import KseqError
from kseq.tokenizers.kinds import make_tokenizer

VOCAB = ["<pad>", "<unk>", "<s>", "</s>", "a", "b", "年"]


def test_code_points_to_ids_by_hand() -> None:
    table = CodePointMap(VOCAB)
    got = table.to_ids(np.array([[97, 98, 0, 0], [24180, 99, -5, 0x10FFFF]], np.int32))
    # "c" (99), a negative value and a code point beyond the table are all unknown.
    assert np.asarray(got).tolist() == [[4, 5, 0, 0], [6, 1, 1, 1]]


def test_ids_to_code_points_by_hand() -> None:
    table = CodePointMap(VOCAB)
    got = table.to_code_points(np.array([[4, 1, 6, 0], [2, 5, 3, 0]], np.int32))
    assert np.asarray(got).tolist() == [[97, 0xFFFD, 24180, 0], [0, 98, 0, 0]]


def test_agrees_with_the_char_tokenizer_on_text() -> None:
    tokenizer = make_tokenizer("char").fit(["the cat sat", "1999年3月4日", "naïve café"])
    table = CodePointMap(tokenizer.vocab)
    texts = ["the cat", "3月4日 naïve", "zebra ☃"]  # unseen characters included
    points = table.encode(texts, 12)
    assert points.shape == (3, 12) and points[0, 7:].tolist() == [0] * 5
    ids = np.asarray(table.to_ids(points))
    for row, text in zip(ids.tolist(), texts, strict=True):
        assert [i for i in row if i] == tokenizer.encode([text[:12]])[0]
    back = np.asarray(table.to_code_points(ids))
    decoded = ["".join(chr(c) for c in row if c) for row in back.tolist()]
    assert decoded == [tokenizer.decode(row).replace("<unk>", "\ufffd") for row in ids.tolist()]


def test_refuses_what_it_cannot_map() -> None:
    with pytest.raises(KseqError, match="char vocabulary"):
        CodePointMap([*VOCAB, "ab"])
    with pytest.raises(KseqError, match="U\\+40000"):
        CodePointMap([*VOCAB, chr(0x40000)])


def test_edges_of_the_table() -> None:
    table = CodePointMap(VOCAB)
    top = ord("年")
    ids = np.asarray(table.to_ids(np.array([[top - 1, top, top + 1, top + 2]], np.int32)))
    assert ids.tolist() == [[1, 6, 1, 1]]
    # A vocabulary holding U+0000 cannot take it from an app: 0 stays padding both ways.
    with_nul = CodePointMap([*VOCAB, "\x00"])
    assert np.asarray(with_nul.to_ids(np.array([[0, 97]], np.int32))).tolist() == [[0, 4]]
    assert np.asarray(with_nul.to_code_points(np.array([[7, 4]], np.int32))).tolist() == [[0, 97]]
    # Only special tokens: everything but padding is unknown.
    bare = CodePointMap(VOCAB[:4])
    assert np.asarray(bare.to_ids(np.array([[0, 1, 97]], np.int32))).tolist() == [[0, 1, 1]]


def test_which_tokenizers_get_code_point_signatures() -> None:
    char = make_tokenizer("char").fit(["abc"])
    assert CodePointMap.supports(char)
    assert not CodePointMap.supports(make_tokenizer("word").fit(["abc"]))
    assert not CodePointMap.supports(make_tokenizer("char").fit(["a" + chr(0xE0001)]))
