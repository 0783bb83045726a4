"""SavedModel export: round trip through tf.saved_model.load, parity gate, report.json."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import export_models
import numpy as np
import pytest
import tensorflow as tf

from kseq.errors import ExportError
from kseq.export import write_saved_model


@pytest.fixture(scope="module")
def autoencoder():
    return export_models.autoencoder(trained=False)


def test_round_trip_matches_keras_and_report(autoencoder, tmp_path: Path) -> None:
    model, endpoints = autoencoder
    path = tmp_path / "sm"
    report = write_saved_model(endpoints, path, track=model)

    # Independent check: a server's view of the artifact at a batch size the gate did not use.
    loaded = tf.saved_model.load(str(path))
    x = np.random.default_rng(9).normal(size=(4, 96)).astype(np.float32)
    y = loaded.signatures["serving_default"](x=tf.constant(x))["y"].numpy()
    z = loaded.signatures["encode"](x=tf.constant(x))["z"].numpy()
    np.testing.assert_allclose(y, np.asarray(model(x)), atol=1e-5)
    np.testing.assert_allclose(
        z, np.asarray(model.get_layer("code")(model.get_layer("enc_hidden")(x))), atol=1e-5
    )

    on_disk = json.loads((path / "report.json").read_text())
    assert on_disk == report
    assert report["format"] == "saved_model"
    files = [p for p in path.rglob("*") if p.is_file() and p.name != "report.json"]
    assert report["size_bytes"] == sum(p.stat().st_size for p in files) > 66_000 * 4
    assert set(report["signatures"]) == {"serving_default", "encode"}
    assert report["signatures"]["encode"] == {
        "inputs": {"x": {"dtype": "float32", "shape": [None, 96]}},
        "outputs": {"z": {"dtype": "float32", "shape": [None, 32]}},
    }
    for name in ("serving_default", "encode"):
        entry = report["parity"][name]
        assert entry["batch_sizes"] == [6, 1]
        (out,) = entry["outputs"].values()
        assert out["max_abs_diff"] <= 1e-4 and out["cosine_similarity"] > 0.999999
    assert "code" in report["layers"] and "autoencoder" in report["layers"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]


def test_exact_endpoint_and_float64_samples(tmp_path: Path) -> None:
    model, endpoints = export_models.conv2d()
    report = write_saved_model(endpoints, tmp_path / "sm", track=model)
    assert report["parity"]["classes"]["outputs"]["label"] == {
        "compare": "exact",
        "equal_fraction": 1.0,
    }
    assert report["signatures"]["classes"]["outputs"]["label"]["dtype"] == "int32"


def test_wrong_reference_fails_and_leaves_nothing(autoencoder, tmp_path: Path) -> None:
    model, endpoints = autoencoder
    ref = endpoints[0].reference
    bad = export_models.with_reference(endpoints[0], lambda b: {"z": ref(b)["z"] + 2e-4})
    with pytest.raises(ExportError, match=r"SavedModel endpoint 'encode' output 'z': max abs diff"):
        write_saved_model([bad, endpoints[1]], tmp_path / "sm", track=model)
    assert list(tmp_path.iterdir()) == []


def test_wrong_exact_output_fails(tmp_path: Path) -> None:
    model, (full, classes) = export_models.conv2d()
    off = export_models.with_reference(
        classes, lambda b: {"label": classes.reference(b)["label"] + 1}
    )
    with pytest.raises(ExportError, match=r"'classes' output 'label'.*exact match required"):
        write_saved_model([full, off], tmp_path / "sm", track=model)
    assert list(tmp_path.iterdir()) == []


def test_failed_export_keeps_previous_artifact(autoencoder, tmp_path: Path) -> None:
    model, endpoints = autoencoder
    path = tmp_path / "sm"
    write_saved_model(endpoints, path, track=model)
    before = (path / "report.json").read_text()
    bad = export_models.with_reference(endpoints[1], lambda b: {"y": np.zeros((len(b["x"]), 96))})
    with pytest.raises(ExportError):
        write_saved_model([endpoints[0], bad], path, track=model)
    assert (path / "report.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]


def test_bad_samples_are_rejected_before_export(autoencoder, tmp_path: Path) -> None:
    model, endpoints = autoencoder
    wrong = dataclasses.replace(endpoints[0], samples={"inputs": np.zeros((2, 96))})
    with pytest.raises(ExportError, match=r"samples must have exactly the inputs \['x'\]"):
        write_saved_model([wrong], tmp_path / "sm", track=model)
