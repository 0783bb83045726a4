"""YAML text -> plain Python data plus the line/column of every dotted path.

Only the safe loader's constructors are used: tags such as !!python/object are rejected and
nothing in a spec is ever executed.
"""

from __future__ import annotations

import re
import stat
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


FLOAT_PATTERN = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
SpecLoader.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_PATTERN, list("-+0123456789"))


def load_scalar(text: str) -> object:
    """A `--set` value, read like a scalar in a spec file."""
    return yaml.load(text, Loader=SpecLoader)


def join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


_CONTAINER_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}

# Bounds checked on the composed node graph, before anything is constructed: aliases share
# nodes there, so a "billion laughs" spec is small as a graph and only explodes when expanded.
MAX_SPEC_BYTES = 1 << 20
MAX_NODES = 100_000  # values after alias expansion; real specs have a few hundred
MAX_DEPTH = 64  # nesting of mappings and lists


def _check_graph(root: yaml.Node, file: str) -> None:
    """Refuse alias expansions over MAX_NODES, nesting over MAX_DEPTH and recursive aliases."""
    sizes: dict[int, int] = {}  # id(node) -> expanded size, so shared nodes are walked once
    open_nodes: set[int] = set()

    def fail(node: yaml.Node, path: str, message: str, expected: str) -> None:
        line, col = _mark(node)
        raise SpecError([SpecIssue(file, line, col, path, message, expected)])

    def children(node: yaml.Node, path: str):
        if isinstance(node, yaml.SequenceNode):
            return [(child, join(path, index)) for index, child in enumerate(node.value)]
        pairs = []
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else "?"
            pairs += [(key, path), (value, join(path, name))]
        return pairs

    def size(node: yaml.Node, path: str, depth: int) -> int:
        if depth > MAX_DEPTH:
            fail(node, path, "nested too deeply", f"at most {MAX_DEPTH} levels")
        if isinstance(node, yaml.ScalarNode):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            fail(node, path, "an alias refers to a value that contains it", "no recursive alias")
        open_nodes.add(key)
        total = 1
        for child, child_path in children(node, path):
            total += size(child, child_path, depth + 1)
            if total > MAX_NODES:
                expected = f"at most {MAX_NODES}"
                fail(node, path, "too many values once aliases are expanded", expected)
        open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root, "", 0)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


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
            key = (
                _scalar(key_node, loader, path, source)
                if isinstance(key_node, yaml.ScalarNode)
                else loader.construct_object(key_node, deep=True)
            )
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
    return _scalar(node, loader, path, source)


def _scalar(node, loader, path, source: Source) -> object:
    """A scalar as PyYAML builds it; values it can't build (`2001-02-30`, `!!int x`, an integer
    of more than 4300 digits) are located spec errors."""
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError):
        line, col = _mark(node)
        shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
        message = f"cannot read the value {shown!r} as {node.tag.rpartition(':')[2]}"
        raise SpecError([SpecIssue(source.file, line, col, path, message)]) from None


def parse_yaml(text: str, file: str) -> Source:
    """Parse YAML text with the safe loader, keeping the position of every value."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError([SpecIssue(file, 1, 1, "", "too large", f"at most {MAX_SPEC_BYTES} bytes")])
    try:
        loader = SpecLoader(text)  # the reader rejects control characters here
    except yaml.reader.ReaderError as error:
        line, col = _position(text, error.position)
        char = error.character
        shown = f"U+{char:04X}" if isinstance(char, int) else repr(char)
        problem = f"character {shown} is not allowed in YAML (control characters are not)"
        raise SpecError([SpecIssue(file, line, col, "", problem)]) from None
    except yaml.YAMLError as error:
        raise SpecError([SpecIssue(file, 1, 1, "", f"YAML error: {_one_line(error)}")]) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError([SpecIssue(file, 1, 1, "", "the spec is empty", "a YAML mapping")])
        _check_graph(node, file)
        source = Source(None, file)
        source.data = _construct(node, loader, "", source)
    except yaml.constructor.ConstructorError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = f"not allowed in a spec: {_one_line(error.problem)}"
        raise SpecError([SpecIssue(file, line, col, "", message)]) from None
    except RecursionError:  # the composer recurses once per nesting level
        issue = SpecIssue(file, 1, 1, "", "nested too deeply", f"at most {MAX_DEPTH} levels")
        raise SpecError([issue]) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = _one_line(error.problem or error.context or "invalid YAML")
        raise SpecError([SpecIssue(file, line, col, "", f"YAML error: {problem}")]) from None
    except yaml.YAMLError as error:
        raise SpecError([SpecIssue(file, 1, 1, "", f"YAML error: {_one_line(error)}")]) from None
    finally:
        loader.dispose()
    return source


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset."""
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def read_spec_file(path: str | Path) -> Source:
    """Read and parse a spec file; unreadable files become located spec errors."""
    path = Path(path)
    shown = str(path)

    def refuse(message: str, expected: str | None = None) -> SpecError:
        return SpecError([SpecIssue(shown, 1, 1, "", message, expected)])

    try:
        info = path.stat()
    except FileNotFoundError:
        raise refuse("file not found") from None
    except OSError as error:
        raise refuse(f"cannot read: {error.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise refuse("is a directory", "a YAML spec file")
    if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
        raise refuse("not a regular file", "a YAML spec file")
    if info.st_size > MAX_SPEC_BYTES:
        raise refuse(f"too large ({info.st_size} bytes)", f"at most {MAX_SPEC_BYTES} bytes")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
    except OSError as error:
        raise refuse(f"cannot read: {error.strerror}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise refuse("too large", f"at most {MAX_SPEC_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        issue = SpecIssue(shown, 1, 1, "", f"not valid UTF-8 (byte offset {error.start})")
        raise SpecError([issue]) from None
    return parse_yaml(text, shown)
