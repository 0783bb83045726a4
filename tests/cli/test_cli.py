"""The command line as a user meets it: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import FAST, SPECS, run_cli


def sets(overrides):
    return [arg for item in overrides for arg in ("--set", item)] if overrides else []


def assert_user_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("kseq: error: ")
    for fragment in fragments:
        assert fragment in result.stderr


def test_validate_good_spec():
    result = run_cli("validate", str(SPECS / "default.yaml"))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


@pytest.mark.parametrize(
    "content, fragments",
    [
        (None, ["file not found"]),
        ("", ["the spec is empty"]),
        ("model: [\n", ["YAML error"]),
        ("model:\n  type: autoencoder\n  bottlenek: 3\n", [":3:3: model.bottlenek: unknown key"]),
        ("model: {type: autoencoder}\ntrain: {epochs: zero}\n", [":2:17: train.epochs"]),
        ("!!python/object/apply:os.system ['echo pwned']\n", ["not allowed"]),
    ],
)
def test_validate_bad_specs_exit_2_without_traceback(tmp_path, content, fragments):
    path = tmp_path / "spec.yaml"
    if content is not None:
        path.write_text(content)
    result = run_cli("validate", str(path))
    assert_user_error(result, str(path), *fragments)
    assert "pwned" not in result.stdout


def test_validate_directory_and_bad_override(tmp_path):
    assert_user_error(run_cli("validate", str(tmp_path)), "is a directory")
    result = run_cli("validate", str(SPECS / "default.yaml"), "--set", "train.epochs=-3")
    assert_user_error(result, "--set train.epochs=-3:1:1: train.epochs: out of range")


def test_schema_is_json_schema():
    result = run_cli("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "kseq spec"
    assert "train" in schema["properties"]


def test_train_evaluate_export_from_the_cli(tmp_path):
    run_dir = tmp_path / "run"
    spec = str(SPECS / "autoencoder_dense.yaml")
    result = run_cli("train", spec, "--output", str(run_dir), *sets(FAST))
    assert result.returncode == 0, result.stderr
    assert json.loads((run_dir / "history.json").read_text())[0]["epoch"] == 1

    result = run_cli("evaluate", str(run_dir))
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert set(metrics) == {"loss", "mae"} and metrics["loss"] > 0

    out = tmp_path / "exported" / "ae.tflite"
    result = run_cli("export", str(run_dir), "--format", "tflite", "--output", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(Path(f"{out}.report.json").read_text())
    assert report["format"] == "tflite" and report["size_bytes"] == out.stat().st_size
    assert "FULLY_CONNECTED" in report["ops"] and report["latency_ms_batch1"] > 0

    result = run_cli("export", str(run_dir), "--format", "saved_model", "--quantize", "int8")
    assert_user_error(result, "TFLite exports only")
    result = run_cli("evaluate", str(tmp_path))
    assert_user_error(result, "not a kseq run directory")


def test_output_under_a_file_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli(
        "train",
        str(SPECS / "autoencoder_dense.yaml"),
        "--output",
        str(blocker / "run"),
        *sets(FAST),
    )
    assert_user_error(result, str(blocker))
    assert blocker.read_text() == "x"


def test_run_prints_the_export_report(tmp_path):
    result = run_cli(
        "run",
        str(SPECS / "autoencoder_conv1d.yaml"),
        "--output",
        str(tmp_path / "run"),
        *sets([*FAST, "data.synthetic.samples=64"]),
    )
    assert result.returncode == 0, result.stderr
    assert "saved_model" in result.stdout and "tflite" in result.stdout
    assert (tmp_path / "run" / "export" / "model.tflite").is_file()
    assert (tmp_path / "run" / "export" / "model_saved_model" / "report.json").is_file()
    assert "I0000" not in result.stderr  # TensorFlow's start-up chatter is hidden


def test_missing_data_file_named(tmp_path):
    (tmp_path / "spec.yaml").write_text(
        "model: {type: autoencoder}\ndata:\n  train: nothing-here.npy\n"
    )
    result = run_cli("train", str(tmp_path / "spec.yaml"))
    assert_user_error(result, "spec.yaml:3:10: data.train: file not found")
