"""Resource limits of the spec language: YAML bombs, nesting, file size, bounds on every size."""

from __future__ import annotations

import dataclasses
import os
import time
import typing
from pathlib import Path

import pytest

from kseq.spec import source
from kseq.spec.common import ModelSpec, Spec
from kseq.spec.errors import SpecError
from kseq.spec.fields import Variant, _hints, _is_variant_base
from kseq.spec.load import load_spec


def issue_of(path) -> object:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    (issue,) = caught.value.issues
    return issue


def alias_bomb(levels: int = 10, width: int = 10, referenced_from: str = "name") -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    lines.append(f"{referenced_from}: *a{levels - 1}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("referenced_from", ["name", "model"])
def test_alias_bomb_is_refused_quickly_and_located(tmp_path, referenced_from):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(referenced_from=referenced_from))
    started = time.perf_counter()
    issue = issue_of(path)
    assert time.perf_counter() - started < 5
    assert "too many values once aliases are expanded" in issue.message
    assert issue.file == str(path) and issue.line > 1
    assert issue.expected == f"at most {source.MAX_NODES}"


def test_aliases_that_expand_within_the_limit_still_work(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("name: x\nmodel: {type: autoencoder}\ntrain: {epochs: &e 3, batch_size: *e}\n")
    assert load_spec(path).train.batch_size == 3


def test_recursive_alias_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("a: &a [1, *a]\nname: x\n")
    issue = issue_of(path)
    assert "refers to a value that contains it" in issue.message
    assert (issue.line, issue.path) == (1, "a.1")


def test_nesting_just_over_the_limit_names_the_path(tmp_path):
    depth = source.MAX_DEPTH + 1
    text = "model:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(depth))
    path = tmp_path / "deep.yaml"
    path.write_text(text + "  " * (depth + 1) + "v: 1\n")
    issue = issue_of(path)
    assert issue.message == "nested too deeply"
    assert issue.path.startswith("model.k0.k1.k2")


@pytest.mark.parametrize("flow", [True, False])
def test_pathological_nesting_is_a_spec_error_not_a_recursion_error(tmp_path, flow):
    depth = 20_000
    text = "name: " + "[" * depth + "]" * depth if flow else "- " * 3000 + "x"
    path = tmp_path / "deep.yaml"
    path.write_text(text + "\n")
    assert issue_of(path).message == "nested too deeply"


def test_oversized_spec_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as handle:
        handle.truncate(source.MAX_SPEC_BYTES + 1)  # sparse: no disk used
    issue = issue_of(path)
    assert issue.message.startswith("too large")


def test_fifo_spec_is_refused_without_blocking(tmp_path):
    path = tmp_path / "spec.fifo"
    os.mkfifo(path)
    issue = issue_of(path)  # opening a FIFO for reading would block forever
    assert issue.message == "not a regular file"


def test_nul_byte_is_one_located_line(tmp_path):
    path = tmp_path / "nul.yaml"
    path.write_bytes(b"name: x\nmodel: {type: auto\x00encoder}\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert "\n" not in str(caught.value)
    (issue,) = caught.value.issues
    assert (issue.line, issue.column) == (2, 19)
    assert "U+0000" in issue.message


# ---- every size has an upper bound --------------------------------------------------------------


def _component_classes() -> set[type]:
    """Every dataclass reachable from Spec, the families' data/decode specs and all variants."""
    roots: list = [Spec]
    for _, model_cls in ModelSpec.variants.items():
        roots += [model_cls, model_cls.data_spec, getattr(model_cls, "decode_spec", None)]
    seen: set[type] = set()

    def visit(tp):
        for arg in typing.get_args(tp):
            visit(arg)
        if _is_variant_base(tp):
            for _, cls in tp.variants.items():
                visit(cls)
        elif dataclasses.is_dataclass(tp) and tp not in seen:
            seen.add(tp)
            for name, hint in _hints(tp).items():
                if name in {f.name for f in dataclasses.fields(tp)}:
                    visit(hint)

    for root in roots:
        if root is not None:
            visit(root)
    return seen


def _int_fields():
    for cls in sorted(_component_classes(), key=lambda c: c.__qualname__):
        hints = _hints(cls)
        for spec_field in dataclasses.fields(cls):
            hint = hints[spec_field.name]
            if (
                int in {hint, *typing.get_args(hint)}
                or hint == list[int]
                or any(a == list[int] for a in typing.get_args(hint))
            ):
                yield cls, spec_field


def _int_fields_list():
    return list(_int_fields())


def test_the_walk_finds_the_families_components():
    classes = _component_classes()
    assert Spec in classes and Variant not in classes
    for _, model_cls in ModelSpec.variants.items():  # every family and its data section
        assert model_cls in classes and model_cls.data_spec in classes
    assert len(_int_fields_list()) > 40


@pytest.mark.parametrize(
    "owner, name", [(c.__qualname__, f.name) for c, f in _int_fields() if f.init]
)
def test_every_integer_field_has_an_upper_bound(owner, name):
    cls = next(c for c in _component_classes() if c.__qualname__ == owner)
    spec_field = next(f for f in dataclasses.fields(cls) if f.name == name)
    assert spec_field.metadata.get("max") is not None or spec_field.metadata.get("below")


@pytest.mark.parametrize(
    "override",
    [
        "model.bottleneck=1099511627776",
        "data.synthetic.samples=1000000000000",
        "train.batch_size=100000000000000000000",
        "train.epochs=10000000000",
    ],
)
def test_huge_sizes_are_out_of_range(override):
    spec = Path(__file__).resolve().parents[2] / "specs" / "autoencoder_dense.yaml"
    with pytest.raises(SpecError) as caught:
        load_spec(spec, [override])
    (issue,) = caught.value.issues
    assert (issue.path, issue.message) == (override.partition("=")[0], "out of range")
    assert issue.expected.startswith("a value <= ")


def test_list_size_out_of_range_is_located(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(
        "name: x\nmodel:\n  type: autoencoder\n"
        "  encoder: {type: dense, units: [8, 1099511627776]}\n"
    )
    issue = issue_of(path)
    assert issue.path == "model.encoder.units.1"
    assert issue.message == "out of range"
    assert issue.line == 4
