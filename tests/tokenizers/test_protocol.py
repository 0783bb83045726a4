"""Every tokenizer, seq2seq kinds and BERT's alike, keeps the one `TextTokenizer` protocol: the
same calls give ids that agree in Python and in the graph, text back, and a saved copy that
reads the same ids."""

from __future__ import annotations

import pytest
import tensorflow as tf

from kseq.tokenizers import TextTokenizer
from kseq.tokenizers.bert import BertTokenizer
from kseq.tokenizers.kinds import load_tokenizer, make_tokenizer

TEXTS = ["the cat sat on the mat", "a dog, the cat", "mat sat cat"]
UNSEEN = "the zebra sat"


def _seq2seq(kind):
    tokenizer = make_tokenizer(kind)
    tokenizer.fit(TEXTS)
    return tokenizer, load_tokenizer


def _bert():
    return BertTokenizer.learn(TEXTS, vocab_size=60), BertTokenizer.load


MAKERS = {kind: lambda kind=kind: _seq2seq(kind) for kind in ("char", "whitespace", "word")}
MAKERS |= {"wordpiece": lambda: _seq2seq("wordpiece"), "bert": _bert}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_every_tokenizer_keeps_the_protocol(name, tmp_path):
    tokenizer, load = MAKERS[name]()
    assert isinstance(tokenizer, TextTokenizer)
    assert tokenizer.vocab_size == len(tokenizer.vocab) > 2
    assert tokenizer.vocab[tokenizer.pad_id] != tokenizer.vocab[tokenizer.unk_id]
    ids = tokenizer.encode(TEXTS)
    assert all(ids) and all(tokenizer.unk_id not in row for row in ids)
    graph = tokenizer.tf_tokenize(tf.constant(TEXTS)).to_list()
    assert [list(map(int, row)) for row in graph] == ids
    assert [tokenizer.decode(row).replace(" ", "") for row in ids] == [
        text.replace(" ", "") for text in TEXTS
    ]
    # An unseen word: read as the unknown id, and named by `unknown_tokens`.
    assert tokenizer.unknown_tokens(TEXTS[0]) == []
    unseen = tokenizer.unknown_tokens(UNSEEN)
    assert unseen and all(piece in "zebra" for piece in unseen), unseen
    assert tokenizer.unk_id in tokenizer.encode([UNSEEN])[0]

    saved = load(tokenizer.save(tmp_path / name))
    assert isinstance(saved, TextTokenizer)
    assert saved.vocab == tokenizer.vocab and saved.options() == tokenizer.options()
    assert saved.encode([*TEXTS, UNSEEN]) == tokenizer.encode([*TEXTS, UNSEEN])
