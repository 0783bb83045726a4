"""Shared test helpers: tiny spec variants, CLI runner, the README's app loop."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

# Overrides that make any example spec train in a second: few samples, one short epoch.
FAST = ["train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=16"]
# A date model that decodes something after a second of training, with 12 held-out rows.
TINY_DATES = [
    "train.epochs=1",
    "train.steps_per_epoch=6",
    "train.batch_size=16",
    "data.synthetic.train_size=300",
    "data.synthetic.validation_size=12",
    "export.parity_samples=12",
]


def run_cli(*args: str, cwd: Path | None = None, stdin: str | None = None):
    """Run `python -m kseq.cli ARGS`; returns CompletedProcess with text stdout/stderr."""
    env = {**os.environ, "KSEQ_DEBUG": ""}
    return subprocess.run(
        [sys.executable, "-m", "kseq.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        input=stdin,
        env=env,
        timeout=600,
    )


class Crash(Exception):
    """Stands for the process dying: raised from inside training."""


def crash_after_epoch(monkeypatch, epoch: int) -> None:
    """Make training die right after the checkpoint of `epoch` is on disk."""
    from kseq.train import resume

    original = resume.RunCheckpoint._write

    def save_then_crash(self, finished: int, step: int):
        original(self, finished, step)
        if finished == epoch and not step:
            raise Crash(f"after epoch {epoch}")

    monkeypatch.setattr(resume.RunCheckpoint, "_write", save_then_crash)


def readme_app_loop(name: str = "greedy_decode"):
    """`greedy_decode` (or `beam_decode`) from the README's "Your own decoding loop in an app",
    its code blocks run as written, in order, in one namespace."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Your own decoding loop in an app", 1)[1].split("\n## ", 1)[0]
    namespace: dict = {}
    for code in re.findall(r"```python\n(.*?)```", section, re.S):
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    return namespace[name]


# A TSV file with one line of each kind the readers reject, and their messages.
BAD_TSV = (
    b"good\tpair\n"  # 1
    b"no tab here\n"  # 2
    b"source only\t\n"  # 3
    b"\ttarget only\n"  # 4
    b"a\tb\tc\n"  # 5
    b"bad \xff byte\tx\n"  # 6
    b"\n"  # 7
    b"   \t  \n"  # 8
    b"fine\tagain\n"  # 9
)
BAD_TSV_MESSAGES = [
    "2: no tab: expected 'source<TAB>target'",
    "3: empty target",
    "4: empty source",
    "5: expected 2 tab-separated fields, found 3",
    "6: invalid UTF-8 (byte 0xff at byte 5)",
    "7: blank line",
    "8: blank line",  # whitespace only, tab included
]


def wait_for_state(process, state_file, ready, seconds: float = 240) -> None:
    """Poll a training run's checkpoint state until `ready(state)` holds (or the run ends or
    `seconds` pass): the moment a test then kills it."""
    import json
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if ready(json.loads(state_file.read_text())):
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.01)


# A small WordPiece vocabulary (cased and accented words, CJK, continuation pieces) for the
# BERT tokenizer and checkpoint tests.
BERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cafe", "café", "de", "##ja",
              "vu", "!", ",", ".", "hello", "world", "un", "##aff", "##able", "我", "爱", "a",
              "##b", "is", "##n", "'", "t", "run", "##ning", "fox", "jump", "##ed", "over",
              "river", "when", "was", "born", "?", "in", "paris"]  # fmt: skip
