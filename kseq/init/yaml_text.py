"""A spec as commented YAML: each choice `kseq init` makes carries the fact that made it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

# Comments line up after the longest line up to this width; longer lines keep theirs close.
ALIGN_AT = 48


@dataclass
class Choice:
    """A spec value and why it was chosen (written as a comment beside it)."""

    value: Any
    why: str = ""


def _scalar(value) -> str:
    if isinstance(value, dict | list):
        return yaml.safe_dump(
            value, default_flow_style=True, width=10_000, sort_keys=False, allow_unicode=True
        ).strip()
    text = yaml.safe_dump(value, width=10_000, allow_unicode=True).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def render(tree: dict, header: list[str]) -> str:
    """`tree`: key -> value, `Choice` (one line) or nested dict (a block mapping); comments
    aligned."""
    lines: list[tuple[str, str]] = []

    def walk(node: dict, indent: int) -> None:
        for key, value in node.items():
            prefix = " " * indent + f"{key}:"
            if isinstance(value, Choice):  # one line, a mapping in flow style
                lines.append((f"{prefix} {_scalar(value.value)}", value.why))
            elif isinstance(value, dict) and value:
                lines.append((prefix, ""))
                walk(value, indent + 2)
            else:
                lines.append((f"{prefix} {_scalar(value)}", ""))

    walk(tree, 0)
    commented = [len(text) for text, why in lines if why and len(text) <= ALIGN_AT]
    width = max(commented, default=0) + 2
    body = [
        f"{text.ljust(width) if len(text) < width else text + '  '}# {why}" if why else text
        for text, why in lines
    ]
    return "\n".join([*(f"# {line}".rstrip() for line in header), *body]) + "\n"
