"""The spec language: located errors, defaults, overrides, round trips, schema, safety."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from kseq.spec.common import Spec
from kseq.spec.errors import SpecError
from kseq.spec.load import dump_spec, load_spec, spec_schema

SPECS = sorted(Path(__file__).resolve().parents[2].joinpath("specs").glob("*.yaml"))


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def issues_of(path_or_dict, overrides=()) -> list:
    with pytest.raises(SpecError) as caught:
        load_spec(path_or_dict, overrides)
    return caught.value.issues


def test_minimal_spec_gets_every_default():
    spec = load_spec({"model": {"type": "autoencoder"}})
    assert spec.train.epochs == 10
    assert spec.train.optimizer.type == "adam"
    assert spec.model.encoder.type == "dense"
    assert spec.model.encoder.units == [64]
    assert spec.data.synthetic.shape == [32]
    assert spec.export.formats == ["saved_model", "tflite"]


def test_defaults_are_not_shared_between_specs():
    first = load_spec({"model": {"type": "autoencoder"}})
    first.model.encoder.units.append(7)
    second = load_spec({"model": {"type": "autoencoder"}})
    assert second.model.encoder.units == [64]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_example_specs_round_trip(path, tmp_path):
    spec = load_spec(path)
    dumped = write(tmp_path, dump_spec(spec), "dumped.yaml")
    again = load_spec(dumped)
    assert again == spec
    assert dump_spec(again) == dump_spec(spec)


def test_error_names_file_line_column_path_expected_and_received(tmp_path):
    path = write(
        tmp_path,
        """\
        name: x
        model:
          type: autoencoder
          bottleneck: many
        """,
    )
    (issue,) = issues_of(path)
    assert str(issue) == (
        f"{path}:4:15: model.bottleneck: wrong type; expected an integer; received 'many'"
    )


def test_unknown_key_points_at_key_with_suggestion(tmp_path):
    path = write(
        tmp_path,
        """\
        model:
          type: autoencoder
        trian:
          epochs: 3
        """,
    )
    (issue,) = issues_of(path)
    assert (issue.line, issue.column, issue.path) == (3, 1, "trian")
    assert "did you mean 'train'?" in issue.message


def test_all_errors_are_reported_at_once(tmp_path):
    path = write(
        tmp_path,
        """\
        model:
          type: autoencoder
          encoder: {type: dense, units: [8, 0]}
        train:
          epochs: 0
          batch_size: 2.5
          optimizer: {type: adamm}
        """,
    )
    issues = issues_of(path)
    by_path = {issue.path: issue for issue in issues}
    assert set(by_path) == {
        "model.encoder.units.1",
        "train.epochs",
        "train.batch_size",
        "train.optimizer.type",
    }
    assert by_path["train.optimizer.type"].line == 7
    assert "did you mean 'adam'?" in by_path["train.optimizer.type"].message


def test_unknown_model_type_suggests(tmp_path):
    (issue,) = issues_of({"model": {"type": "autoencodr"}})
    assert issue.path == "model.type"
    assert "did you mean 'autoencoder'?" in issue.message


def test_cross_field_rules_run_on_defaulted_spec():
    issues = issues_of(
        {"model": {"type": "autoencoder", "encoder": {"type": "conv2d"}}, "data": {}}
    )
    assert [i.path for i in issues] == ["data.synthetic.shape"]
    assert "rank 3" in issues[0].message


def test_decoder_type_must_match_encoder():
    spec = {
        "model": {
            "type": "autoencoder",
            "encoder": {"type": "dense"},
            "decoder": {"type": "conv1d"},
        }
    }
    (issue,) = issues_of(spec)
    assert issue.path == "model.decoder.type"


def test_int8_export_of_a_sampling_spec_is_a_located_error(tmp_path):
    default = Path(__file__).resolve().parents[2] / "specs" / "default.yaml"
    (issue,) = issues_of(default, ["export.quantize=int8", "decode.strategy=sampling"])
    assert issue.path == "export.quantize"
    assert "not by sampling" in issue.message
    assert "decode.strategy: greedy or beam" in issue.expected
    beam = load_spec(default, ["export.quantize=int8"])  # the default spec decodes with beam
    assert (beam.export.quantize, beam.decode.strategy) == ("int8", "beam")
    text = default.read_text().replace("formats: [saved_model, tflite]", "formats: [saved_model]")
    saved_model_only = write(tmp_path, text)
    overrides = ["export.quantize=int8", "decode.strategy=sampling"]
    spec = load_spec(saved_model_only, overrides)  # no TFLite file to refuse
    assert spec.export.formats == ["saved_model"]


def test_overrides_are_typed_and_located(tmp_path):
    path = write(tmp_path, "model: {type: autoencoder}\n")
    spec = load_spec(path, ["train.epochs=3", "train.optimizer.learning_rate=1e-2"])
    assert spec.train.epochs == 3
    assert spec.train.optimizer.learning_rate == pytest.approx(0.01)
    (issue,) = issues_of(path, ["train.epochs=three"])
    assert issue.file == "--set train.epochs=three"
    assert issue.path == "train.epochs"
    with pytest.raises(SpecError, match="malformed override"):
        load_spec(path, ["train.epochs"])


def test_data_paths_resolve_against_the_spec_folder(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.npy").write_bytes(b"")
    path = write(tmp_path, "model: {type: autoencoder}\ndata: {train: data/x.npy}\n")
    spec = load_spec(path)
    assert spec.data.train == str((tmp_path / "data" / "x.npy").resolve())
    path = write(tmp_path, "model: {type: autoencoder}\ndata: {train: nope.npy}\n", "b.yaml")
    (issue,) = issues_of(path)
    assert (issue.path, issue.line, issue.message) == ("data.train", 2, "file not found")


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the spec is empty"),
        ("model: [1\n", "YAML error"),
        ("- 1\n- 2\n", "a spec must be a mapping"),
        ("model: !!python/object/apply:os.system ['true']\n", "not allowed"),
        ("model: !!python/name:os.system ''\n", "not allowed"),
        ("a: 1\na: 2\n", "duplicate key"),
    ],
)
def test_bad_yaml_is_a_located_spec_error(tmp_path, text, message):
    path = write(tmp_path, text)
    issues = issues_of(path)
    assert message in str(issues[0])
    assert issues[0].file == str(path)


def test_yaml_tags_execute_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = write(tmp_path, f"model: !!python/object/apply:os.system ['touch {marker}']\n")
    issues_of(path)
    assert not marker.exists()


def test_missing_file_directory_and_invalid_utf8(tmp_path):
    assert "file not found" in str(issues_of(tmp_path / "none.yaml")[0])
    assert "is a directory" in str(issues_of(tmp_path)[0])
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: \xff\n")
    assert "not valid UTF-8" in str(issues_of(bad)[0])


def test_non_finite_numbers_are_rejected():
    issues = issues_of(
        {"model": {"type": "autoencoder"}, "train": {"optimizer": {"learning_rate": float("nan")}}}
    )
    assert issues[0].path == "train.optimizer.learning_rate"


def test_schema_matches_the_spec_classes():
    schema = spec_schema()
    json.dumps(schema)  # serialisable
    assert schema["required"] == ["model"]
    assert schema["additionalProperties"] is False
    train = schema["properties"]["train"]["properties"]
    assert train["epochs"] == {
        "type": "integer",
        "description": "number of epochs (with time_budget: the most)",
        "minimum": 1,
        "maximum": 100_000,
        "default": 10,
    }
    assert set(train["optimizer"]["properties"]["type"]["enum"]) >= {"adam", "sgd"}
    families = schema["properties"]["model"]["oneOf"]
    from kseq.spec.common import ModelSpec

    consts = [f["properties"]["type"]["const"] for f in families]
    assert consts == ModelSpec.variants.names()
    assert {"autoencoder", "rnn_seq2seq"} <= set(consts)


def test_spec_objects_reload():
    spec = load_spec({"model": {"type": "autoencoder"}, "name": "n"})
    assert isinstance(spec, Spec)
    assert load_spec(spec) == spec
