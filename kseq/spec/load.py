"""Load, override, validate, dump: the public entry points of the spec language."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import yaml

from kseq.data.shards import expand_pattern, is_pattern
from kseq.spec import catalog  # noqa: F401  (registers every family's spec classes)
from kseq.spec.common import ModelSpec, Spec
from kseq.spec.errors import SpecError, SpecIssue
from kseq.spec.fields import _INVALID, Checker, Parser, json_schema, to_data
from kseq.spec.source import FLOAT_PATTERN, Source, join, load_scalar, read_spec_file

OVERRIDE_FILE = "--set"


def parse_override(text: str) -> tuple[str, object]:
    """`a.b.c=value` -> ("a.b.c", value parsed as a YAML scalar)."""
    path, sep, raw = text.partition("=")
    path = path.strip()
    if not sep or not path or any(not part for part in path.split(".")):
        issue = SpecIssue(
            OVERRIDE_FILE, 1, 1, path, "malformed override", "dotted.path=value", text
        )
        raise SpecError([issue])
    try:
        value = load_scalar(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw  # not a YAML scalar: keep the text as a string
    if isinstance(value, dict | list):
        value = raw  # overrides set scalars only; a mapping is almost always a typo
    return path, value


def apply_overrides(source: Source, overrides: list[str]) -> None:
    """Set each dotted path in the parsed data, creating mappings on the way."""
    if not isinstance(source.data, dict):
        return
    for text in overrides:
        path, value = parse_override(text)
        node = source.data
        parts = path.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part) if isinstance(node, dict) else None
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                issue = SpecIssue(
                    OVERRIDE_FILE, 1, 1, where, "cannot set a key inside a non-mapping", None, text
                )
                raise SpecError([issue])
            node = child
        node[parts[-1]] = value
        source.overrides[path] = f"{OVERRIDE_FILE} {text}"


def _resolve_paths(obj, path, source: Source, base_dir: Path, issues: list[SpecIssue]) -> None:
    """Make `is_path` fields absolute (file paths: spec folder; --set paths: cwd) and check them.

    A path field may hold a list of paths, and a path may be a glob pattern (`*`, `?`, `[...]`):
    it stays a pattern, made absolute, and must match at least one file.
    """
    if not dataclasses.is_dataclass(obj):
        return
    for spec_field in dataclasses.fields(obj):
        value = getattr(obj, spec_field.name)
        field_path = join(path, spec_field.name)
        if spec_field.metadata.get("is_path") and isinstance(value, str | list):
            from_cli = source.where(field_path)[0].startswith(OVERRIDE_FILE)
            base = Path.cwd() if from_cli else base_dir
            if isinstance(value, str):
                resolved = _resolve_path(value, field_path, source, base, issues)
            else:
                resolved = [
                    _resolve_path(item, join(field_path, index), source, base, issues)
                    for index, item in enumerate(value)
                ]
            setattr(obj, spec_field.name, resolved)
        else:
            _resolve_paths(value, field_path, source, base_dir, issues)


def _resolve_path(
    value: str, field_path: str, source: Source, base: Path, issues: list[SpecIssue]
) -> str:

    try:
        resolved = (base / Path(value).expanduser()).resolve()
        if is_pattern(value):
            matches = expand_pattern(str(resolved))
            exists = bool(matches)
        else:
            exists = resolved.is_file()
    except (ValueError, OSError) as error:  # a NUL byte, a name too long, ...
        reason = getattr(error, "strerror", None) or str(error)
        issues.append(source.issue(field_path, f"not a usable path ({reason})"))
        return value
    if not exists:
        if is_pattern(value):
            issues.append(
                source.issue(
                    field_path, "no file matches the pattern", "at least one file", str(resolved)
                )
            )
        else:
            issues.append(
                source.issue(field_path, "file not found", "an existing file", str(resolved))
            )
    return str(resolved)


def _parse(source: Source, base_dir: Path) -> Spec:
    if not isinstance(source.data, dict):
        received = "null" if source.data is None else type(source.data).__name__
        raise SpecError([source.issue("", "a spec must be a mapping", "a YAML mapping", received)])
    raw = copy.deepcopy(source.data)
    model_raw = raw.get("model")
    # `data` and `decode` take the shape the model family gives them, so they parse second.
    data_raw = raw.pop("data", None)
    decode_raw = raw.pop("decode", None)
    parser = Parser(source)
    spec = parser.parse(Spec, raw, "")
    model_type = model_raw.get("type") if isinstance(model_raw, dict) else None
    data = decode = None
    if isinstance(model_type, str) and model_type in ModelSpec.variants:
        model_cls = ModelSpec.variants.get(model_type)
        data = parser.parse(model_cls.data_spec, {} if data_raw is None else data_raw, "data")
        decode_cls = getattr(model_cls, "decode_spec", None)
        if decode_cls is not None:
            decode = parser.parse(decode_cls, {} if decode_raw is None else decode_raw, "decode")
        elif decode_raw is not None:
            parser.fail("decode", f"model type {model_type!r} does not decode", "no decode section")
    if parser.issues:
        raise SpecError(parser.issues)
    assert spec is not _INVALID and data is not _INVALID and decode is not _INVALID
    spec.data, spec.decode = data, decode
    issues: list[SpecIssue] = []
    _resolve_paths(spec, "", source, base_dir, issues)
    checker = Checker(source, spec)
    checker.walk(spec)
    issues += checker.issues
    if issues:
        raise SpecError(issues)
    return spec


def load_spec(spec: str | Path | dict | Spec, overrides: list[str] | tuple = ()) -> Spec:
    """Load and validate a spec from a YAML file path or a dict; apply `--set` overrides.

    Raises SpecError listing every problem with FILE:LINE:COL and the dotted path.
    """
    if isinstance(spec, Spec):
        spec = to_data(spec)
    if isinstance(spec, dict):
        try:
            data = copy.deepcopy(spec)
        except RecursionError:
            issue = SpecIssue("<dict>", 1, 1, "", "nested too deeply", "at most 64 levels")
            raise SpecError([issue]) from None
        source = Source(data, "<dict>")
        base_dir = Path.cwd()
    else:
        source = read_spec_file(spec)
        base_dir = Path(spec).resolve().parent
    apply_overrides(source, list(overrides))
    return _parse(source, base_dir)


class _SpecDumper(yaml.SafeDumper):
    """Quotes strings the spec reader would take for YAML 1.2 floats (`"1e3"` stays a string)."""


_SpecDumper.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_PATTERN, list("-+0123456789"))
_LINE_BREAKS = ("\x85", "\u2028", "\u2029")  # written raw with allow_unicode, read as breaks


def dump_spec(spec: Spec) -> str:
    """The effective spec (defaults filled, paths absolute) as YAML; `load_spec` reads it back."""
    data = to_data(spec)
    text = yaml.dump(data, Dumper=_SpecDumper, sort_keys=False, allow_unicode=True)
    if any(mark in text for mark in _LINE_BREAKS):
        text = yaml.dump(data, Dumper=_SpecDumper, sort_keys=False, allow_unicode=False)
    return text


def spec_schema() -> dict:
    """JSON Schema of a spec, generated from the spec classes."""
    schema = json_schema(Spec)
    data_schemas = [json_schema(cls.data_spec) for _, cls in ModelSpec.variants.items()]
    schema["properties"]["data"] = {"anyOf": data_schemas, "description": "the family's data"}
    decode_schemas = [
        json_schema(cls.decode_spec)
        for _, cls in ModelSpec.variants.items()
        if getattr(cls, "decode_spec", None) is not None
    ]
    schema["properties"]["decode"] = {"anyOf": [*decode_schemas, {"type": "null"}]}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "kseq spec"
    return schema
