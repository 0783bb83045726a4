"""Parallel TSV / JSONL readers: exact FILE:LINE messages, skip and fail policies; length policy."""

import json

import pytest
from helpers import BAD_TSV, BAD_TSV_MESSAGES

from kseq.data.parallel import apply_length_policy, detect_format, read_parallel
from kseq.errors import KseqError


def _write(path, data: bytes | str):
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_good_tsv(tmp_path):
    path = _write(tmp_path / "d.tsv", "Mar 3, 99\t1999-03-03\n一九九九年三月三日\t1999-03-03\n")
    data = read_parallel(path)
    assert data.pairs == [("Mar 3, 99", "1999-03-03"), ("一九九九年三月三日", "1999-03-03")]
    assert (data.skipped, data.messages, len(data)) == (0, [], 2)
    assert data.sources == ["Mar 3, 99", "一九九九年三月三日"]
    assert data.targets == ["1999-03-03", "1999-03-03"]


def test_tsv_with_bom_crlf_and_no_final_newline(tmp_path):
    path = _write(tmp_path / "d.txt", b"\xef\xbb\xbfa b\tc\r\nd\te")
    assert read_parallel(path).pairs == [("a b", "c"), ("d", "e")]


def test_good_jsonl(tmp_path):
    rows = [
        {"source": "3 March 1999", "target": "1999-03-03", "id": 7},
        {"target": "t", "source": "s"},
    ]
    path = _write(
        tmp_path / "d.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    )
    assert read_parallel(path).pairs == [("3 March 1999", "1999-03-03"), ("s", "t")]
    assert (
        read_parallel(_write(tmp_path / "d.json", path.read_bytes())).pairs
        == read_parallel(path).pairs
    )


def test_tsv_skip_counts_bad_lines_with_exact_messages(tmp_path):
    path = _write(tmp_path / "bad.tsv", BAD_TSV)
    data = read_parallel(path, on_error="skip", max_messages=10)
    assert data.pairs == [("good", "pair"), ("fine", "again")]
    assert data.skipped == 7
    assert data.messages == [f"{path}:{m}" for m in BAD_TSV_MESSAGES]
    assert read_parallel(path, on_error="skip").messages == data.messages[:5]  # first few only


def test_tsv_fail_raises_at_the_first_bad_line(tmp_path):
    path = _write(tmp_path / "bad.tsv", BAD_TSV)
    with pytest.raises(KseqError) as info:
        read_parallel(path, on_error="fail")
    assert str(info.value) == f"{path}:2: no tab: expected 'source<TAB>target'"


def test_invalid_utf8_fails_with_its_location(tmp_path):
    path = _write(tmp_path / "u.tsv", b"ok\tok\ncaf\xc3\tx\n")
    with pytest.raises(KseqError) as info:
        read_parallel(path)
    assert str(info.value) == f"{path}:2: invalid UTF-8 (byte 0xc3 at byte 4)"


def test_jsonl_bad_lines(tmp_path):
    lines = [
        '{"source": "a", "target": "b"}',  # 1 good
        '{"source": "a", "target": ',  # 2
        "[1, 2]",  # 3
        '{"source": "a"}',  # 4
        '{"source": 5, "target": "b"}',  # 5
        '{"source": "a", "target": "  "}',  # 6
        "",  # 7
        '{"source": "c", "target": "d"}',  # 8 good
    ]
    path = _write(tmp_path / "d.jsonl", "\n".join(lines) + "\n")
    data = read_parallel(path, on_error="skip", max_messages=10)
    assert data.pairs == [("a", "b"), ("c", "d")]
    assert data.messages == [
        f"{path}:2: invalid JSON: Expecting value (column 27)",
        f"{path}:3: expected a JSON object, found list",
        f"{path}:4: missing key 'target'",
        f"{path}:5: 'source' must be a string, found int",
        f"{path}:6: empty target",
        f"{path}:7: blank line",
    ]
    with pytest.raises(KseqError, match=rf"^{path}:2: invalid JSON"):
        read_parallel(path, on_error="fail")


def test_missing_empty_and_unknown_files(tmp_path):
    with pytest.raises(KseqError, match=rf"parallel data file not found: {tmp_path}/nope.tsv"):
        read_parallel(tmp_path / "nope.tsv")
    with pytest.raises(KseqError, match=rf"parallel data file is empty: {tmp_path}/e.jsonl"):
        read_parallel(_write(tmp_path / "e.jsonl", ""))
    with pytest.raises(KseqError, match="parallel data file is empty"):
        read_parallel(_write(tmp_path / "e2.tsv", "\n\n"))
    with pytest.raises(KseqError, match=r"cannot tell the format .*Received: '.csv'"):
        read_parallel(_write(tmp_path / "d.csv", "a,b\n"))
    assert read_parallel(_write(tmp_path / "d.csv", "a\tb\n"), format="tsv").pairs == [("a", "b")]
    with pytest.raises(KseqError, match="on_error must be one of skip, fail"):
        read_parallel(tmp_path / "d.csv", on_error="ignore")
    assert detect_format("x.TSV") == "tsv" and detect_format("x.json") == "jsonl"


def test_a_file_without_any_good_line_is_an_error_even_when_skipping(tmp_path):
    path = _write(tmp_path / "d.tsv", "no tab\n")
    with pytest.raises(KseqError) as info:
        read_parallel(path, on_error="skip")
    assert str(info.value) == (
        f"no valid pairs in {path} (1 bad lines skipped; first: "
        f"{path}:1: no tab: expected 'source<TAB>target')"
    )


# ---- length policy -----------------------------------------------------------------------------

PAIRS = [([1, 2, 3], [4, 5]), ([1] * 6, [2]), ([1, 2], [3] * 5), ([9] * 7, [8] * 7)]


def test_truncate():
    kept, counts = apply_length_policy(PAIRS, 4, 3, policy="truncate")
    assert kept == [([1, 2, 3], [4, 5]), ([1] * 4, [2]), ([1, 2], [3] * 3), ([9] * 4, [8] * 3)]
    assert counts == {
        "total": 4,
        "kept": 4,
        "truncated": 3,
        "dropped": 0,
        "source_too_long": 2,
        "target_too_long": 2,
    }


def test_drop():
    kept, counts = apply_length_policy(PAIRS, 4, 3, policy="drop")
    assert kept == [([1, 2, 3], [4, 5])]
    assert (counts["kept"], counts["dropped"], counts["truncated"]) == (1, 3, 0)


def test_no_limit_and_bad_arguments():
    kept, counts = apply_length_policy(PAIRS, None, None)
    assert kept == [(list(s), list(t)) for s, t in PAIRS] and counts["truncated"] == 0
    kept, counts = apply_length_policy(PAIRS, None, 5, policy="drop")
    assert len(kept) == 3 and counts["target_too_long"] == 1
    with pytest.raises(KseqError, match="length policy must be one of truncate, drop"):
        apply_length_policy(PAIRS, 3, 3, policy="cut")
    with pytest.raises(KseqError, match="max_source_length must be a positive integer"):
        apply_length_policy(PAIRS, 0, 3)
