"""A seq2seq spec over streamed data: spec forms (globs, lists, gzip), when a run streams, and
what `load_data` gives (the same messages, counts and epoch length as the in-memory path)."""

import gzip
import math

import pytest

from kseq.data.dates import generate_dates
from kseq.data.shards import streams
from kseq.models.family import family_for
from kseq.spec.errors import SpecError
from kseq.spec.load import load_spec

MODEL = {
    "type": "rnn_seq2seq",
    "embedding_dim": 8,
    "encoder": {"units": 8},
    "decoder": {"units": 8},
}


def _shards(tmp_path, count=3, per_shard=60, bad_line_in=1):
    pairs = generate_dates(count * per_shard + 40, seed=4)
    for i in range(count):
        with gzip.open(tmp_path / f"train-{i}.tsv.gz", "wt", encoding="utf-8") as handle:
            handle.writelines(f"{s}\t{t}\n" for s, t in pairs[i * per_shard : (i + 1) * per_shard])
            if i == bad_line_in:
                handle.write("a line without a tab\n")
    (tmp_path / "valid.tsv").write_text(
        "".join(f"{s}\t{t}\n" for s, t in pairs[count * per_shard :]), encoding="utf-8"
    )
    return pairs


def _spec(tmp_path, **data):
    text = {"train": "train-*.tsv.gz", "validation": "valid.tsv", "on_error": "skip"} | data
    spec_file = tmp_path / "spec.yaml"
    import yaml

    spec_file.write_text(
        yaml.safe_dump({"model": MODEL, "data": text, "train": {"batch_size": 16}}),
        encoding="utf-8",
    )
    return load_spec(spec_file)


def test_globs_and_lists_resolve_against_the_spec_folder(tmp_path):
    _shards(tmp_path)
    spec = _spec(tmp_path)
    assert spec.data.train == str(tmp_path / "train-*.tsv.gz")
    listed = _spec(tmp_path, train=["train-2.tsv.gz", "train-[01].tsv.gz"])
    assert listed.data.train == [
        str(tmp_path / "train-2.tsv.gz"),
        str(tmp_path / "train-[01].tsv.gz"),
    ]


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ({"train": "nothing-*.tsv"}, "data.train", "no file matches the pattern"),
        ({"train": ["train-0.tsv.gz", "gone.tsv"]}, "data.train.1", "file not found"),
        ({"train": ["train-0.tsv.gz", "x.csv"]}, "data.train.1", "unsupported file type"),
        ({"train": []}, "data.train", "must not be empty"),
        ({"train": 7}, "data.train", "wrong type"),
        ({"streaming": True, "validation": None}, "data.validation", "needed by streamed"),
    ],
)
def test_bad_data_paths_are_located_spec_errors(tmp_path, data, path, message):
    _shards(tmp_path)
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(SpecError) as caught:
        _spec(tmp_path, **data)
    (issue,) = caught.value.issues
    assert issue.path == path and message in issue.message
    assert issue.line is not None and str(tmp_path / "spec.yaml") in str(caught.value)


def test_when_a_run_streams(tmp_path):
    _shards(tmp_path)
    (tmp_path / "one.tsv").write_text("a\tb\n" * 20)
    assert streams(_spec(tmp_path).data)  # several files (and gzip)
    assert not streams(_spec(tmp_path, train="one.tsv").data)  # one small file: in memory
    assert streams(_spec(tmp_path, train="one.tsv", streaming=True).data)
    assert not streams(_spec(tmp_path, streaming=False).data)
    assert not streams(_spec(tmp_path, validation=None).data)  # a split is made in memory


def test_streamed_load_data_reports_and_counts_like_the_in_memory_path(tmp_path, capsys):
    _shards(tmp_path)
    limits = {"max_source_length": 20, "max_dropped_share": 0.5}
    streamed = _spec(tmp_path, **limits)
    in_memory = _spec(tmp_path, **limits, streaming=False)
    family = family_for(streamed)
    data = family.load_data(streamed)
    stream_messages = capsys.readouterr().err
    reference = family.load_data(in_memory)
    assert stream_messages == capsys.readouterr().err
    assert "train-1.tsv.gz:61: no tab" in stream_messages
    assert (
        "kseq: data.max_source_length=20: length policy 'drop' drops 34 of 180 training pairs "
        "(18.9%); sources: longest 58, 99th percentile 49 tokens; "
        "--set data.max_source_length=58 keeps them"
    ) in stream_messages
    assert data.info.length_counts == reference.info.length_counts
    kept = data.info.length_counts["train"]["kept"]
    assert int(data.train.cardinality()) == math.ceil(kept / 16) == len(list(data.train))
    assert data.info.tokenizers.source.vocab == reference.info.tokenizers.source.vocab
    assert data.info.validation_pairs == reference.info.validation_pairs
    assert (data.samples["source_ids"] == reference.samples["source_ids"]).all()
    assert data.info.streamed["train_files"] == 3


def test_cli_trains_on_gzip_shards_and_a_bad_line_fails_with_exit_2(tmp_path):
    from helpers import FAST, run_cli

    _shards(tmp_path)
    _spec(tmp_path)  # writes spec.yaml
    spec = str(tmp_path / "spec.yaml")
    sets = [x for o in FAST for x in ("--set", o)]
    failed = run_cli(
        "train", spec, "--output", str(tmp_path / "run"), "--set", "data.on_error=fail", *sets
    )
    assert failed.returncode == 2, failed.stderr
    assert f"{tmp_path / 'train-1.tsv.gz'}:61: no tab" in failed.stderr
    assert "Traceback" not in failed.stderr and not (tmp_path / "run").exists()
    done = run_cli("train", spec, "--output", str(tmp_path / "run"), *sets)
    assert done.returncode == 0, done.stderr
    assert "skipped 1 bad line(s)" in done.stderr and (tmp_path / "run").is_dir()
