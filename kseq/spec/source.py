"""YAML text -> plain Python data plus the line/column of every dotted path.

Only the safe loader's constructors are used: tags such as !!python/object are rejected and
nothing in a spec is ever executed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kseq.spec.errors import SpecError, SpecIssue


@dataclass
class Source:
    """Parsed spec data with locations. `where(path)` finds the nearest located ancestor."""

    data: object
    file: str
    locations: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Where each mapping key itself stands (unknown-key errors point at the key, not its value).
    key_locations: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Values set on the command line (`--set`) are located there, not in the file.
    overrides: dict[str, str] = field(default_factory=dict)

    def where(self, path: str) -> tuple[str, int, int]:
        while True:
            if path in self.overrides:
                return (self.overrides[path], 1, 1)
            if path in self.locations:
                return (self.file, *self.locations[path])
            if not path:
                return (self.file, 1, 1)
            path = path.rpartition(".")[0]

    def issue(
        self, path: str, message: str, expected=None, received=None, at_key: bool = False
    ) -> SpecIssue:
        file, line, column = self.where(path)
        if at_key and path in self.key_locations and path not in self.overrides:
            line, column = self.key_locations[path]
        return SpecIssue(file, line, column, path, message, expected, received)


class SpecLoader(yaml.SafeLoader):
    """The safe loader, plus YAML 1.2 floats such as `1e-3` (YAML 1.1 reads them as strings)."""


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_scalar(text: str) -> object:
    """A `--set` value, read like a scalar in a spec file."""
    return yaml.load(text, Loader=SpecLoader)


def join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


_CONTAINER_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


def _construct(node, loader, path, source: Source) -> object:
    locations, file = source.locations, source.file
    locations[path] = _mark(node)
    if not isinstance(node, yaml.ScalarNode) and node.tag not in _CONTAINER_TAGS:
        line, col = _mark(node)
        issue = SpecIssue(file, line, col, path, f"YAML tag {node.tag!r} is not allowed")
        raise SpecError([issue])
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<) the safe way
        result = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) or key is None:
                line, col = _mark(key_node)
                raise SpecError([SpecIssue(file, line, col, path, "keys must be plain scalars")])
            if key in result:
                line, col = _mark(key_node)
                issue = SpecIssue(file, line, col, join(path, key), "duplicate key")
                raise SpecError([issue])
            source.key_locations[join(path, key)] = _mark(key_node)
            result[key] = _construct(value_node, loader, join(path, key), source)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(item, loader, join(path, index), source)
            for index, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


def parse_yaml(text: str, file: str) -> Source:
    """Parse YAML text with the safe loader, keeping the position of every value."""
    try:
        loader = SpecLoader(text)  # the reader rejects control characters here
    except yaml.YAMLError as error:
        raise SpecError([SpecIssue(file, 1, 1, "", f"YAML error: {error}")]) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError([SpecIssue(file, 1, 1, "", "the spec is empty", "a YAML mapping")])
        source = Source(None, file)
        source.data = _construct(node, loader, "", source)
    except yaml.constructor.ConstructorError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = f"not allowed in a spec: {error.problem}"
        raise SpecError([SpecIssue(file, line, col, "", message)]) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = error.problem or error.context or "invalid YAML"
        raise SpecError([SpecIssue(file, line, col, "", f"YAML error: {problem}")]) from None
    except yaml.YAMLError as error:
        raise SpecError([SpecIssue(file, 1, 1, "", f"YAML error: {error}")]) from None
    finally:
        loader.dispose()
    return source


def read_spec_file(path: str | Path) -> Source:
    """Read and parse a spec file; unreadable files become located spec errors."""
    path = Path(path)
    shown = str(path)
    if path.is_dir():
        raise SpecError([SpecIssue(shown, 1, 1, "", "is a directory", "a YAML spec file")])
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError([SpecIssue(shown, 1, 1, "", "file not found")]) from None
    except OSError as error:
        raise SpecError([SpecIssue(shown, 1, 1, "", f"cannot read: {error.strerror}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        issue = SpecIssue(shown, 1, 1, "", f"not valid UTF-8 (byte offset {error.start})")
        raise SpecError([issue]) from None
    return parse_yaml(text, shown)
