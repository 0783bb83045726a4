"""`auto` lengths and the length-share stop, through the CLI as a user meets them."""

from __future__ import annotations

import subprocess
import sys

import yaml
from helpers import FAST, SPECS, run_cli
from test_cli import assert_user_error, sets

WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _numbers_file(path, count=60):
    """number<TAB>its digits spelled out: targets far longer than a date's."""
    lines = []
    for n in range(100, 100 + count):
        lines.append(f"{n}\t{' '.join(WORDS[int(d) - 1] if d != '0' else 'zero' for d in str(n))}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sources = [line.split("\t")[0] for line in lines]
    targets = [line.split("\t")[1] for line in lines]
    return max(map(len, sources)), max(map(len, targets))


SMALL_MODEL = ["model.encoder.units=8", "model.decoder.units=8", "model.attention.units=8"]


def test_a_limit_that_would_drop_the_data_stops_before_training(tmp_path):
    _, longest_target = _numbers_file(tmp_path / "numbers.tsv")
    run_dir = tmp_path / "run"
    result = run_cli(
        "train",
        str(SPECS / "rnn_seq2seq_bahdanau.yaml"),
        "--output",
        str(run_dir),
        *sets([f"data.train={tmp_path / 'numbers.tsv'}", "data.max_target_length=12", *FAST]),
    )
    assert_user_error(
        result,
        "data.max_target_length=12: length policy 'drop' would drop",
        "more than data.max_dropped_share=0.01",
        f"targets: longest {longest_target}",
        f"--set data.max_target_length={longest_target} keeps them",
    )
    assert result.stderr.count("\n") == 1  # one line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["numbers.tsv"]  # nothing written


def test_auto_lengths_are_the_longest_pair_and_are_saved(tmp_path):
    longest_source, longest_target = _numbers_file(tmp_path / "numbers.tsv")
    (tmp_path / "held_out.tsv").write_text("7\tseven\n12\tone two\n", encoding="utf-8")
    run_dir = tmp_path / "run"
    result = run_cli(
        "train",
        str(SPECS / "rnn_seq2seq_bahdanau.yaml"),
        "--output",
        str(run_dir),
        *sets(
            [
                f"data.train={tmp_path / 'numbers.tsv'}",
                f"data.validation={tmp_path / 'held_out.tsv'}",
                *FAST,
                *SMALL_MODEL,
            ]
        ),
    )
    assert result.returncode == 0, result.stderr
    assert "length policy" not in result.stderr  # auto: nothing dropped
    saved = yaml.safe_load((run_dir / "spec.yaml").read_text(encoding="utf-8"))
    # char tokenizer: one token per character
    assert saved["data"]["max_source_length"] == longest_source
    assert saved["data"]["max_target_length"] == longest_target
    prediction = run_cli("predict", str(run_dir), "123", "--format", "json")
    assert prediction.returncode == 0, prediction.stderr


def test_validate_checks_the_data_it_names(tmp_path):
    _, longest_target = _numbers_file(tmp_path / "numbers.tsv")
    (tmp_path / "empty.tsv").write_bytes(b"")
    (tmp_path / "bad.tsv").write_text("12\tone two\nno tab here\n", encoding="utf-8")
    spec = str(SPECS / "rnn_seq2seq_bahdanau.yaml")

    def validate(*overrides):
        return run_cli("validate", spec, *sets(list(overrides)))

    good = validate(f"data.train={tmp_path / 'numbers.tsv'}")
    assert good.returncode == 0, good.stderr
    assert "1 data file, first 60 training pairs read" in good.stdout
    assert_user_error(
        validate(f"data.train={tmp_path / 'empty.tsv'}"),
        f"data.train: {tmp_path / 'empty.tsv'}: data file is empty",
    )
    assert_user_error(validate(f"data.train={tmp_path / 'bad.tsv'}"), "bad.tsv:2: no tab")
    skipped = validate(f"data.train={tmp_path / 'bad.tsv'}", "data.on_error=skip")
    assert skipped.returncode == 0, skipped.stderr
    lines = (tmp_path / "numbers.tsv").read_text(encoding="utf-8").splitlines()
    over = sum(len(line.split("\t")[1]) > 12 for line in lines)  # char tokens
    assert 0 < over < 60
    assert_user_error(
        validate(f"data.train={tmp_path / 'numbers.tsv'}", "data.max_target_length=12"),
        f"data.max_target_length=12: length policy 'drop' would drop {over} of 60 training pairs",
        f"--set data.max_target_length={longest_target} keeps them",
    )


def test_validate_reads_data_without_tensorflow(tmp_path):
    _numbers_file(tmp_path / "numbers.tsv")
    code = (
        "import sys, kseq\n"
        "from kseq.data.preflight import check_data\n"
        f"spec = kseq.load_spec({str(SPECS / 'rnn_seq2seq_bahdanau.yaml')!r},"
        f" ['data.train={tmp_path / 'numbers.tsv'}', 'data.tokenizer.type=word'])\n"
        "print(check_data(spec))\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "first 60 training pairs read" in done.stdout
