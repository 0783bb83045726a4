"""`@variant`: a registered dataclass whose `type` field the decorator owns."""

from __future__ import annotations

import dataclasses

import pytest

from kseq.registry import Registry
from kseq.spec.fields import Parser, Variant, json_schema, option, to_data, variant
from kseq.spec.source import Source


class ShapeSpec(Variant):
    variants = Registry("shape type")


@variant("square")
class SquareSpec(ShapeSpec):
    side: float = option(1.0, above=0.0)


@variant("unit")
class UnitSpec(ShapeSpec):
    """A variant with no field of its own."""


def parse(value):
    parser = Parser(Source({"shape": value}, "shape.yaml"))
    result = parser.parse(ShapeSpec, value, "shape")
    return result, [str(issue) for issue in parser.issues]


def test_the_type_field_comes_first_and_defaults_to_the_registered_name():
    assert [f.name for f in dataclasses.fields(SquareSpec)] == ["type", "side"]
    assert SquareSpec().type == "square" and SquareSpec.type_name == "square"
    assert UnitSpec().type == "unit" and [f.name for f in dataclasses.fields(UnitSpec)] == ["type"]
    assert ShapeSpec.variants.get("square") is SquareSpec
    assert to_data(SquareSpec(side=2.0)) == {"type": "square", "side": 2.0}


def test_a_spec_chooses_the_variant_by_type_and_a_wrong_type_is_refused():
    square, issues = parse({"type": "square", "side": 3.0})
    assert square == SquareSpec(side=3.0) and not issues
    _, issues = parse({"type": "circle"})
    assert len(issues) == 1 and "shape.type" in issues[0] and "square" in issues[0]
    assert json_schema(SquareSpec)["properties"]["type"]["const"] == "square"


def test_a_class_already_made_a_dataclass_is_refused():
    with pytest.raises(TypeError, match="drop @dataclass"):

        @variant("triangle")
        @dataclasses.dataclass
        class TriangleSpec(ShapeSpec):
            pass
