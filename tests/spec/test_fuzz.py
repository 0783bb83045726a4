"""Property-based fuzzing: any input either loads or raises SpecError with a location.

Every model family is fuzzed from its example specs (specs/*.yaml): hypothesis mutates the
parsed dict (random leaves, deleted/renamed/unknown keys, other `type:` names, transplanted
sections, shared sub-trees, deep nesting) and the YAML text dumped from it (anchors, aliases,
merge keys, tags, tabs, control characters, deep nesting, broken bytes). The properties:

- `load_spec` returns a Spec or raises SpecError, never anything else;
- every SpecIssue names its file, a line and column >= 1 (within the text) and a message, and
  `str(error)` has exactly one line per issue;
- a loaded spec round-trips: `load_spec(<file of dump_spec(spec)>) == spec`.

The bugs the fuzzers found (all fixed) are kept as minimal cases at the end of this file.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
import shutil
import string
import subprocess
import sys
import tempfile
import types
import typing
from pathlib import Path
from typing import Literal

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kseq.spec.common import ModelSpec, Spec
from kseq.spec.errors import SpecError
from kseq.spec.fields import _hints, _is_variant_base
from kseq.spec.load import dump_spec, load_spec
from kseq.spec.source import parse_yaml

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILES = sorted(ROOT.joinpath("specs").glob("*.yaml"))
FAMILIES = ModelSpec.variants.names()

# ---------------------------------------------------------------------------------------------
# What the spec classes accept, read from the classes themselves (so new fields are fuzzed too).


def _component_classes() -> list[type]:
    seen: list[type] = []
    todo: list[object] = [Spec]
    for _, model_cls in ModelSpec.variants.items():
        todo += [model_cls, model_cls.data_spec, getattr(model_cls, "decode_spec", None)]
    while todo:
        tp = todo.pop()
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType, list):
            todo += typing.get_args(tp)
        elif _is_variant_base(tp):
            todo += [cls for _, cls in tp.variants.items()]
        elif dataclasses.is_dataclass(tp) and tp not in seen:
            seen.append(tp)
            todo += list(_hints(tp).values())
    return seen


def _schema_pools():
    names, literals, choices, type_names, ints, floats = set(), set(), set(), set(), set(), set()
    for cls in _component_classes():
        hints = _hints(cls)
        for spec_field in dataclasses.fields(cls):
            if not spec_field.init:
                continue
            names.add(spec_field.name)
            tp = hints[spec_field.name]
            args = typing.get_args(tp) if typing.get_origin(tp) is Literal else ()
            literals.update(args)
            meta = spec_field.metadata
            if meta.get("choices"):
                choices.update(meta["choices"]())
            if spec_field.name == "type":
                type_names.update(a for a in args if isinstance(a, str))
                type_names.update(meta["choices"]() if meta.get("choices") else ())
                if hasattr(cls, "type_name"):
                    type_names.add(cls.type_name)
            for key in ("min", "max", "above", "below"):
                bound = meta.get(key)
                if bound is None:
                    continue
                if isinstance(bound, int):
                    ints.update({bound - 1, bound, bound + 1})
                else:
                    floats.update({bound, math.nextafter(bound, -math.inf)})
                    floats.update({math.nextafter(bound, math.inf), bound - 0.5, bound + 0.5})
    return (
        sorted(names),
        sorted(literals, key=repr),
        sorted(choices),
        sorted(type_names),
        sorted(ints),
        sorted(floats),
    )


FIELD_NAMES, LITERALS, CHOICES, TYPE_NAMES, BOUNDARY_INTS, BOUNDARY_FLOATS = _schema_pools()

# Files that exist, so `is_path` fields can load (and round-trip) instead of always failing.
WORKDIR = Path(tempfile.gettempdir()) / f"kseq-fuzz-{os.getpid()}"  # made by `_workdir`
DATA_FILES = [
    "train.npy",
    "train.npz",
    "train.csv",
    "train.tsv",
    "train.jsonl",
    "train.json",
    "train.txt",
    "train.conll",
    "vocab.txt",
]
PATHS = DATA_FILES + [str(WORKDIR / name) for name in DATA_FILES]
PATHS += ["missing.npy", "dir.npy", str(WORKDIR / "dir.npy"), "~/nope.tsv", "../x.txt", "/"]
PATHS += ["a\nb.tsv", "x\x00.npy", "n" * 300 + ".txt"]  # once bugs: see the cases at the end


@pytest.fixture(scope="module", autouse=True)
def _workdir():
    WORKDIR.mkdir(exist_ok=True)
    for name in DATA_FILES:
        (WORKDIR / name).write_text("x\n")
    (WORKDIR / "dir.npy").mkdir(exist_ok=True)
    yield
    shutil.rmtree(WORKDIR, ignore_errors=True)


def _seeds() -> tuple[dict[str, list[dict]], dict[str, list[str]]]:
    """Per family: the example specs as dicts (plus the minimal spec), and as text."""
    seeds: dict[str, list[dict]] = {family: [{"model": {"type": family}}] for family in FAMILIES}
    texts: dict[str, list[str]] = {family: [] for family in FAMILIES}
    for path in SPEC_FILES:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        seeds[data["model"]["type"]].append(data)
        texts[data["model"]["type"]].append(text)
    return seeds, texts


SEEDS, SEED_TEXTS = _seeds()
ALL_SEEDS = [seed for family in FAMILIES for seed in SEEDS[family]]

# ---------------------------------------------------------------------------------------------
# Values.

KEYS = [
    "name",
    "model",
    "data",
    "train",
    "export",
    "type",
    "encoder",
    "decoder",
    "units",
    "filters",
    "bottleneck",
    "variational",
    "noise",
    "stddev",
    "epochs",
    "batch_size",
    "optimizer",
    "learning_rate",
    "synthetic",
    "shape",
    "samples",
    "formats",
    "quantize",
    "autoencoder",
    "dense",
    "conv1d",
    "conv2d",
    "gaussian",
    "early_stopping",
    "patience",
]
KEYS = sorted(set(KEYS) | set(FIELD_NAMES) | set(FAMILIES))
UNKNOWN_TYPES = ["", " ", "Autoencoder", "bert ", "transformer", "rnn", "seq2seq", "lstm2", "none "]
# Strings that other YAML resolvers or the loader's YAML 1.2 float rule read as non-strings.
TRICKY_STRINGS = [
    "1e3",
    "1.5e3",
    "-2E-7",
    "1_0e1_0",
    "0x1F",
    "0o17",
    "0b101",
    "1_000",
    "1:30",
    "yes",
    "No",
    "on",
    "null",
    "~",
    "true",
    ".nan",
    "-.inf",
    "2001-12-14",
    "<<",
    "=",
    "*a",
    "&a",
    "!!python/object/apply:os.system",
    "a: b",
    "- x",
    "#",
    "{",
    "[",
    "'",
    '"',
    "%",
    "@",
    "`",
    "a\nb",
    "\t",
    " x ",
    "é年",
    "\u2028",
    "\x85",
    "\ufeff",
]
BIG_INTS = [
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    2**40,
    -(2**40),
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63) - 1,
    10**20,
    10**300,  # below 1.8e308: still a float
    10**400,  # beyond any float
]
SPECIAL_FLOATS = [0.0, -0.0, 5e-324, 1e-300, 1.7976931348623157e308, math.nan, math.inf, -math.inf]

ints = st.one_of(
    st.integers(-5, 300),
    st.sampled_from(BOUNDARY_INTS + BIG_INTS),
    st.integers(-(2**70), 2**70),
)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(BOUNDARY_FLOATS + SPECIAL_FLOATS),
)
strings = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        TRICKY_STRINGS
        + KEYS
        + [c for c in LITERALS if isinstance(c, str)]
        + CHOICES
        + TYPE_NAMES
        + UNKNOWN_TYPES
        + PATHS
    ),
)
scalars = st.one_of(st.none(), st.booleans(), ints, floats, strings)
keys = st.one_of(
    st.sampled_from(KEYS),
    st.text(string.ascii_letters + "_", min_size=1, max_size=8),
    st.text(max_size=6),
    st.integers(-3, 3),
    st.sampled_from([True, 1.5, "<<", "type "]),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=12,
)


def near(value: object) -> st.SearchStrategy:
    """Values close to `value`: its neighbours, the bounds, other valid names, another type."""
    if isinstance(value, bool):
        return st.sampled_from([not value, None, 0, 1, "true", [value]])
    if isinstance(value, int):
        close = [value - 1, value + 1, 0, -value, value * 2, value * 1000, str(value)]
        close += [float(value)] if abs(value) < 1e308 else []  # a big int has no float
        return st.one_of(st.sampled_from(close), st.sampled_from(BOUNDARY_INTS + BIG_INTS))
    if isinstance(value, float):
        close = [0.0, -value, value * 10, value / 10, 1.0, str(value), math.nan]
        close += [round(value)] if math.isfinite(value) else []
        return st.one_of(st.sampled_from(close), st.sampled_from(BOUNDARY_FLOATS + SPECIAL_FLOATS))
    if isinstance(value, str):
        close = [value.upper(), value + " ", value[:-1], "", value * 2, None, [value]]
        names = [c for c in LITERALS if isinstance(c, str)] + CHOICES + TYPE_NAMES + PATHS
        return st.one_of(st.sampled_from(close), st.sampled_from(names + TRICKY_STRINGS))
    if isinstance(value, list):
        item = near(value[0]) if value else scalars
        return st.one_of(st.lists(item, max_size=5), st.just(value[:-1]), st.just(value * 2))
    return values


# ---------------------------------------------------------------------------------------------
# Mutations of a spec dict. The tree is held as `[root]`, so the root is replaceable too.


def _nodes(tree: object, path: tuple = ()):
    yield path, tree
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from _nodes(value, (*path, index))


def _get(tree: object, path: tuple) -> object:
    for key in path:
        tree = tree[key]
    return tree


def _pick(draw, holder: list, test=lambda path, node: True, root: bool = False) -> tuple | None:
    paths = [p for p, n in _nodes(holder) if (root or len(p) > 1) and p and test(p, n)]
    return draw(st.sampled_from(paths)) if paths else None


def _replace_wild(draw, holder, root_ok=False):
    path = _pick(draw, holder, root=root_ok and draw(st.integers(0, 20)) == 0)
    if path is not None:
        _get(holder, path[:-1])[path[-1]] = draw(values)


def _replace_near(draw, holder):
    path = _pick(draw, holder, lambda p, n: not isinstance(n, dict))
    if path is not None:
        _get(holder, path[:-1])[path[-1]] = draw(near(_get(holder, path)))


def _delete(draw, holder):
    path = _pick(draw, holder)
    if path is not None:
        del _get(holder, path[:-1])[path[-1]]


def _add_key(draw, holder):
    path = _pick(draw, holder, lambda p, n: isinstance(n, dict), root=True)
    if path is not None:
        _get(holder, path)[draw(keys)] = draw(st.one_of(values, near(draw(scalars))))


def _rename_key(draw, holder):
    path = _pick(draw, holder, lambda p, n: isinstance(p[-1], str))
    if path is not None and isinstance(_get(holder, path[:-1]), dict):
        parent = _get(holder, path[:-1])
        new = draw(st.one_of(keys, st.sampled_from([path[-1].upper(), path[-1] + "s"])))
        parent[new] = parent.pop(path[-1])


def _retype(draw, holder):
    path = _pick(draw, holder, lambda p, n: isinstance(n, dict), root=True)
    if path is not None:
        name = draw(st.one_of(st.sampled_from(TYPE_NAMES + FAMILIES + UNKNOWN_TYPES), scalars))
        _get(holder, path)["type"] = name


def _transplant(draw, holder):
    donor = [draw(st.sampled_from(ALL_SEEDS))]
    source = _pick(draw, donor)
    target = _pick(draw, holder, root=isinstance(_get(donor, source or ()), dict))
    if source is not None and target is not None:
        parent = _get(holder, target[:-1])
        if isinstance(parent, dict):  # graft under the donor's key, or replace a node
            key = draw(st.sampled_from([source[-1], target[-1]]))
            parent[key] = copy.deepcopy(_get(donor, source))
        else:
            parent[target[-1]] = copy.deepcopy(_get(donor, source))


def _deepen(draw, holder):
    path = _pick(draw, holder)
    if path is not None:
        node = _get(holder, path)
        for _ in range(draw(st.sampled_from([1, 2, 10, 63, 64, 65, 100]))):
            node = draw(st.sampled_from([[node], {"type": node}, {"a": node}]))
        _get(holder, path[:-1])[path[-1]] = node


MUTATIONS = [
    _replace_wild,
    _replace_near,
    _replace_near,
    _delete,
    _add_key,
    _rename_key,
    _retype,
    _transplant,
    _deepen,
]


def _share(draw, holder):
    """Make two separate places hold the same mapping or list (YAML: an anchor and alias)."""
    containers = [p for p, n in _nodes(holder) if len(p) > 1 and isinstance(n, dict | list)]
    if len(containers) < 2:
        return
    source, target = draw(st.lists(st.sampled_from(containers), min_size=2, max_size=2))
    related = source[: len(target)] == target or target[: len(source)] == source
    if not related:  # never a cycle: the target is neither inside nor above the source
        _get(holder, target[:-1])[target[-1]] = _get(holder, source)


@st.composite
def mutated_specs(draw, family: str, max_mutations: int = 4, root_ok: bool = False):
    """A family's example spec, mutated. Only YAML text may be other than a mapping at the root
    (`load_spec` takes a path or a dict)."""
    holder = [copy.deepcopy(draw(st.sampled_from(SEEDS[family])))]
    for _ in range(draw(st.integers(1, max_mutations))):
        mutation = draw(st.sampled_from(MUTATIONS))
        if mutation is _replace_wild:
            mutation(draw, holder, root_ok)
        else:
            mutation(draw, holder)
    if draw(st.integers(0, 4)) == 0:
        _share(draw, holder)
    return holder[0]


def _literal_groups() -> list[tuple]:
    groups = []
    for cls in _component_classes():
        for tp in _hints(cls).values():
            for arg in (tp, *typing.get_args(tp)):
                if typing.get_origin(arg) is Literal:
                    groups.append(typing.get_args(arg))
    return groups


LITERAL_GROUPS = _literal_groups()


def gentle(value: object) -> st.SearchStrategy:
    """A value of the same kind as `value`, usually still valid: the spec should often load."""
    if isinstance(value, bool):
        return st.just(not value)
    if isinstance(value, int):
        return st.sampled_from([value + 1, value * 2, max(value // 2, 1), value - 1])
    if isinstance(value, float):
        return st.sampled_from([value / 2, value / 10, value * 1.1])
    if isinstance(value, str):
        others = [c for group in LITERAL_GROUPS if value in group for c in group]
        free = st.one_of(st.text(min_size=1, max_size=10), st.sampled_from(TRICKY_STRINGS))
        return st.sampled_from(others) if others else free
    if isinstance(value, list) and value:
        return st.one_of(
            st.lists(gentle(value[0]), min_size=1, max_size=4), st.just(value + value[-1:])
        )
    return st.sampled_from([None, *PATHS])


@st.composite
def near_valid_specs(draw, family: str):
    """Mostly loadable specs: seeds with one to three leaves moved to a similar value."""
    holder = [copy.deepcopy(draw(st.sampled_from(SEEDS[family])))]
    for _ in range(draw(st.integers(1, 3))):
        path = _pick(draw, holder, lambda p, n: not isinstance(n, dict))
        if path is not None:
            _get(holder, path[:-1])[path[-1]] = draw(gentle(_get(holder, path)))
    if draw(st.integers(0, 3)) == 0:
        _share(draw, holder)
    return holder[0]


# ---------------------------------------------------------------------------------------------
# Mutations of YAML text.

VALUE_LINE = re.compile(r"^(\s*(?:- )?[^\s:#'\"{\[&*!|>-][^:#]*?): (?![&*!|>])(\S.*)$")
MAPPING_LINE = re.compile(r"^(\s*)([^\s:#'\"{\[&*!|>-][^:#]*):\s*$")
TAGS = [
    "!!str",
    "!!int",
    "!!float",
    "!!bool",
    "!!null",
    "!!binary",
    "!!timestamp",
    "!!set",
    "!!omap",
    "!!map",
    "!!seq",
    "!!python/object/apply:os.system",
    "!!python/name:os.system",
    "!custom",
    "!",
]
CONTROL_CHARS = [
    "\x00",
    "\x01",
    "\x07",
    "\x08",
    "\x0b",
    "\x0c",
    "\x1b",
    "\x7f",
    "\x85",
    "\x9f",
    "\u2028",
    "\ufeff",
    "\ufffe",
    "\uffff",
    "\r",
    "\t",
]
YAML_CHARS = list(":{}[],&*#?|-<>=!%@`'\"\\ \t\n") + ["---", "...", "<<: ", "- ", ": "]


def _lines_matching(lines: list[str], pattern: re.Pattern) -> list[int]:
    return [i for i, line in enumerate(lines) if pattern.match(line)]


def _text_anchor_alias(draw, lines):
    found = _lines_matching(lines, VALUE_LINE)
    if len(found) >= 2:
        first, second = sorted(draw(st.lists(st.sampled_from(found), min_size=2, max_size=2)))
        lines[first] = VALUE_LINE.sub(r"\1: &v \2", lines[first])
        alias = draw(st.sampled_from(["*v", "*v", "*undefined", "[*v, *v]", "{k: *v}"]))
        lines[second] = VALUE_LINE.sub(lambda m: f"{m.group(1)}: {alias}", lines[second])


def _text_merge(draw, lines):
    found = [i for i in _lines_matching(lines, MAPPING_LINE) if i + 1 < len(lines)]
    if found:
        first = draw(st.sampled_from(found))
        target = draw(st.sampled_from(found))
        indent = re.match(r"\s*", lines[target + 1]).group(0)
        lines[first] = lines[first].rstrip() + " &m"
        merged = draw(st.sampled_from(["*m", "[*m]", "[*m, *m]", "*nope", "1", "[1]"]))
        lines.insert(target + 1, f"{indent}<<: {merged}")


def _text_tag(draw, lines):
    found = _lines_matching(lines, VALUE_LINE) + _lines_matching(lines, MAPPING_LINE)
    if found:
        index = draw(st.sampled_from(found))
        tag = draw(st.sampled_from(TAGS))
        lines[index] = re.sub(r":(\s|$)", f": {tag} ", lines[index], count=1).rstrip()


def _text_deep(draw, lines):
    found = _lines_matching(lines, VALUE_LINE)
    if found:
        index = draw(st.sampled_from(found))
        depth = draw(st.sampled_from([10, 62, 63, 64, 65, 66, 200, 3000]))
        open_, close = draw(st.sampled_from([("[", "]"), ("{a: ", "}"), ("[{a: ", "}]")]))
        inner = draw(st.sampled_from(["1", "x", "", "*v"]))
        value = open_ * depth + inner + close * draw(st.sampled_from([depth, depth - 1]))
        lines[index] = VALUE_LINE.sub(lambda m: f"{m.group(1)}: {value}", lines[index])


def _text_big_number(draw, lines):
    found = _lines_matching(lines, VALUE_LINE)
    if found:
        index = draw(st.sampled_from(found))
        digits = draw(st.sampled_from([10, 19, 20, 100, 300, 4301]))
        value = draw(
            st.sampled_from(["9" * digits, "-" + "9" * digits, "1e" + "9" * 4, "0x" + "f" * 40])
        )
        lines[index] = VALUE_LINE.sub(lambda m: f"{m.group(1)}: {value}", lines[index])


# Scalars as written in YAML text (yaml.safe_dump would quote or normalise them).
RAW_SCALARS = [
    "2001-12-14",
    "2001-02-30",
    "2001-13-01",
    "2001-12-14t21:59:43.10-05:00",
    "1:30",
    "1:99",
    "0x1F",
    "0x",
    "0o17",
    "0o9",
    "0b",
    "1_000",
    "1e3",
    ".5",
    ".",
    "-.inf",
    ".NaN",
    "~",
    "''",
    "Yes",
    "!!int x",
    "!!int ''",
    "!!float .",
    "!!bool maybe",
    "!!timestamp x",
    "!!binary x",
    "!!str 5",
    "!!null x",
    "&x 3",
    "*x",
]


def _text_raw_scalar(draw, lines):
    found = _lines_matching(lines, VALUE_LINE)
    if found:
        index = draw(st.sampled_from(found))
        value = draw(st.sampled_from(RAW_SCALARS))
        lines[index] = VALUE_LINE.sub(lambda m: f"{m.group(1)}: {value}", lines[index])


def _text_char(draw, lines):
    text = "\n".join(lines)
    position = draw(st.integers(0, len(text)))
    char = draw(st.one_of(st.sampled_from(CONTROL_CHARS + YAML_CHARS), st.characters()))
    if draw(st.booleans()) or not text:
        text = text[:position] + char + text[position:]
    else:
        text = text[:position] + char + text[position + 1 :]
    lines[:] = text.split("\n")


def _text_tab(draw, lines):
    found = [i for i, line in enumerate(lines) if line.startswith(" ")]
    if found:
        index = draw(st.sampled_from(found))
        lines[index] = "\t" + lines[index].lstrip(" ")


def _text_lines(draw, lines):
    if lines:
        index = draw(st.integers(0, len(lines) - 1))
        choice = draw(st.sampled_from(["delete", "duplicate", "dedent", "indent"]))
        if choice == "delete":
            del lines[index]
        elif choice == "duplicate":
            lines.insert(index, lines[index])
        elif choice == "dedent":
            lines[index] = lines[index][2:]
        else:
            lines[index] = "  " + lines[index]


def _text_document(draw, lines):
    framing = draw(
        st.sampled_from(
            [
                ("---", None),
                ("%YAML 1.1\n---", None),
                ("%YAML 1.2\n---", None),
                ("%YAML 2.0\n---", None),
                ("%TAG ! tag:example.com,2000:\n---", None),
                (None, "..."),
                (None, "---\nname: second"),
                (None, "---"),
                ("\ufeff", None),
                ("# only a comment", None),
            ]
        )
    )
    if framing[0] is not None:
        lines.insert(0, framing[0])
    if framing[1] is not None:
        lines.append(framing[1])


TEXT_MUTATIONS = [
    _text_anchor_alias,
    _text_merge,
    _text_tag,
    _text_deep,
    _text_big_number,
    _text_raw_scalar,
    _text_raw_scalar,
    _text_char,
    _text_tab,
    _text_lines,
    _text_document,
]


@st.composite
def yaml_documents(draw, family: str) -> bytes:
    if draw(st.integers(0, 3)) == 0:
        text = draw(st.sampled_from(SEED_TEXTS[family]))  # the example, comments and all
    else:
        data = draw(mutated_specs(family, max_mutations=2, root_ok=True))
        flow = draw(st.sampled_from([False, False, None, True]))
        text = yaml.safe_dump(
            data,
            sort_keys=False,
            default_flow_style=flow,
            allow_unicode=draw(st.booleans()),
            width=draw(st.sampled_from([80, 20, 10_000])),
        )
    lines = text.split("\n")
    for _ in range(draw(st.integers(0, 3))):
        draw(st.sampled_from(TEXT_MUTATIONS))(draw, lines)
    newline = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"]))
    raw = newline.join(lines).encode("utf-8")
    if draw(st.integers(0, 15)) == 0:  # not valid UTF-8
        position = draw(st.integers(0, len(raw)))
        raw = (
            raw[:position]
            + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"]))
            + raw[position:]
        )
    return raw


# ---------------------------------------------------------------------------------------------
# The properties.

# The loader's YAML 1.2 float rule (kseq.spec.source.SpecLoader) matches strings that
# yaml.safe_dump leaves unquoted: such a string does not survive dump_spec -> load_spec.
FLOAT_LIKE = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


def _strings(data: object):
    if isinstance(data, dict):
        for value in data.values():
            yield from _strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _strings(value)
    elif isinstance(data, str):
        yield data


def _yaml_lines(text: str) -> int:
    return len(re.split(r"\r\n|[\n\r\x85\u2028\u2029]", text))


def check_error(error: SpecError, file: str | None = None, text: str | None = None) -> None:
    assert error.issues
    for issue in error.issues:
        assert issue.file and issue.message
        assert isinstance(issue.line, int) and isinstance(issue.column, int)
        assert issue.line >= 1 and issue.column >= 1
        assert str(issue).count(":") >= 3
        if file is not None:
            assert issue.file == file
        if text is not None:
            assert issue.line <= _yaml_lines(text) + 1, issue
    assert str(error).splitlines() == [str(issue) for issue in error.issues]


def check_round_trip(spec: Spec) -> None:
    assert isinstance(spec, Spec)
    assert load_spec(spec) == spec
    dumped = WORKDIR / "dumped.yaml"
    dumped.write_text(dump_spec(spec), encoding="utf-8")
    again = load_spec(dumped)
    assert again == spec
    assert dump_spec(again) == dump_spec(spec)


def assert_loads_or_located(load, file: str | None = None, text: str | None = None) -> None:
    try:
        spec = load()
    except SpecError as error:
        event("SpecError")
        check_error(error, file, text)
        return
    event("loaded")
    check_round_trip(spec)


FAST = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_every_family_has_an_example_spec():
    assert set(FAMILIES) >= {"autoencoder", "rnn_seq2seq", "transformer_seq2seq", "bert"}
    assert all(len(SEEDS[family]) > 1 and SEED_TEXTS[family] for family in FAMILIES)


def test_the_spec_loader_does_not_import_tensorflow():
    code = (
        "import sys; from kseq.spec.load import load_spec\n"
        "for p in sys.argv[1:]: load_spec(p)\n"
        "assert not {'tensorflow', 'keras'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code, *map(str, SPEC_FILES)], check=True, cwd=ROOT)


@settings(max_examples=300, **FAST)
@given(st.dictionaries(keys, values, max_size=6))
def test_any_mapping_loads_or_fails_with_a_location(data):
    assert_loads_or_located(lambda: load_spec(data))


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=40, **FAST)
@given(data=st.data())
def test_near_valid_specs_load_or_fail_with_a_location(family, data):
    """Each family's own keys, at the places they belong, with arbitrary values."""
    model_cls = ModelSpec.variants.get(family)
    sections = {"model": model_cls, "data": model_cls.data_spec}
    if getattr(model_cls, "decode_spec", None) is not None:
        sections["decode"] = model_cls.decode_spec
    spec: dict = {"model": {"type": family}}
    for section, cls in sections.items():
        names = [f.name for f in dataclasses.fields(cls) if f.init and f.name != "type"]
        chosen = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=4))
        if chosen or section == "model":
            spec.setdefault(section, {})
            for name in chosen:
                spec[section][name] = data.draw(st.one_of(values, st.sampled_from(LITERALS)))
    for section in data.draw(st.lists(st.sampled_from(["train", "export", "name"]), unique=True)):
        spec[section] = data.draw(values)
    assert_loads_or_located(lambda: load_spec(spec))


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=120, **FAST)
@given(data=st.data())
def test_mutated_example_specs_load_or_fail_with_a_location(family, data):
    spec = data.draw(mutated_specs(family), label="spec")
    assert_loads_or_located(lambda: load_spec(spec))


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=60, **FAST)
@given(data=st.data())
def test_nearly_valid_example_specs_round_trip(family, data):
    spec = data.draw(near_valid_specs(family), label="spec")
    assert_loads_or_located(lambda: load_spec(spec))


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=120, **FAST)
@given(data=st.data())
def test_mutated_yaml_text_loads_or_fails_with_a_location(family, data):
    raw = data.draw(yaml_documents(family), label="yaml")
    path = WORKDIR / "fuzz.yaml"
    path.write_bytes(raw)
    text = raw.decode("utf-8", errors="replace")
    assert_loads_or_located(lambda: load_spec(path), file=str(path), text=text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.printable + "é年", max_size=80))
def test_arbitrary_text_parses_or_fails_with_a_location(text):
    try:
        parse_yaml(text, "fuzz.yaml")
    except SpecError as error:
        assert all(issue.file == "fuzz.yaml" and issue.line >= 1 for issue in error.issues)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 50), st.integers(1, 512), st.floats(1e-5, 1.0))
def test_valid_specs_round_trip(epochs, batch, learning_rate):
    spec = load_spec(
        {
            "model": {"type": "autoencoder"},
            "train": {
                "epochs": epochs,
                "batch_size": batch,
                "optimizer": {"learning_rate": learning_rate},
            },
        }
    )
    assert load_spec(yaml.safe_load(dump_spec(spec))) == spec


# ---------------------------------------------------------------------------------------------
# Bugs the fuzzers found, shrunk to minimal cases (fixed; kept so they stay fixed).

AE = {"type": "autoencoder"}


def _write(text: str, name: str = "case.yaml") -> Path:
    path = WORKDIR / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "train",
    [{"optimizer": {"learning_rate": 10**400}}, {"epochs": 10**4300}],
    ids=["float-field-10**400", "int-field-10**4300"],
)
def test_huge_integer_in_a_dict_is_a_spec_error(train):
    with pytest.raises(SpecError):
        load_spec({"model": AE, "train": train})


@pytest.mark.parametrize(
    "train",
    ["{optimizer: {learning_rate: 1" + "0" * 400 + "}}", "{epochs: " + "9" * 4301 + "}"],
    ids=["float-field-1e400-as-int", "int-4301-digits"],
)
def test_huge_integer_in_yaml_is_a_spec_error(train):
    with pytest.raises(SpecError):
        load_spec(_write(f"model: {{type: autoencoder}}\ntrain: {train}\n"))


@pytest.mark.parametrize(
    "value",
    [
        "2001-02-30",  # plain, untagged: the implicit timestamp resolver matches it
        "2001-13-01",
        "!!int x",
        "!!int 0x",
        "!!int ''",
        "!!float .",
        "!!bool maybe",
        "!!timestamp x",
    ],
)
def test_unbuildable_yaml_scalar_is_a_spec_error(value):
    with pytest.raises(SpecError) as caught:
        load_spec(_write(f"model: {{type: autoencoder}}\nname: {value}\n"))
    (issue,) = caught.value.issues
    assert issue.line == 2


@pytest.mark.parametrize("train", ["x\x00.npy", "n" * 300 + ".npy"], ids=["nul", "long"])
def test_unusable_data_path_is_a_spec_error(train):
    with pytest.raises(SpecError):
        load_spec({"model": AE, "data": {"train": train}})


@pytest.mark.parametrize(
    "spec",
    [{"model": AE, "a\nb": 1}, {"model": AE, "data": {"train": "a\nb.npy"}}],
    ids=["key", "data-path"],
)
def test_issue_with_a_line_break_in_its_path_or_received_value_is_one_line(spec):
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    assert len(str(caught.value).splitlines()) == len(caught.value.issues)


@pytest.mark.parametrize("text", ["1e3", "1.5e3", "-2E-7"])
def test_float_like_strings_round_trip(text):
    spec = load_spec({"model": AE, "name": text})
    assert load_spec(_write(dump_spec(spec))) == spec


def test_next_line_character_round_trips():
    spec = load_spec({"model": AE, "name": "a\x85b"})
    assert load_spec(_write(dump_spec(spec))).name == "a\x85b"


def test_deeply_nested_dict_is_a_spec_error():
    nested: object = 1
    for _ in range(5000):
        nested = [nested]
    with pytest.raises(SpecError):
        load_spec({"model": AE, "extra": nested})
