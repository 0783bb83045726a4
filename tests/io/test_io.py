"""Atomic writes: the destination holds the old artifact or the new one, never a partial one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kseq.errors import ExportError, KseqError
from kseq.io import atomic_directory, atomic_write_bytes, atomic_write_text


def _entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_write_bytes_and_text_replace_content(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "model.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    atomic_write_text(tmp_path / "sub" / "r.json", "{}\n")
    assert target.read_bytes() == b"two"
    assert (tmp_path / "sub" / "r.json").read_text() == "{}\n"
    assert _entries(tmp_path / "sub") == ["model.bin", "r.json"]  # no temp files left
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_write_bytes_onto_directory_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(ExportError, match="taken"):
        atomic_write_bytes(tmp_path / "taken", b"x")
    assert _entries(tmp_path) == ["taken"]


def test_directory_moved_into_place_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with atomic_directory(target) as staged:
        assert staged.parent == tmp_path and staged.name.startswith(".")
        assert not target.exists()  # invisible until the block succeeds
        (staged / "a.txt").write_text("new")
    assert (target / "a.txt").read_text() == "new"
    assert _entries(tmp_path) == ["out"]


def test_directory_replaces_existing_one(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_directory(target) as staged:
        (staged / "new.txt").write_text("new")
    assert _entries(target) == ["new.txt"]
    assert _entries(tmp_path) == ["out"]  # the moved-aside copy is deleted


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_directory_removed_on_exception_and_old_kept(tmp_path: Path, exc: BaseException) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(type(exc)), atomic_directory(target) as staged:
        (staged / "half.txt").write_text("half")
        raise exc
    assert _entries(tmp_path) == ["out"]
    assert _entries(target) == ["old.txt"]


def test_directory_never_created_on_exception(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_directory(tmp_path / "out") as staged:
        (staged / "x").write_text("x")
        raise KeyboardInterrupt
    assert _entries(tmp_path) == []


def test_unwritable_parent_is_a_kseq_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(KseqError, match=r"cannot write .*file/out"):
        atomic_write_bytes(blocker / "out", b"x")
    with (
        pytest.raises(KseqError, match=r"cannot write .*file/dir"),
        atomic_directory(blocker / "dir"),
    ):
        pass


def test_existing_file_is_not_replaced_by_a_directory(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("keep")
    with pytest.raises(ExportError, match="not a directory"), atomic_directory(tmp_path / "out"):
        pass
    assert (tmp_path / "out").read_text() == "keep"


def test_plot_titles_name_the_run_the_model_and_the_data(tmp_path):
    import kseq
    from kseq.io.run_dir import plot_title
    from kseq.plots import tick_label

    spec_file = Path(__file__).resolve().parents[2] / "specs" / "rnn_seq2seq_bahdanau.yaml"
    spec = kseq.load_spec(spec_file)
    assert plot_title(tmp_path / "numbers", spec) == "numbers: rnn_seq2seq on built-in dates"
    (tmp_path / "n.tsv").write_text("1\tone\n", encoding="utf-8")
    mine = kseq.load_spec(spec_file, [f"data.train={tmp_path / 'n.tsv'}"])
    assert plot_title(tmp_path / "run", mine) == "run: rnn_seq2seq on n.tsv"
    assert tick_label(" ") == "\u2423" and tick_label("a b") == "a\u2423b"
    assert tick_label("\t") == "\\t"
