"""Property-based fuzzing: any input either loads or raises SpecError with a location."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kseq.spec.common import Spec
from kseq.spec.errors import SpecError
from kseq.spec.load import dump_spec, load_spec
from kseq.spec.source import parse_yaml

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
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(KEYS),
    st.text(max_size=8),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(string.ascii_letters, min_size=1, max_size=6))
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=25,
)
specs = st.dictionaries(keys, values, max_size=6)


def assert_loads_or_located(load):
    try:
        spec = load()
    except SpecError as error:
        assert error.issues
        for issue in error.issues:
            assert issue.line >= 1 and issue.column >= 1 and issue.file
            assert str(issue).count(":") >= 3
        return
    assert isinstance(spec, Spec)
    assert load_spec(spec) == spec


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs)
def test_any_mapping_loads_or_fails_with_a_location(data):
    assert_loads_or_located(lambda: load_spec(data))


@settings(max_examples=150, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "model": st.fixed_dictionaries(
                {"type": st.just("autoencoder")},
                optional={
                    "encoder": values,
                    "bottleneck": values,
                    "noise": values,
                    "variational": values,
                },
            )
        },
        optional={"train": values, "data": values, "export": values, "name": values},
    )
)
def test_near_valid_specs_load_or_fail_with_a_location(data):
    assert_loads_or_located(lambda: load_spec(data))


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
    import yaml

    assert load_spec(yaml.safe_load(dump_spec(spec))) == spec
