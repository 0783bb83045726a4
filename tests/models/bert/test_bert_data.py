"""BERT data: readers, encoding per head, tf.data batches and masked-LM masking statistics."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from kseq.errors import KseqError
from kseq.models.bert import data as bert_data
from kseq.models.bert import synthetic
from kseq.models.bert.heads import bert_head
from kseq.models.bert.qa import encode_windows
from kseq.tokenizers.bert import BertTokenizer, basic_tokenize

DATA = SimpleNamespace(
    text_field="text", text_pair_field="text_pair", label_field="label",
    tokens_field="tokens", tags_field="tags", documents="lines",
)  # fmt: skip


def _masking(rate=0.15, whole_word=False, max_predictions=500):
    return SimpleNamespace(
        mask_rate=rate,
        mask_token_rate=0.8,
        random_token_rate=0.1,
        whole_word=whole_word,
        max_predictions=max_predictions,
    )


def _info(vocab_size=1000, continuation=None):
    return {
        "special_ids": [0, 1, 2, 3, 4],
        "vocab_size": vocab_size,
        "mask_id": 4,
        "pad_id": 0,
        "continuation": continuation if continuation is not None else np.zeros(vocab_size, bool),
    }


def test_masking_statistics_15_percent_80_10_10():
    rng = np.random.default_rng(0)
    tf.random.set_seed(0)
    selected = candidates = 0
    kinds = np.zeros(3)
    for _ in range(8):
        lengths = rng.integers(40, 128, 32)
        ids = np.zeros((32, 128), np.int32)
        for row, n in enumerate(lengths):
            ids[row, :n] = rng.integers(5, 1000, n)
            ids[row, 0], ids[row, n - 1] = 2, 3
        mask = (ids > 0).astype(np.int32)
        masked, positions, labels = (
            t.numpy() for t in bert_data.mask_tokens(tf.constant(ids), tf.constant(mask), _info(),
                                                     _masking())
        )  # fmt: skip
        for row, n in enumerate(lengths):
            chosen = positions[row][labels[row] >= 0]
            # Rounded up per sequence (computed in float32).
            assert len(chosen) == math.ceil(np.float32(n - 2) * np.float32(0.15))
            assert len(set(chosen.tolist())) == len(chosen)
            assert chosen.min() >= 1 and chosen.max() <= n - 2  # never [CLS], [SEP], padding
            np.testing.assert_array_equal(labels[row][labels[row] >= 0], ids[row, chosen])
            others = np.setdiff1d(np.arange(128), chosen)
            np.testing.assert_array_equal(masked[row, others], ids[row, others])
            after = masked[row, chosen]
            kinds += [
                np.sum(after == 4),
                np.sum((after != 4) & (after != ids[row, chosen])),
                np.sum(after == ids[row, chosen]),
            ]
            selected += len(chosen)
            candidates += n - 2
    assert selected / candidates == pytest.approx(0.15, abs=0.01)
    mask_share, random_share, kept_share = kinds / kinds.sum()
    assert kinds.sum() > 2500
    assert mask_share == pytest.approx(0.8, abs=0.03)
    assert random_share == pytest.approx(0.1, abs=0.025)
    assert kept_share == pytest.approx(0.1, abs=0.025)


def test_whole_word_masking_keeps_words_together():
    continuation = np.zeros(100, bool)
    continuation[50:] = True  # ids >= 50 are ## pieces
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(16):
        row = [2]
        while len(row) < 40:
            row += [int(rng.integers(5, 50))] + rng.integers(50, 100, rng.integers(0, 3)).tolist()
        rows.append(row[:40] + [3])
    ids = np.array(rows, np.int32)
    tf.random.set_seed(2)
    masked, positions, labels = (
        t.numpy() for t in bert_data.mask_tokens(
            tf.constant(ids), tf.ones_like(ids), _info(100, continuation), _masking(0.2, True)
        )
    )  # fmt: skip
    for row in range(16):
        chosen = set(positions[row][labels[row] >= 0].tolist())
        starts = [i for i in range(1, 40) if not continuation[ids[row, i]]]
        words = [list(range(s, e)) for s, e in zip(starts, starts[1:] + [40], strict=True)]
        picked = [w for w in words if set(w) & chosen]
        assert all(set(w) <= chosen for w in picked)  # all pieces of a chosen word
        assert len(picked) == math.ceil(0.2 * len(words))


def test_readers(tmp_path):
    (tmp_path / "a.tsv").write_text("text\tlabel\ngood film\tpos\nbad one\tneg\n\n")
    assert bert_data.read_classification(tmp_path / "a.tsv", DATA) == [
        {"text": "good film", "label": "pos"},
        {"text": "bad one", "label": "neg"},
    ]
    (tmp_path / "p.tsv").write_text("a b\tc d\tsame\n")
    assert bert_data.read_classification(tmp_path / "p.tsv", DATA)[0]["text_pair"] == "c d"
    (tmp_path / "bad.tsv").write_text("one\ttwo\tthree\tfour\n")
    with pytest.raises(KseqError, match=r"bad.tsv:1: expected text<TAB>label"):
        bert_data.read_classification(tmp_path / "bad.tsv", DATA)
    custom = SimpleNamespace(**{**vars(DATA), "text_field": "sentence", "label_field": "y"})
    (tmp_path / "c.jsonl").write_text('{"sentence": "x", "y": 1}\n\n{"sentence": "z"}\n')
    with pytest.raises(KseqError, match=r"c.jsonl:3: needs keys 'sentence' and 'y'"):
        bert_data.read_classification(tmp_path / "c.jsonl", custom)
    (tmp_path / "t.conll").write_text("José\tB-PER\nruns\tO\n\nParis\tB-LOC\n")
    assert bert_data.read_tagging(tmp_path / "t.conll", DATA) == [
        {"tokens": ["José", "runs"], "tags": ["B-PER", "O"]},
        {"tokens": ["Paris"], "tags": ["B-LOC"]},
    ]
    (tmp_path / "t.jsonl").write_text('{"tokens": ["a", "b"], "tags": ["O"]}\n')
    with pytest.raises(KseqError, match="2 tokens but 1 tags"):
        bert_data.read_tagging(tmp_path / "t.jsonl", DATA)
    qa = synthetic.qa(3, 0)
    bert_head("span_qa").write_examples(qa, tmp_path / "squad.json")
    assert bert_data.read_squad(tmp_path / "squad.json") == qa
    (tmp_path / "d.txt").write_text("first line\nstill first\n\nsecond\n")
    paragraphs = SimpleNamespace(documents="paragraphs")
    assert bert_data.read_documents(tmp_path / "d.txt", paragraphs) == [
        "first line still first",
        "second",
    ]
    assert len(bert_data.read_documents(tmp_path / "d.txt", DATA)) == 3


def test_qa_answers_map_to_the_right_tokens():
    examples = synthetic.qa(200, 5)
    tok = BertTokenizer.learn(bert_head("span_qa").vocabulary_texts(examples), vocab_size=600)
    head = SimpleNamespace(max_query_length=24, doc_stride=None, no_answer_share=None)
    encoded = encode_windows(examples, tok, 96, head)
    starts, ends = encoded.targets["start_logits"], encoded.targets["end_logits"]
    assert (starts >= 0).all()
    for row, example in enumerate(examples):
        ids = encoded.inputs["token_ids"][row, starts[row] : ends[row] + 1]
        answer = example["answers"][0]["text"]
        assert tok.decode(ids) == " ".join(basic_tokenize(answer))
        assert encoded.inputs["segment_ids"][row, starts[row]] == 1
    # Without a stride, contexts are cut: answers past the window get the ignored label -1.
    head.max_query_length = 8
    short = encode_windows(examples, tok, 20, head)
    assert len(short) == len(examples)
    assert (short.targets["start_logits"] == -1).any()
    assert short.inputs["token_ids"].shape[1] <= 20


def test_tagging_labels_the_first_piece_of_each_word():
    tok = BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "jo", "##se", "runs", "."])
    example = {"tokens": ["José", "runs", "."], "tags": ["B-PER", "O", "O"]}
    encoded = bert_data.encode_tagging([example], tok, ["O", "B-PER"], 16)
    assert encoded.inputs["token_ids"][0].tolist() == [2, 4, 5, 6, 7, 3]
    assert encoded.targets["logits"][0].tolist() == [-1, 1, -1, 0, 0, -1]
    assert encoded.meta[0]["first_piece"] == [(0, 1), (1, 3), (2, 4)]


def test_batches_are_trimmed_and_masked():
    docs = synthetic.documents(40, 0)
    tok = BertTokenizer.learn(docs, vocab_size=300)
    encoded = bert_data.encode_documents(docs, tok, 32)
    dataset = bert_data.make_dataset(
        encoded, 8, shuffle=False, seed=0, head="masked_lm", head_spec=_masking(max_predictions=3),
        tokenizer_info=bert_data.tokenizer_info(tok),
    )  # fmt: skip
    inputs, targets = next(iter(dataset))
    width = int(inputs["padding_mask"].numpy().sum(1).max())
    assert inputs["token_ids"].shape == (8, width)
    assert inputs["mask_positions"].shape == targets["logits"].shape
    assert inputs["mask_positions"].shape[1] <= 3
    tagging = synthetic.entities(20, 0)
    tok = BertTokenizer.learn(bert_head("token_classification").vocabulary_texts(tagging), 200)
    labels = bert_head("token_classification").label_names(tagging)
    assert labels[0] == "O"
    encoded = bert_data.encode_tagging(tagging, tok, labels, 64)
    dataset = bert_data.make_dataset(encoded, 5, shuffle=True, seed=0, head="token_classification")
    for inputs, targets in dataset:
        assert inputs["token_ids"].shape == targets["logits"].shape
        assert inputs["padding_mask"].numpy()[:, -1].any()  # trimmed to the longest row


def test_synthetic_sets_are_deterministic():
    for task in synthetic.GENERATORS:
        first = synthetic.generate(task, 5, 3, 7)
        assert first == synthetic.generate(task, 5, 3, 7)
        assert first != synthetic.generate(task, 5, 3, 8)
        assert json.dumps(first, ensure_ascii=False)
