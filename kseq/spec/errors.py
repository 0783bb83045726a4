"""Spec errors: every problem carries its file, line, column and dotted path."""

from __future__ import annotations

from dataclasses import dataclass

from kseq.errors import KseqError


@dataclass(frozen=True)
class SpecIssue:
    """One located problem, rendered FILE:LINE:COL: path: what; expected …; received …"""

    file: str
    line: int
    column: int
    path: str
    message: str
    expected: str | None = None
    received: str | None = None

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.path or '<root>'}: {self.message}"
        if self.expected is not None:
            text += f"; expected {self.expected}"
        if self.received is not None:
            text += f"; received {self.received}"
        return printable(text)


def printable(text: str) -> str:
    """`text` on one line: line breaks and other non-printable characters escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class SpecError(KseqError):
    """All problems of one spec, reported together (one line each)."""

    def __init__(self, issues: list[SpecIssue]):
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))
