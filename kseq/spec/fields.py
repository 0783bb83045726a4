"""Typed spec components: dataclasses whose annotations drive parsing, validation and schema.

A component is a dataclass. Fields use `option(...)` for defaults and constraints. A component
family chosen by a `type:` key derives from `Variant`; subclasses register with `@variant(name)`.
Two validation phases: `parse` checks each field; then `check` runs each component's
cross-field rules on the fully defaulted spec.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from kseq.registry import Registry
from kseq.spec.errors import SpecIssue
from kseq.spec.source import Source, join

_INVALID = object()


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str = "",
    min: float | None = None,
    max: float | None = None,
    above: float | None = None,
    below: float | None = None,
    choices: Callable[[], list[str]] | None = None,
    nonempty: bool = False,
    is_path: bool = False,
) -> Any:
    """A spec field with a default (copied per instance) and value constraints.

    `min`/`max` are inclusive bounds, `above`/`below` exclusive ones; `choices` names the allowed
    strings lazily (usually a registry's `names`), so families can add entries after import.
    `is_path` marks a file path: resolved against the spec's folder and checked to exist.
    """
    metadata = dict(
        help=help,
        min=min,
        max=max,
        above=above,
        below=below,
        choices=choices,
        nonempty=nonempty,
        is_path=is_path,
    )
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata)
    if isinstance(default, list | dict) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class Variant:
    """Base of a component kind chosen by its `type:` key (encoders, noise, models, ...).

    A kind is declared as `class StackSpec(Variant): variants = Registry("encoder type")`;
    its concrete classes subclass it and become registered dataclasses with `@variant("dense")`.
    """

    variants: ClassVar[Registry]


def variant(name: str):
    """Make `cls` a dataclass registered under `name` in its Variant base's registry.

    The decorator owns the `type` field (the key a spec chooses the variant by): it is added
    first, defaulting to `name`, so a variant's body holds only its own fields.
    """

    def decorator(cls):
        if "__dataclass_fields__" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: @variant makes the dataclass; drop @dataclass")
        # A string, as `from __future__ import annotations` leaves every other annotation.
        cls.__annotations__ = {"type": "str", **cls.__dict__.get("__annotations__", {})}
        cls.type = name
        cls = dataclasses.dataclass(cls)
        base = next(b for b in cls.__mro__[1:] if "variants" in b.__dict__)
        base.variants.register(name)(cls)
        cls.type_name = name
        return cls

    return decorator


def named_object(target: str):
    """The object a spec names as `"module:Name"` (a family, a Keras schedule): imported only
    when it is built, so the spec package imports nothing of the code that builds."""
    import importlib

    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _is_variant_base(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Variant) and "variants" in tp.__dict__


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(value: object) -> str:
    if isinstance(value, int) and abs(value) >= 10**60:  # repr of a huge int is slow or refused
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        text = f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def type_name(tp: Any) -> str:
    """A short human description of an annotation, used in 'expected …'."""
    origin = typing.get_origin(tp)
    if tp is bool:
        return "a boolean (true/false)"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(repr(c) for c in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        parts = [type_name(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(parts) + " or null"
    if origin is list:
        return (
            f"a list of {type_name(typing.get_args(tp)[0]).removeprefix('a ').removeprefix('an ')}"
        )
    if _is_variant_base(tp):
        return f"a mapping with 'type' ({', '.join(tp.variants.names())})"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return "any value"


def _is_word_literal(tp: Any) -> bool:
    return typing.get_origin(tp) is Literal and all(isinstance(c, str) for c in typing.get_args(tp))


class Parser:
    """Phase one: converts plain data to component objects, collecting every issue."""

    def __init__(self, source: Source):
        self.source = source
        self.issues: list[SpecIssue] = []

    def fail(self, path, message, expected=None, received=None, at_key=False):
        self.issues.append(self.source.issue(path, message, expected, received, at_key))
        return _INVALID

    def parse(self, tp: Any, value: object, path: str) -> Any:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if value is None:
                return None
            if len(args) == 1:
                return self.parse(args[0], value, path)
            # `str | list[str]`: the value's own shape picks the form (no guessing between two
            # scalars: such a union is not allowed).
            lists = [a for a in args if typing.get_origin(a) is list]
            scalars = [a for a in args if typing.get_origin(a) is not list]
            words = [a for a in scalars if _is_word_literal(a)]
            if len(scalars) == 2 and len(words) == 1 and str not in scalars:
                # `int | Literal["auto"]`: a string can only mean the word.
                (number,) = [a for a in scalars if a is not words[0]]
                if isinstance(value, str) and value not in typing.get_args(words[0]):
                    hint = difflib.get_close_matches(value, typing.get_args(words[0]), 1)
                    message = (
                        f"invalid value (did you mean {hint[0]!r}?)" if hint else "invalid value"
                    )
                    return self.fail(
                        path,
                        message,
                        type_name(number) + " or " + type_name(words[0]).removeprefix("one of "),
                        _describe(value),
                    )
                scalars = [words[0] if isinstance(value, str) else number]
            if len(lists) > 1 or len(scalars) > 1:
                raise TypeError(f"unsupported spec annotation {tp!r} at {path}")
            inner = lists[0] if isinstance(value, list) and lists else scalars[0]
            if not isinstance(value, list) and not scalars:
                return self.fail(path, "wrong type", type_name(tp), _describe(value))
            if isinstance(value, list) and not lists:
                return self.fail(path, "wrong type", type_name(tp), _describe(value))
            if inner is str and not isinstance(value, str):
                return self.fail(path, "wrong type", type_name(tp), _describe(value))
            return self.parse(inner, value, path)
        if value is None:
            return self.fail(path, "must not be null", type_name(tp), "null")
        if tp is Any:
            return value
        if tp is bool:
            if isinstance(value, bool):
                return value
            return self.fail(path, "wrong type", type_name(tp), _describe(value))
        if tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            return self.fail(path, "wrong type", type_name(tp), _describe(value))
        if tp is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                if isinstance(value, int) and abs(value) > 1e308:
                    return self.fail(path, "out of range", "a finite number", _describe(value))
                if not math.isfinite(value):
                    return self.fail(path, "must be finite", "a finite number", _describe(value))
                return float(value)
            return self.fail(path, "wrong type", type_name(tp), _describe(value))
        if tp is str:
            if isinstance(value, str):
                return value
            return self.fail(path, "wrong type", type_name(tp), _describe(value))
        if origin is Literal:
            if any(value == c and type(value) is type(c) for c in typing.get_args(tp)):
                return value
            hint = difflib.get_close_matches(str(value), [str(c) for c in typing.get_args(tp)], 1)
            message = f"invalid value (did you mean {hint[0]!r}?)" if hint else "invalid value"
            return self.fail(path, message, type_name(tp), _describe(value))
        if origin is list:
            if not isinstance(value, list):
                return self.fail(path, "wrong type", type_name(tp), _describe(value))
            (item_type,) = typing.get_args(tp)
            items = [self.parse(item_type, v, join(path, i)) for i, v in enumerate(value)]
            return _INVALID if any(i is _INVALID for i in items) else items
        if _is_variant_base(tp):
            return self.parse_variant(tp, value, path)
        if dataclasses.is_dataclass(tp):
            return self.parse_component(tp, value, path)
        raise TypeError(f"unsupported spec annotation {tp!r} at {path}")

    def parse_variant(self, base, value, path):
        if not isinstance(value, dict):
            return self.fail(path, "wrong type", type_name(base), _describe(value))
        kind = value.get("type", getattr(base, "default_type", None))
        if kind is None:
            expected = "one of " + ", ".join(base.variants.names())
            return self.fail(join(path, "type"), "missing required key 'type'", expected)
        if not isinstance(kind, str) or kind not in base.variants:
            message = base.variants.unknown_message(kind).split(";")[0]
            expected = "one of " + ", ".join(base.variants.names())
            return self.fail(join(path, "type"), message, expected, _describe(kind))
        return self.parse_component(base.variants.get(kind), value, path)

    def parse_component(self, cls, value, path):
        if not isinstance(value, dict):
            return self.fail(path, "wrong type", type_name(cls), _describe(value))
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        hints = _hints(cls)
        ok = True
        for key in value:
            if key not in fields:
                hint = difflib.get_close_matches(str(key), list(fields), n=1)
                message = f"unknown key (did you mean {hint[0]!r}?)" if hint else "unknown key"
                expected = "one of " + ", ".join(fields)
                self.fail(join(path, key), message, expected, repr(key), at_key=True)
                ok = False
        kwargs = {}
        for name, spec_field in fields.items():
            field_path = join(path, name)
            if name not in value:
                required = (
                    spec_field.default is dataclasses.MISSING
                    and spec_field.default_factory is dataclasses.MISSING
                )
                if required:
                    self.fail(field_path, f"missing required key {name!r}", type_name(hints[name]))
                    ok = False
                continue
            parsed = self.parse(hints[name], value[name], field_path)
            if parsed is _INVALID or not self.constrain(spec_field, parsed, field_path):
                ok = False
                continue
            kwargs[name] = parsed
        if "type" in fields and hasattr(cls, "type_name"):  # a variant's registered name
            expected = cls.type_name
            if value.get("type", expected) != expected:
                self.fail(join(path, "type"), "invalid value", repr(expected), value.get("type"))
                ok = False
        return cls(**kwargs) if ok else _INVALID

    def constrain(self, spec_field, value, path) -> bool:
        meta = spec_field.metadata
        values = value if isinstance(value, list) else [value]
        if meta.get("nonempty") and isinstance(value, list | str) and not value:
            self.fail(path, "must not be empty", "at least one item", "[]")
            return False
        for index, item in enumerate(values):
            where = join(path, index) if isinstance(value, list) else path
            if isinstance(item, int | float) and not isinstance(item, bool):
                for key, test, word in (
                    ("min", lambda v, b: v >= b, ">="),
                    ("max", lambda v, b: v <= b, "<="),
                    ("above", lambda v, b: v > b, ">"),
                    ("below", lambda v, b: v < b, "<"),
                ):
                    bound = meta.get(key)
                    if bound is not None and not test(item, bound):
                        self.fail(where, "out of range", f"a value {word} {bound}", _describe(item))
                        return False
            choices = meta.get("choices")
            if choices is not None and isinstance(item, str) and item not in choices():
                names = choices()
                hint = difflib.get_close_matches(item, names, n=1)
                message = f"unknown name (did you mean {hint[0]!r}?)" if hint else "unknown name"
                self.fail(where, message, "one of " + ", ".join(names), repr(item))
                return False
        return True


class Checker:
    """Phase two: cross-field rules. Components define `check(self, checker, path)`."""

    def __init__(self, source: Source, root: object):
        self.source = source
        self.root = root
        self.issues: list[SpecIssue] = []

    def fail(self, path, message, expected=None, received=None) -> None:
        self.issues.append(self.source.issue(path, message, expected, received))

    def walk(self, obj: object, path: str = "") -> None:
        if isinstance(obj, list):
            for index, item in enumerate(obj):
                self.walk(item, join(path, index))
            return
        if not dataclasses.is_dataclass(obj):
            return
        for spec_field in dataclasses.fields(obj):
            self.walk(getattr(obj, spec_field.name), join(path, spec_field.name))
        check = getattr(obj, "check", None)
        if check is not None:
            check(self, path)


def to_data(obj: object) -> object:
    """Component objects -> plain data (every field, defaults included)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, list):
        return [to_data(item) for item in obj]
    return obj


def json_schema(tp: Any) -> dict:
    """JSON Schema (2020-12 subset) of an annotation, from the classes the parser uses."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [json_schema(a) for a in typing.get_args(tp)]}
    if tp is type(None):
        return {"type": "null"}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if tp in simple:
        return {"type": simple[tp]}
    if origin is Literal:
        return {"enum": list(typing.get_args(tp))}
    if origin is list:
        return {"type": "array", "items": json_schema(typing.get_args(tp)[0])}
    if _is_variant_base(tp):
        return {"oneOf": [json_schema(cls) for _, cls in tp.variants.items()]}
    if dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        properties, required = {}, []
        for spec_field in dataclasses.fields(tp):
            if not spec_field.init:
                continue
            prop = json_schema(hints[spec_field.name])
            meta = spec_field.metadata
            if meta.get("help"):
                prop["description"] = meta["help"]
            if meta.get("choices"):
                prop["enum"] = meta["choices"]()
            for key, word in (("min", "minimum"), ("max", "maximum")):
                if meta.get(key) is not None:
                    target = prop["items"] if prop.get("type") == "array" else prop
                    target[word] = meta[key]
            for key, word in (("above", "exclusiveMinimum"), ("below", "exclusiveMaximum")):
                if meta.get(key) is not None:
                    prop[word] = meta[key]
            if spec_field.name == "type" and hasattr(tp, "type_name"):
                prop = {"const": tp.type_name}
            if spec_field.default is not dataclasses.MISSING:
                prop["default"] = spec_field.default
            elif spec_field.default_factory is not dataclasses.MISSING:
                prop["default"] = to_data(spec_field.default_factory())
            else:
                required.append(spec_field.name)
            properties[spec_field.name] = prop
        schema = {"type": "object", "properties": properties, "additionalProperties": False}
        if tp.__doc__ and not tp.__doc__.startswith(tp.__name__ + "("):
            schema["description"] = tp.__doc__.strip().splitlines()[0]
        if required:
            schema["required"] = required
        return schema
    return {}
