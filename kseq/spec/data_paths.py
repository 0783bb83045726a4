"""Spec fields and rules shared by data sections whose training files can stream
(`kseq.data.streaming`): a path field holds a file, a glob or a list of them."""

from __future__ import annotations

from kseq.spec.fields import option


def data_path_field(help: str):
    """`data.train` / `data.validation`: a file, a glob or a list of them, resolved against the
    spec's folder; null means the family's built-in data (train) or a split (validation)."""
    return option(None, is_path=True, help=help)


def streaming_field():
    return option(
        None,
        help="read the training files in a stream instead of into memory; null = stream "
        "several files, gzip, or more than 64 MiB, when data.validation is set",
    )


def shuffle_buffer_field(unit: str):
    return option(100_000, min=1, max=10_000_000, help=f"{unit} shuffled together (streaming)")


def vocab_sample_field(unit: str):
    return option(
        300_000, min=1, max=100_000_000, help=f"{unit} a vocabulary is learned from (streaming)"
    )


def path_items(value) -> list[tuple[str, str]]:
    """(dotted suffix, path) of each path in a path field: "" for a lone path, ".i" in a list."""
    if isinstance(value, str):
        return [("", value)]
    return [(f".{index}", item) for index, item in enumerate(value or [])]


def check_data_paths(data, checker, path: str) -> None:
    """The rules every streamable data section follows: validation needs train, no empty
    list, and a stream needs its own held-out files."""
    if data.validation is not None and data.train is None:
        checker.fail(f"{path}.validation", "set without data.train", "data.train to be set")
    for key in ("train", "validation"):
        value = getattr(data, key)
        if isinstance(value, list) and not value:
            checker.fail(f"{path}.{key}", "must not be empty", "at least one path", "[]")
    if data.streaming and data.validation is None:
        checker.fail(
            f"{path}.validation",
            "needed by streamed training data (data.streaming: true): a stream is not "
            "split in memory",
            "a held-out file, glob or list",
            "null",
        )
