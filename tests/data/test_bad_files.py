"""Bad data files get one clear KseqError naming the file: never a hang, a crash or warnings."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import tempfile
import threading
import time
import warnings
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import SPECS, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kseq.data.arrays import read_array
from kseq.data.parallel import read_parallel
from kseq.errors import KseqError
from kseq.models.bert import data as bert_data

BERT_DATA = SimpleNamespace(
    text_field="text", text_pair_field="text_pair", label_field="label",
    tokens_field="tokens", tags_field="tags", documents="lines",
)  # fmt: skip


@contextlib.contextmanager
def no_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert [str(w.message) for w in caught] == []


def raises_naming(path, call, *fragments, seconds=5.0) -> KseqError:
    """`call()` raises KseqError quickly, with no warning, its one-line message naming `path`."""
    start = time.monotonic()
    with no_warnings(), pytest.raises(KseqError) as caught:
        call()
    assert time.monotonic() - start < seconds
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return caught.value


def _npy_header(shape, descr="<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"shape": shape, "fortran_order": False, "descr": descr}
    )
    return buffer.getvalue()


def _npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


# ---- 1. not a regular file ---------------------------------------------------------------------

READERS = {
    "array .npy": lambda p: read_array(p),
    "array .csv": lambda p: read_array(p),
    "parallel .tsv": lambda p: read_parallel(p),
    "parallel .jsonl": lambda p: read_parallel(p, on_error="skip"),
    "bert classification": lambda p: bert_data.read_classification(p, BERT_DATA),
    "bert tagging": lambda p: bert_data.read_tagging(p, BERT_DATA),
    "bert squad": lambda p: bert_data.read_squad(p),
    "bert documents": lambda p: bert_data.read_documents(p, BERT_DATA),
}
SUFFIX = {"array .csv": ".csv", "parallel .jsonl": ".jsonl", "bert tagging": ".conll"}


def _in_thread(call, fifo: Path, seconds: float = 5.0):
    """Run `call` in a daemon thread; if it blocks on the FIFO, open the write end to free it."""
    outcome = {}

    def target():
        try:
            outcome["value"] = call()
        except BaseException as error:  # handed back to the test
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # the reader sees EOF
        thread.join(seconds)
        pytest.fail(f"reading the FIFO {fifo} blocked")
    return outcome


@pytest.mark.parametrize("reader", list(READERS))
def test_a_fifo_is_refused_before_it_is_opened(tmp_path, reader):
    fifo = tmp_path / f"pipe{SUFFIX.get(reader, '.npy' if 'array' in reader else '.tsv')}"
    os.mkfifo(fifo)
    outcome = _in_thread(lambda: READERS[reader](fifo), fifo)
    error = outcome.get("error")
    assert isinstance(error, KseqError), outcome
    assert str(error) == f"{fifo}: data path is a FIFO (named pipe), not a regular file"


@pytest.mark.parametrize("kind", ["directory", "character device", "socket"])
def test_other_special_files_are_refused(tmp_path, kind):
    path = tmp_path / "d.npy"
    if kind == "directory":
        path.mkdir()
    elif kind == "character device":
        path.symlink_to(os.devnull)  # the link is followed: the target is what counts
    else:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    raises_naming(path, lambda: read_array(path), f"is a {kind}, not a regular file")
    raises_naming(path, lambda: bert_data.read_documents(path, BERT_DATA), kind)
    if kind != "directory":  # that one keeps its own message, tested in test_parallel_reader
        raises_naming(path, lambda: read_parallel(path, format="tsv"), kind)


def test_a_symlink_to_a_regular_file_is_read(tmp_path):
    np.save(tmp_path / "real.npy", np.ones((2, 3)))
    (tmp_path / "link.npy").symlink_to(tmp_path / "real.npy")
    assert read_array(tmp_path / "link.npy").shape == (2, 3)
    (tmp_path / "real.tsv").write_text("a\tb\n")
    (tmp_path / "link.tsv").symlink_to("real.tsv")
    assert read_parallel(tmp_path / "link.tsv").pairs == [("a", "b")]


# ---- 2. a header that lies about the shape -----------------------------------------------------


def test_a_lying_npy_header_is_refused_before_allocating(tmp_path):
    path = tmp_path / "lie.npy"
    path.write_bytes(_npy_header((10**11, 32)) + bytes(128))
    raises_naming(path, lambda: read_array(path), "needs 12800000000000 bytes", "128 are stored")
    truncated = tmp_path / "truncated.npy"
    truncated.write_bytes(_npy_bytes(np.ones((4, 3)))[:-5])
    raises_naming(truncated, lambda: read_array(truncated), "needs 96 bytes", "91 are stored")


def test_a_lying_npz_member_is_refused(tmp_path):
    path = tmp_path / "lie.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("good.npy", _npy_bytes(np.ones((2, 2))))
        archive.writestr("x.npy", _npy_header((10**11, 32)) + bytes(128))
    raises_naming(path, lambda: read_array(path, "x"), "array 'x'", "needs 12800000000000 bytes")
    assert read_array(path, "good").shape == (2, 2)  # only the array asked for is checked


def test_a_true_but_huge_shape_is_refused(tmp_path):
    path = tmp_path / "huge.npy"
    header = _npy_header((2**31, 2))
    path.write_bytes(header)
    os.truncate(path, len(header) + 2**31 * 2 * 4)  # sparse: the size matches, no disk used
    raises_naming(path, lambda: read_array(path), "is too large")


# ---- 3. non-real dtypes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "array, dtype",
    [
        (np.ones((3, 2)) + 1j, "complex128"),
        (np.array([["a", "b"]]), "<U1"),
        (np.array([[b"a"]]), "|S1"),
        (np.zeros(3, dtype=[("a", "<f4")]), "[('a', '<f4')]"),
        (np.array([[1, None]], dtype=object), "object"),
    ],
)
def test_non_real_dtypes_are_refused_by_name(tmp_path, array, dtype):
    np.save(tmp_path / "x.npy", array, allow_pickle=True)
    np.savez(tmp_path / "x.npz", a=array)
    for path in (tmp_path / "x.npy", tmp_path / "x.npz"):
        raises_naming(path, lambda p=path: read_array(p), f"received dtype {dtype}")


def test_bool_int_and_float_still_read(tmp_path):
    for array in (np.ones((2, 2), bool), np.arange(4).reshape(2, 2), np.ones((2, 2), "f2")):
        np.save(tmp_path / "x.npy", array)
        with no_warnings():
            np.testing.assert_array_equal(read_array(tmp_path / "x.npy"), array.astype("f4"))


# ---- 4. values beyond float32 ------------------------------------------------------------------


def test_values_beyond_float32_are_an_error_without_warnings(tmp_path, capfd):
    values = np.ones((3, 2))
    values[1, 1] = 1e300
    np.save(tmp_path / "big.npy", values)
    (tmp_path / "big.csv").write_text("1,2\n3,-1e39\n")
    big_npy = raises_naming(tmp_path / "big.npy", lambda: read_array(tmp_path / "big.npy"))
    assert "beyond float32's range" in str(big_npy) and "sample 1, index (1,)" in str(big_npy)
    raises_naming(tmp_path / "big.csv", lambda: read_array(tmp_path / "big.csv"), "sample 1")
    assert capfd.readouterr().err == ""


# ---- 5. JSON nested too deeply -----------------------------------------------------------------

DEEP = '{"source": ' + "[" * 100_000 + "]" * 100_000 + ', "target": "t"}'


def test_deep_jsonl_follows_the_parallel_on_error_policy(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text('{"source": "a", "target": "b"}\n' + DEEP + "\n")
    error = raises_naming(path, lambda: read_parallel(path, on_error="fail"))
    assert str(error) == f"{path}:2: invalid JSON: nested too deeply"
    with no_warnings():
        data = read_parallel(path, on_error="skip")
    assert data.pairs == [("a", "b")] and data.messages == [str(error)]


def test_deep_json_in_the_bert_readers(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n' + DEEP + "\n")
    for read in (bert_data.read_classification, bert_data.read_tagging):
        raises_naming(path, lambda r=read: r(path, BERT_DATA), f"{path}:2: not valid JSON: nested")
    squad = tmp_path / "squad.json"
    squad.write_text('{"data": ' + DEEP + "}")
    raises_naming(squad, lambda: bert_data.read_squad(squad), "not valid SQuAD JSON: nested")


def test_unpaired_surrogates_and_long_integers_are_bad_lines(tmp_path):
    path = tmp_path / "u.jsonl"
    path.write_text(
        '{"source": "\\ud800", "target": "t"}\n{"source": 1' + "0" * 5000 + "}\n"
        '{"source": "ok", "target": "\\ud83d\\ude00"}\n'  # a proper pair is fine
    )
    data = read_parallel(path, on_error="skip")
    assert data.pairs == [("ok", "\U0001f600")]
    assert [m.split(": ", 1)[1][:22] for m in data.messages] == [
        "'source' holds an unpa",
        "invalid JSON: Exceeds ",
    ]
    bert = tmp_path / "b.jsonl"
    bert.write_text('{"text": "\\udc00", "label": "x"}\n')
    raises_naming(bert, lambda: bert_data.read_classification(bert, BERT_DATA), ":1: ")


# ---- 6. everything else a malformed file can do ------------------------------------------------


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("empty.npy", b"", "data file is empty"),
        ("header.npy", _npy_bytes(np.ones(3))[:20], "cannot read data"),
        ("v3.npy", b"\x93NUMPY\x03\x00" + bytes(8), "unsupported .npy format version 3.0"),
        ("junk.npz", b"PK\x03\x04 not really a zip", "cannot read data"),
        ("raw.npz", None, "cannot read data"),
        ("bytes.csv", b"1,2\n3,\xff\n", "bytes.csv:2: invalid UTF-8 (byte 0xff at byte 3)"),
        ("long.csv", b"1," + b"1" * 200_000 + b"\n", "long.csv:1: field larger than field"),
    ],
)
def test_malformed_array_files(tmp_path, name, content, fragment):
    path = tmp_path / name
    if content is None:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("x", b"not an array")
    else:
        path.write_bytes(content)
    raises_naming(path, lambda: read_array(path), fragment)


def test_malformed_bert_text_files(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(b"text\tlabel\ngood\tpos\nbad \xc3\tneg\n")
    for read in (bert_data.read_classification, bert_data.read_tagging):
        raises_naming(bad, lambda r=read: r(bad, BERT_DATA), f"{bad}:3: invalid UTF-8 (byte 0xc3")
    raises_naming(bad, lambda: bert_data.read_documents(bad, BERT_DATA), ":3: invalid UTF-8")
    raises_naming(bad, lambda: bert_data.read_squad(bad), ":3: invalid UTF-8")
    long = tmp_path / "long.tsv"
    long.write_text("x" * 200_000 + "\tpos\n")
    raises_naming(long, lambda: bert_data.read_classification(long, BERT_DATA), ":1: field")
    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps({"data": [{"paragraphs": [{"context": "c", "qas": ["q"]}]}]}))
    raises_naming(squad, lambda: bert_data.read_squad(squad), "expected SQuAD JSON")
    missing = tmp_path / "missing.txt"
    raises_naming(missing, lambda: bert_data.read_documents(missing, BERT_DATA), "not found")


def test_a_read_error_is_named(tmp_path):
    mem = Path("/proc/self/mem")  # a regular file whose first page cannot be read
    try:
        with mem.open("rb") as handle:
            handle.read(1)
        pytest.skip("/proc/self/mem is readable here")
    except OSError:
        pass
    raises_naming(mem, lambda: read_parallel(mem, format="tsv"), "cannot read data file")
    raises_naming(mem, lambda: bert_data.read_documents(mem, BERT_DATA), "cannot read data file")


# ---- mutated files: data or KseqError, nothing else --------------------------------------------

INSERTS = [b"\0", b"\t", b"\n", b"\r", b"\xff", b"\xc3", b"\xed\xa0\x80", b'"', b"["]
MUTATION = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 2**16), st.integers(0, 255)),
    st.tuples(st.just("flip"), st.integers(0, 2**16), st.integers(0, 7)),
    st.tuples(st.just("truncate"), st.integers(0, 2**16)),
    st.tuples(st.just("insert"), st.integers(0, 2**16), st.sampled_from(INSERTS)),
)


def _mutate(data: bytes, mutations) -> bytes:
    out = bytearray(data)
    for kind, where, *arg in mutations:
        at = where % (len(out) + 1)
        if kind == "truncate":
            del out[at:]
        elif kind == "insert":
            out[at:at] = arg[0]
        elif out:
            at %= len(out)
            out[at] = arg[0] if kind == "set" else out[at] ^ (1 << arg[0])
    return bytes(out)


def _npz_bytes() -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, a=np.arange(6, dtype="f8").reshape(3, 2))
    return buffer.getvalue()


ARRAY_FILES = {
    "x.npy": _npy_bytes(np.arange(12, dtype="f8").reshape(4, 3) / 7),
    "x.npz": _npz_bytes(),
    "x.csv": b"a,b,c\n1,2,3\n4.5,-6,7e3\n",
}
TEXT_FILES = {
    "x.tsv": "Mar 3, 99\t1999-03-03\n三月\t1999-03\nb\tc\n".encode(),
    "x.jsonl": b'{"source": "a\\u00e9", "target": "b"}\n{"source": "c", "target": "d"}\n',
}
BERT_FILES = {
    "c.tsv": b"text\tlabel\ngood film\tpos\nbad one\tneg\n",
    "c.jsonl": b'{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n',
    "t.conll": b"Jos\xc3\xa9\tB-PER\nruns\tO\n\nParis\tB-LOC\n",
    "squad.json": json.dumps(
        {"data": [{"paragraphs": [{"context": "a b", "qas": [
            {"id": "1", "question": "q", "answers": [{"text": "b", "answer_start": 2}]}
        ]}]}]}
    ).encode(),
}  # fmt: skip


def _read_bert(path: Path):
    if path.name.startswith("c."):
        return bert_data.read_classification(path, BERT_DATA)
    if path.name.startswith("t."):
        return bert_data.read_tagging(path, BERT_DATA)
    return bert_data.read_squad(path)


READ_MUTATED = {
    **dict.fromkeys(ARRAY_FILES, read_array),
    **dict.fromkeys(TEXT_FILES, lambda p: (read_parallel(p, "skip"), read_parallel(p, "fail"))),
    **dict.fromkeys(BERT_FILES, _read_bert),
}


def _data_or_kseq_error(name: str, content: bytes) -> None:
    """Any other exception (or a warning) fails the property."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        with no_warnings():
            try:
                READ_MUTATED[name](path)
            except KseqError as error:
                assert str(path) in str(error) and "\n" not in str(error)


MUTATED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@MUTATED
@given(name=st.sampled_from(sorted(ARRAY_FILES)), mutations=st.lists(MUTATION, max_size=4))
def test_mutated_array_files_read_or_raise_kseq_error(name, mutations):
    _data_or_kseq_error(name, _mutate(ARRAY_FILES[name], mutations))


@MUTATED
@given(name=st.sampled_from(sorted(TEXT_FILES)), mutations=st.lists(MUTATION, max_size=4))
def test_mutated_parallel_files_read_or_raise_kseq_error(name, mutations):
    _data_or_kseq_error(name, _mutate(TEXT_FILES[name], mutations))


@MUTATED
@given(name=st.sampled_from(sorted(BERT_FILES)), mutations=st.lists(MUTATION, max_size=4))
def test_mutated_bert_files_read_or_raise_kseq_error(name, mutations):
    _data_or_kseq_error(name, _mutate(BERT_FILES[name], mutations))


# ---- the command line --------------------------------------------------------------------------


def test_cli_reports_a_lying_npy_in_one_line_with_exit_2(tmp_path):
    path = tmp_path / "lie.npy"
    path.write_bytes(_npy_header((10**11, 32)) + bytes(128))
    result = run_cli(
        "train", str(SPECS / "autoencoder_dense.yaml"),
        "--set", f"data.train={path}", "--set", "train.epochs=1",
        "--output", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"kseq: error: {path}: the .npy header's shape")
