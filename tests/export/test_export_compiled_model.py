"""The parity gate on LiteRT's CompiledModel API, beside the Interpreter."""

from __future__ import annotations

import importlib
from pathlib import Path

import export_models
import numpy as np
import pytest
import tensorflow as tf

from kseq.errors import ExportError
from kseq.export import write_saved_model, write_tflite
from kseq.export.compiled_model import load_compiled_model, run_compiled
from kseq.export.tflite import report_path

TFLITE = importlib.import_module("kseq.export.tflite")  # `kseq.export` is also a function name


def test_gate_runs_both_apis_and_a_fresh_compiled_model_matches_keras(tmp_path: Path) -> None:
    model, endpoints = export_models.autoencoder(trained=False)
    write_saved_model(endpoints, tmp_path / "sm", track=model)
    report = write_tflite(endpoints, tmp_path / "sm", tmp_path / "m.tflite")
    assert report["compiled_model"].startswith("ai_edge_litert.compiled_model.CompiledModel")
    for name, out in (("serving_default", "y"), ("encode", "z")):
        entry = report["parity_compiled_model"][name]
        assert entry["batch_sizes"] == report["parity"][name]["batch_sizes"] == [6, 1]
        assert entry["outputs"][out]["max_abs_diff"] <= 1e-4
    assert report["latency_ms_batch1_compiled_model"] > 0

    # Independently of the gate: batch sizes it did not use, against Keras.
    compiled = load_compiled_model((tmp_path / "m.tflite").read_bytes())
    x = np.random.default_rng(1).normal(size=(5, 96)).astype(np.float32)
    for rows in (5, 2, 5):  # resizing back and forth
        like = {"y": np.zeros((rows, 96), np.float32)}
        got = run_compiled(compiled, "serving_default", {"x": x[:rows]}, like)["y"]
        np.testing.assert_allclose(got, np.asarray(model(x[:rows])), atol=1e-5)


class _Counter(tf.Module):
    """A loop writing row sums + step into (B, 4) ids: an `exact` endpoint like `generate`."""

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="source_ids")])
    def generate(self, source_ids):
        batch = tf.shape(source_ids)[0]
        positions = tf.range(4)

        def body(i, ids):
            value = tf.reduce_sum(source_ids, 1) + i
            return i + 1, tf.where(tf.equal(positions, i)[None, :], value[:, None], ids)

        ids = tf.zeros(tf.stack([batch, 4]), tf.int32)
        _, ids = tf.while_loop(lambda i, ids: i < 4, body, (tf.constant(0), ids))
        return {"target_ids": tf.maximum(ids, ids.dtype.min)}  # as kseq's generate does


@pytest.fixture(scope="module")
def counter(tmp_path_factory):
    module = _Counter()
    source = np.array([[1, 2], [3, 0], [5, 6]], np.int32)
    ep = export_models.Endpoint(
        "generate",
        module.generate,
        [tf.TensorSpec((None, None), tf.int32, name="source_ids")],
        reference=lambda b: {"target_ids": module.generate(b["source_ids"])["target_ids"].numpy()},
        samples={"source_ids": source},
        calibration=[{"source_ids": source}],
        exact=True,
    )
    assert ep.reference(ep.samples)["target_ids"].tolist()[0] == [3, 4, 5, 6]
    root = tmp_path_factory.mktemp("counter")
    write_saved_model([ep], root / "sm", track=module)
    return ep, root


def test_loop_output_passes_on_both_apis(counter, tmp_path: Path) -> None:
    ep, root = counter
    report = write_tflite([ep], root / "sm", tmp_path / "m.tflite")
    assert report["parity_compiled_model"]["generate"]["outputs"]["target_ids"] == {
        "compare": "exact",
        "equal_fraction": 1.0,
    }


def _zeros_for(name: str):
    """A CompiledModel that reads back zeros for output `name`, as LiteRT does for an output
    it cannot bind (a WHILE result, an output that is also an input)."""

    def run(compiled, signature, inputs, output_like):
        out = run_compiled(compiled, signature, inputs, output_like)
        out[name] = np.zeros_like(out[name])
        return out

    return run


@pytest.mark.parametrize("quantize", ["none", "dynamic"])
def test_an_output_wrong_only_on_compiled_model_fails_the_export(
    counter, quantize: str, monkeypatch, tmp_path: Path
) -> None:
    ep, root = counter
    monkeypatch.setattr(TFLITE, "run_compiled", _zeros_for("target_ids"))
    # fp32 is gated against Keras; a quantized decoder's ids must still agree between the APIs.
    against = "the Keras reference" if quantize == "none" else "the Interpreter's output"
    with pytest.raises(ExportError, match=rf"CompiledModel endpoint 'generate' .*{against}"):
        write_tflite([ep], root / "sm", tmp_path / "bad.tflite", quantize)
    assert not (tmp_path / "bad.tflite").exists()
    assert not report_path(tmp_path / "bad.tflite").exists()


def test_a_signature_compiled_model_cannot_run_is_named(counter, monkeypatch, tmp_path) -> None:
    ep, root = counter

    def fail(*args, **kwargs):
        raise RuntimeError("CompiledModel error: code=3, message=Failed to invoke")

    monkeypatch.setattr(TFLITE, "run_compiled", fail)
    with pytest.raises(ExportError, match=r"'generate' fails on LiteRT's CompiledModel API"):
        write_tflite([ep], root / "sm", tmp_path / "bad.tflite")
