"""Streamed parallel text (`kseq.data.streaming`): the same pairs, batches and messages as the
in-memory reader, over shards, globs and gzip, split across workers by file."""

import gzip
import json
import math

import numpy as np
import pytest
from helpers import BAD_TSV, BAD_TSV_MESSAGES

from kseq.data import streaming
from kseq.data.parallel import apply_length_policy, read_parallel
from kseq.data.pipeline import make_dataset, padding_fraction
from kseq.data.shards import data_files
from kseq.errors import KseqError
from kseq.models.seq2seq.family import Tokenizers
from kseq.tokenizers.kinds import make_tokenizer

LENGTHS = streaming.Lengths(max_source=12, max_target=6, policy="drop")


def _pairs(n, seed=0):
    rng = np.random.default_rng(seed)
    words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "年", "月"]
    out = []
    for _ in range(n):
        source = " ".join(rng.choice(words, size=rng.integers(1, 4)))
        out.append((source, source[: rng.integers(1, 9)].strip() or "x"))
    return out


def _write_tsv(path, pairs, opener=open):
    with opener(path, "wt", encoding="utf-8") as handle:
        handle.writelines(f"{s}\t{t}\n" for s, t in pairs)
    return str(path)


def _tokenizers(pairs):
    tokenizer = make_tokenizer("char").fit([s for s, _ in pairs] + [t for _, t in pairs])
    return Tokenizers(tokenizer, tokenizer)


def _in_memory_ids(tokenizers, pairs, lengths=LENGTHS):
    ids = list(
        zip(
            tokenizers.source.encode([s for s, _ in pairs]),
            tokenizers.target.encode([t for _, t in pairs]),
            strict=True,
        )
    )
    kept, counts = apply_length_policy(ids, lengths.max_source, lengths.max_target, lengths.policy)
    return kept, counts


def _batches(dataset):
    return [
        (features["source"].numpy(), features["target_in"].numpy(), target_out.numpy())
        for features, target_out in dataset
    ]


def _stream(files, tokenizers, pairs, batch_size=16, **options):
    options = {"shuffle": False, "seed": 3, "shuffle_buffer": 10_000, "bucketing": False} | options
    return streaming.stream_dataset(files, "tsv", tokenizers, LENGTHS, batch_size, pairs, **options)


@pytest.mark.parametrize("shuffle", [False, True])
def test_streamed_batches_equal_the_in_memory_ones(tmp_path, shuffle):
    pairs = _pairs(300)
    path = _write_tsv(tmp_path / "d.tsv", pairs)
    tokenizers = _tokenizers(pairs)
    kept, counts = _in_memory_ids(tokenizers, pairs)
    assert counts["dropped"] > 0  # the policy is exercised
    (check,) = streaming.check_files([path], "tsv", tokenizers, LENGTHS, "fail")
    assert (check.lines, check.kept, check.over_limits) == (300, len(kept), counts["dropped"])
    memory = make_dataset(
        [s for s, _ in kept], [t for _, t in kept], 16, shuffle=shuffle, seed=3, bucketing=False
    )
    stream = _stream([path], tokenizers, check.kept, shuffle=shuffle)
    assert int(stream.cardinality()) == int(memory.cardinality()) == math.ceil(len(kept) / 16)
    got, expected = _batches(stream), _batches(memory)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_bucketed_stream_keeps_every_pair_in_full_batches_with_less_padding(tmp_path):
    pairs = _pairs(700, seed=1)
    path = _write_tsv(tmp_path / "d.tsv", pairs)
    tokenizers = _tokenizers(pairs)
    kept, _ = _in_memory_ids(tokenizers, pairs)
    stream = _stream([path], tokenizers, len(kept), batch_size=8, shuffle=True, bucketing=True)
    batches = _batches(stream)
    assert len(batches) == int(stream.cardinality()) == math.ceil(len(kept) / 8)
    assert sum(b[0].shape[0] == 8 for b in batches) >= len(batches) - 1
    got = sorted(
        (tuple(s[s > 0]), tuple(t[t > 0])) for b in batches for s, t in zip(*b[:2], strict=True)
    )
    expected = sorted((tuple(s), (2, *t)) for s, t in kept)
    assert got == expected
    for source, target_in, target_out in batches:  # trimmed to the batch's longest
        assert (source[:, -1] > 0).any() and (target_in[:, -1] > 0).any()
        np.testing.assert_array_equal(
            target_in[:, 1:][target_in[:, 1:] > 0], target_out[:, :-1][target_out[:, :-1] > 3]
        )
    plain = _stream([path], tokenizers, len(kept), batch_size=8, shuffle=True)
    assert padding_fraction(stream) < 0.5 * padding_fraction(plain)


def test_gzip_shards_and_globs_give_the_pairs_of_their_plain_concatenation(tmp_path):
    pairs = _pairs(250, seed=2)
    for i in range(3):
        _write_tsv(tmp_path / f"part-{i}.tsv.gz", pairs[i * 100 : (i + 1) * 100], gzip.open)
    files = data_files(str(tmp_path / "part-*.tsv.gz"))
    assert files == [str(tmp_path / f"part-{i}.tsv.gz") for i in range(3)]
    assert data_files([files[2], str(tmp_path / "part-[01].tsv.gz")]) == [files[2], *files[:2]]
    tokenizers = _tokenizers(pairs)
    checks = streaming.check_files(files, "tsv", tokenizers, LENGTHS, "fail")
    assert [c.lines for c in checks] == [100, 100, 50]
    kept = sum(c.kept for c in checks)
    batches = _batches(_stream(files, tokenizers, kept, shuffle=True, shuffle_buffer=64))
    got = sorted(tuple(s[s > 0]) for b in batches for s in b[0])
    assert got == sorted(tuple(s) for s, _ in _in_memory_ids(tokenizers, pairs)[0])
    # The sample of the vocabulary reads the files interleaved block by block, unshuffled.
    assert streaming.first_pairs(files, "tsv", 7) == pairs[:7]
    assert len(streaming.first_pairs(files, "tsv", 10_000)) == 250


def test_bad_lines_are_reported_as_the_in_memory_reader_does(tmp_path):
    tricky = (
        b"\xef\xbb\xbfbom\tfirst\r\n"  # the BOM opens the file: a good line
        + BAD_TSV
        + "全角\u3000\t\u3000\n".encode()  # a target of ideographic space only
        + b"embedded\rreturn\tkept\r\n"  # a "\r" inside a line is text
        + b"last\tline"  # no final newline
    )
    for name, opener in (("bad.tsv", open), ("bad.tsv.gz", gzip.open)):
        path = tmp_path / name
        with opener(path, "wb") as handle:
            handle.write(tricky)
        memory = read_parallel(path, on_error="skip", max_messages=20)
        tokenizers = _tokenizers(memory.pairs)
        lengths = streaming.Lengths(100, 100, "drop")
        (check,) = streaming.check_files([str(path)], "tsv", tokenizers, lengths, "skip", 20)
        assert check.messages == memory.messages
        assert [m.removeprefix(f"{path}:") for m in check.messages[:7]] == [
            f"{int(m.split(':')[0]) + 1}:{m.split(':', 1)[1]}" for m in BAD_TSV_MESSAGES
        ]
        assert (check.skipped, check.pairs) == (memory.skipped, len(memory.pairs))
        assert streaming.first_pairs([str(path)], "tsv", 100) == memory.pairs
        with pytest.raises(KseqError) as in_memory:
            read_parallel(path, on_error="fail")
        with pytest.raises(KseqError) as streamed:
            streaming.check_files([str(path)], "tsv", tokenizers, lengths, "fail")
        expected = f"{path}:3: no tab: expected 'source<TAB>target'"
        assert str(streamed.value) == str(in_memory.value) == expected


def test_jsonl_streams_with_the_readers_messages(tmp_path):
    rows = [
        json.dumps({"source": "a b", "target": "c"}),
        '{"source": "a", "target": ',
        json.dumps({"source": "x", "target": "y", "extra": 1}),
        json.dumps({"source": "a", "target": " "}),
    ]
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    memory = read_parallel(path, on_error="skip")
    tokenizers = _tokenizers(memory.pairs)
    (check,) = streaming.check_files([str(path)], "jsonl", tokenizers, LENGTHS, "skip")
    assert check.messages == memory.messages and check.skipped == 2
    assert (
        streaming.first_pairs([str(path)], "jsonl", 10)
        == memory.pairs
        == [("a b", "c"), ("x", "y")]
    )
    dataset = streaming.stream_dataset(
        [str(path)],
        "jsonl",
        tokenizers,
        LENGTHS,
        4,
        check.kept,
        shuffle=False,
        seed=0,
        shuffle_buffer=8,
        bucketing=True,
    )
    (batch,) = _batches(dataset)
    # bucketing sorts a pool by length: the one-token source first
    assert batch[0].tolist() == [
        tokenizers.source.encode(["x"])[0] + [0, 0],
        tokenizers.source.encode(["a b"])[0],
    ]


def test_empty_and_all_bad_files_are_errors(tmp_path):
    tokenizers = _tokenizers([("a", "b")])
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"")
    with pytest.raises(KseqError, match="parallel data file is empty"):
        streaming.check_files([str(empty)], "tsv", tokenizers, LENGTHS, "skip")
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(b"no tab\n")
    with pytest.raises(
        KseqError, match=r"no valid pairs in .*bad.tsv \(1 bad lines skipped; first: .*:1: no tab"
    ):
        streaming.check_files([str(bad)], "tsv", tokenizers, LENGTHS, "skip")
    with pytest.raises(KseqError, match="mix TSV and JSONL"):
        streaming.common_format(["a.tsv", "b.jsonl.gz"], "train")


def test_workers_split_the_files_and_tf_data_does_not_split_again(tmp_path, monkeypatch):
    files = [f"s{i}.tsv" for i in range(5)]
    assert streaming.worker_files(files, 1, 0, "train") == files
    assert streaming.worker_files(files, 2, 0, "train") == ["s0.tsv", "s2.tsv", "s4.tsv"]
    assert streaming.worker_files(files, 2, 1, "train") == ["s1.tsv", "s3.tsv"]
    with pytest.raises(KseqError, match="6 workers stream whole files, but there are 5"):
        streaming.worker_files(files, 6, 0, "train")

    from types import SimpleNamespace

    from kseq.train import distribute

    spec = SimpleNamespace(
        train=SimpleNamespace(distribute=SimpleNamespace(strategy="multi_worker"))
    )
    cluster = {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"]}
    for task, expected in ((("chief", 0), (3, 0)), (("worker", 1), (3, 2))):
        config = {"cluster": cluster, "task": {"type": task[0], "index": task[1]}}
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
        assert distribute.worker_shard(spec) == expected
    spec.train.distribute.strategy = "none"
    assert distribute.worker_shard(spec) == (1, 0)

    pairs = _pairs(40)
    path = _write_tsv(tmp_path / "d.tsv", pairs)
    tokenizers = _tokenizers(pairs)
    dataset = _stream([path], tokenizers, len(_in_memory_ids(tokenizers, pairs)[0]))
    where = distribute.Placement(strategy=None, multi_worker=True)
    assert distribute.shard_by_data(dataset, where) is dataset
