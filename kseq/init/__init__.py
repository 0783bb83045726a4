"""`kseq init DATA`: a commented spec written from the data, which `kseq train` takes unedited.

The file's kind picks the family (pairs: sequence-to-sequence; arrays: autoencoder; `--task`:
a BERT head); each builder measures a bounded sample of the data and writes every choice with
the fact that made it. The spec is validated before it is shown or written.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from pathlib import Path

from kseq.data.preflight import head
from kseq.data.shards import format_name
from kseq.errors import KseqError
from kseq.init import arrays, bert, seq2seq
from kseq.init.yaml_text import render
from kseq.spec.load import load_spec

PAIR_FILES = (".tsv", ".txt", ".jsonl", ".json")
ARRAY_FILES = (".npy", ".npz", ".csv")
BERT_TASKS = ("classification", "tagging", "qa", "masked_lm")
TASKS = ("seq2seq", "autoencoder", *BERT_TASKS)


class SpecPaths:
    """Data paths as the spec writes them: relative to the spec's folder, else absolute."""

    def __init__(self, spec_folder: Path | None):
        self.spec_folder = spec_folder

    def __call__(self, path: str) -> str:
        resolved = Path(path).resolve()
        if self.spec_folder is None:
            return str(resolved)
        return os.path.relpath(resolved, self.spec_folder.resolve())

    @staticmethod
    def stem(path: str) -> str:
        name = Path(format_name(path)).stem
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "data"


def _task_of(data: str) -> str:
    name = format_name(data).lower()
    if name.endswith(PAIR_FILES):
        return "seq2seq"
    if name.endswith(ARRAY_FILES):
        return "autoencoder"
    raise KseqError(
        f"{data}: cannot tell the task from the file name; expected {', '.join(PAIR_FILES)} "
        f"(pairs) or {', '.join(ARRAY_FILES)} (arrays), or --task {'|'.join(BERT_TASKS)}"
    )


def _builder(task: str):
    """The function that writes the spec of `task`."""
    builders = {"seq2seq": seq2seq.pairs_spec, "autoencoder": arrays.arrays_spec}
    builders |= {name: functools.partial(bert.bert_spec, name) for name in BERT_TASKS}
    return builders[task]


def init_spec(
    data: str,
    validation: str | None = None,
    task: str | None = None,
    minutes: float | None = None,
    output: str | None = None,
    overwrite: bool = False,
    pretrained: str | None = None,
) -> str:
    """The spec's YAML text; with `output`, also written there (atomically, validated first).
    `pretrained`: a kseq BERT RUN_DIR to fine-tune (BERT tasks only)."""
    if task is not None and task not in TASKS:
        raise KseqError(f"--task: expected one of {', '.join(TASKS)}; received {task!r}")
    if minutes is not None and not 0 < minutes <= 60 * 24 * 30:
        raise KseqError(f"--minutes: expected a number in (0, 43200]; received {minutes}")
    if pretrained is not None and (task or _task_of(data)) not in BERT_TASKS:
        raise KseqError(f"--from: a pretrained BERT needs --task {'|'.join(BERT_TASKS)}")
    for path in (data, validation):
        if path is not None:
            head(path, 4096)  # exists, regular, not empty
    target = Path(output) if output else None
    if target is not None and target.exists() and not overwrite:
        raise KseqError(f"{target}: already exists; pass --overwrite to replace it")
    build = _builder(task or _task_of(data))
    where = SpecPaths(target.parent if target else None)
    if pretrained is not None:
        build = functools.partial(build, pretrained=pretrained)
    tree, header = build(data, validation, minutes, where)
    text = render(tree, header)
    folder = target.parent if target else Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=".kseq-init-", suffix=".yaml", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        try:
            load_spec(scratch)
        except KseqError as error:  # a bug of init, not the user's: say so plainly
            raise RuntimeError(f"kseq init wrote a spec that does not validate: {error}") from None
        if target is not None:
            os.replace(scratch, target)
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)
    return text
