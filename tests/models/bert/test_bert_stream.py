"""Masked-LM text in a stream (`kseq.models.bert.stream`): the documents, rows and batches of
the in-memory path, its UTF-8 message, and a spec over gzip shards end to end."""

import gzip
import math

import numpy as np
import pytest
import yaml
from helpers import SPECS

from kseq.errors import KseqError
from kseq.models.bert import data as bert_data
from kseq.models.bert import stream
from kseq.models.family import family_for
from kseq.spec.errors import SpecError
from kseq.spec.load import load_spec
from kseq.tokenizers.bert import BertTokenizer

TRICKY = (
    "\ufeffthe first line keeps its byte order mark\r\n"
    "   \n"
    "two\u2028documents on one line\n"
    "  padded  with\tspaces \u3000\n"
    "\n"
    "a b\x0bc\x1cd\r"
    + " ".join(f"word{i}" for i in range(40))  # several rows
    + "\nlast line without newline"
)


def _documents(n, seed=0):
    rng = np.random.default_rng(seed)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away", "日本"]
    return [" ".join(rng.choice(words, size=rng.integers(1, 30))) for _ in range(n)]


def _tokenizer(texts):
    return BertTokenizer.learn(texts, vocab_size=200)


def test_documents_rows_and_counts_equal_the_in_memory_ones(tmp_path):
    for name, opener in (("d.txt", open), ("d.txt.gz", gzip.open)):
        path = tmp_path / name
        with opener(path, "wt", encoding="utf-8", newline="") as handle:
            handle.write(TRICKY)
        memory = bert_data.read_documents(str(path), None)
        assert len(memory) == 9
        assert stream.first_documents([str(path)], 100) == memory
        tokenizer = _tokenizer(memory)
        encoded = bert_data.encode_documents(memory, tokenizer, 16)
        assert stream.count_rows([str(path)], tokenizer, 16) == len(encoded) > len(memory)
        batches = stream.stream_rows(
            [str(path)],
            tokenizer,
            16,
            4,
            len(encoded),
            shuffle=False,
            seed=0,
            shuffle_buffer=8,
            finish=bert_data.finish_batch("none"),
        )
        reference = bert_data.make_dataset(encoded, 4, shuffle=False, seed=0, head="none")
        assert int(batches.cardinality()) == math.ceil(len(encoded) / 4)
        pairs = list(zip(batches, reference, strict=True))
        assert len(pairs) == int(batches.cardinality())
        for (got, _), (expected, _) in pairs:
            assert got.keys() == expected.keys()
            for key in got:
                np.testing.assert_array_equal(got[key].numpy(), expected[key].numpy())


def test_shuffled_stream_keeps_every_row_and_masks_them(tmp_path):
    documents = _documents(120)
    (tmp_path / "d.txt").write_text("\n".join(documents) + "\n", encoding="utf-8")
    tokenizer = _tokenizer(documents)
    encoded = bert_data.encode_documents(documents, tokenizer, 12)
    head = load_spec(SPECS / "bert_masked_lm.yaml").model.head
    plain, masked = (
        stream.stream_rows(
            [str(tmp_path / "d.txt")],
            tokenizer,
            12,
            16,
            len(encoded),
            shuffle=True,
            seed=1,
            shuffle_buffer=50,
            finish=finish,
        )
        for finish in (
            bert_data.finish_batch("none"),
            bert_data.finish_batch("masked_lm", head, bert_data.tokenizer_info(tokenizer)),
        )
    )
    # Both first passes take the same shuffle order (a second pass would take the next one):
    # each label is the token the masking replaced at its position.
    (original, _), (inputs, targets) = next(iter(plain)), next(iter(masked))
    labels, positions = targets["logits"].numpy(), inputs["mask_positions"].numpy()
    valid = labels >= 0
    assert valid.any()
    truth = np.take_along_axis(original["token_ids"].numpy(), positions, axis=1)
    np.testing.assert_array_equal(labels[valid], truth[valid])
    rows = sorted(tuple(r[r > 0]) for inputs, _ in plain for r in inputs["token_ids"].numpy())
    assert rows == sorted(tuple(r[r > 0]) for r in encoded.inputs["token_ids"])


def test_a_line_that_is_not_utf8_fails_as_in_memory(tmp_path):
    path = tmp_path / "d.txt"
    path.write_bytes(b"fine text\nstill fine\ncaf\xc3 broken\n")
    tokenizer = _tokenizer(["fine text"])
    with pytest.raises(KseqError) as in_memory:
        bert_data.read_documents(str(path), None)
    with pytest.raises(KseqError) as streamed:
        stream.count_rows([str(path)], tokenizer, 16)
    assert (
        str(streamed.value)
        == str(in_memory.value)
        == f"{path}:3: invalid UTF-8 (byte 0xc3 at byte 4)"
    )


def _spec(tmp_path, **data):
    data = {
        "train": "train-*.txt.gz",
        "validation": "valid.txt",
        "tokenizer": {"vocab_size": 200},
    } | data
    spec = {
        "model": {
            "type": "bert",
            "hidden_size": 16,
            "num_layers": 1,
            "num_heads": 2,
            "intermediate_size": 32,
            "max_sequence_length": 16,
            "head": {"type": "masked_lm", "max_predictions": 4},
        },
        "data": data,
        "train": {"batch_size": 8},
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    return load_spec(tmp_path / "spec.yaml")


def test_masked_lm_spec_streams_gzip_shards_like_the_in_memory_path(tmp_path):
    documents = _documents(90, seed=3)
    for i in range(3):
        with gzip.open(tmp_path / f"train-{i}.txt.gz", "wt", encoding="utf-8") as handle:
            handle.write("\n".join(documents[i * 25 : (i + 1) * 25]) + "\n")
    (tmp_path / "valid.txt").write_text("\n".join(documents[75:]) + "\n", encoding="utf-8")
    streamed, in_memory = _spec(tmp_path), _spec(tmp_path, streaming=False)
    family = family_for(streamed)
    data, reference = family.load_data(streamed), family.load_data(in_memory)
    assert data.info.tokenizer.vocab == reference.info.tokenizer.vocab
    rows = len(bert_data.encode_documents(documents[:75], data.info.tokenizer, 16))
    assert int(data.train.cardinality()) == math.ceil(rows / 8) == len(list(data.train))
    assert int(data.train.cardinality()) == int(reference.train.cardinality())
    for key, value in reference.samples.items():
        np.testing.assert_array_equal(data.samples[key], value)
    assert data.info.validation_rows == len(reference.info.validation)


@pytest.mark.parametrize(
    ("head", "data", "path", "message"),
    [
        ("classification", {"train": "t-*.tsv"}, "data.train", "reads one plain file"),
        ("masked_lm", {"streaming": True, "validation": None}, "data.validation", "needed by"),
        (
            "masked_lm",
            {"streaming": True, "documents": "paragraphs"},
            "data.documents",
            "one document per line",
        ),
    ],
)
def test_streaming_spec_errors_are_located(tmp_path, head, data, path, message):
    (tmp_path / "t-0.tsv").write_text("a\tb\n")
    (tmp_path / "train-0.txt.gz").write_bytes(gzip.compress(b"a b\n"))
    (tmp_path / "valid.txt").write_text("a b\n")
    text = {
        "model": {
            "type": "bert",
            "head": {"type": head, **({"num_classes": 2} if head == "classification" else {})},
        },
        "data": {"train": "train-*.txt.gz", "validation": "valid.txt"} | data,
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(text), encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "spec.yaml")
    matching = [i for i in caught.value.issues if i.path == path]
    assert matching and message in matching[0].message and matching[0].line is not None
