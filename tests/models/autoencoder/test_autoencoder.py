"""Autoencoder family: numpy parity, VAE loss, noise, save/load, example specs end to end."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import FAST, SPECS

import kseq
from kseq.models.family import family_for

EXAMPLES = sorted(p for p in SPECS.glob("*.yaml") if "autoencoder" in p.read_text())


def small(spec_path, *extra):
    return kseq.load_spec(spec_path, [*FAST, "data.synthetic.samples=96", *extra])


def test_dense_autoencoder_matches_a_numpy_forward_pass():
    spec = kseq.load_spec(
        {
            "model": {
                "type": "autoencoder",
                "encoder": {"type": "dense", "units": [7, 5], "activation": "tanh"},
                "bottleneck": 3,
                "output_activation": "sigmoid",
            },
            "data": {"synthetic": {"shape": [6], "samples": 16}},
        }
    )
    family = family_for(spec)
    model = family.build(spec, family.load_data(spec))
    rng = np.random.default_rng(0)
    for weight in model.weights:  # hand-set, distinct weights
        weight.assign(rng.normal(size=weight.shape).astype("float32"))
    encoder = model.get_layer("encoder")
    decoder = model.get_layer("decoder")
    x = rng.normal(size=(4, 6)).astype("float32")

    def dense(name, sub, h, act):
        layer = sub.get_layer(name)
        return act(h @ layer.kernel.numpy() + layer.bias.numpy())

    identity = lambda v: v  # noqa: E731
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h = dense("dense_0", encoder, x, np.tanh)
    h = dense("dense_1", encoder, h, np.tanh)
    code = dense("code", encoder, h, identity)
    h = dense("dense_0", decoder, code, np.tanh)  # mirrored: 5 then 7 units
    h = dense("dense_1", decoder, h, np.tanh)
    expected = dense("output", decoder, h, sigmoid)
    assert decoder.get_layer("dense_0").units == 5 and decoder.get_layer("dense_1").units == 7
    np.testing.assert_allclose(model(x, training=False), expected, atol=1e-5)
    np.testing.assert_allclose(encoder(x), code, atol=1e-5)


def test_vae_adds_the_kl_term_and_is_deterministic_at_inference():
    spec = kseq.load_spec(
        {
            "model": {
                "type": "autoencoder",
                "encoder": {"type": "dense", "units": [8]},
                "bottleneck": 2,
                "variational": True,
                "kl_weight": 0.5,
            },
            "data": {"synthetic": {"shape": [5], "samples": 16}},
        }
    )
    family = family_for(spec)
    model = family.build(spec, family.load_data(spec))
    x = np.random.default_rng(1).normal(size=(3, 5)).astype("float32")
    mean, log_var = (np.asarray(t) for t in model.get_layer("encoder")(x))
    kl = -0.5 * np.sum(1 + log_var - mean**2 - np.exp(log_var), axis=-1)
    first = np.asarray(model(x, training=False))
    (loss,) = model.losses
    np.testing.assert_allclose(float(loss), 0.5 * kl.mean() / 5, rtol=1e-5)
    np.testing.assert_array_equal(first, np.asarray(model(x, training=False)))
    decoded_mean = np.asarray(model.get_layer("decoder")(mean))
    np.testing.assert_allclose(first, decoded_mean, atol=1e-6)
    sampled = np.asarray(model(x, training=True))
    assert not np.allclose(sampled, first)


def test_denoising_noise_only_while_training():
    spec = kseq.load_spec(
        {
            "model": {"type": "autoencoder", "noise": {"type": "gaussian", "stddev": 0.5}},
            "data": {"synthetic": {"shape": [6], "samples": 16}},
        }
    )
    family = family_for(spec)
    model = family.build(spec, family.load_data(spec))
    x = np.ones((2, 6), "float32")
    clean = np.asarray(model.get_layer("decoder")(model.get_layer("encoder")(x)))
    np.testing.assert_allclose(model(x, training=False), clean, atol=1e-6)
    assert not np.allclose(model(x, training=True), clean)


@pytest.mark.parametrize("spec_path", EXAMPLES, ids=lambda p: p.stem)
def test_example_spec_fits_saves_reloads_and_exports(spec_path, tmp_path):
    spec = small(spec_path)
    model = kseq.build(spec)
    family = family_for(spec)
    data = family.load_data(spec)
    history = model.fit(data.train, epochs=1, steps_per_epoch=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    x = data.samples["inputs"]
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_array_equal(model(x, training=False), reloaded(x, training=False))

    run_dir = kseq.train(spec, output=tmp_path / "run")
    for name in ("model.keras", "spec.yaml", "history.json", "learning_curve.png"):
        assert (run_dir / name).is_file(), name
    assert kseq.load_spec(run_dir / "spec.yaml") == spec
    saved = kseq.export(run_dir, format="saved_model")
    assert saved["parity"]["serving_default"]["outputs"]["reconstruction"]["max_abs_diff"] <= 1e-4
    lite = kseq.export(run_dir, format="tflite")
    assert Path(lite["path"]).is_file()
    assert lite["parity"]["serving_default"]["outputs"]["reconstruction"]["max_abs_diff"] <= 1e-4
    assert sorted(lite["parity"]["serving_default"]["batch_sizes"]) != [1]


def test_encoder_part_exports_embeddings(tmp_path):
    run_dir = kseq.train(small(SPECS / "autoencoder_variational.yaml"), output=tmp_path / "run")
    report = kseq.export(run_dir, format="tflite", part="encoder")
    assert set(report["signatures"]) == {"encode"}
    _, _, model = kseq.load_run(run_dir)
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=report["path"]).get_signature_runner("encode")
    x = np.random.default_rng(0).normal(size=(5, 32)).astype("float32")
    mean, _ = model.get_layer("encoder")(x)
    np.testing.assert_allclose(runner(inputs=x)["embedding"], mean, atol=1e-5)
    decoded = kseq.export(run_dir, format="tflite", part="decoder")
    assert set(decoded["signatures"]) == {"decode"}
    runner = Interpreter(model_path=decoded["path"]).get_signature_runner("decode")
    expected = model.get_layer("decoder")(mean)
    np.testing.assert_allclose(runner(code=np.asarray(mean))["reconstruction"], expected, atol=1e-5)
    with pytest.raises(kseq.KseqError, match="no part 'encodr'"):
        kseq.export(run_dir, part="encodr")


def test_int8_export_is_at_most_30_percent_of_float32(tmp_path):
    quick = ["train.epochs=1", "train.steps_per_epoch=20"]
    spec = kseq.load_spec(SPECS / "autoencoder_denoising.yaml", quick)
    run_dir = kseq.train(spec, output=tmp_path / "run")
    report = kseq.export(run_dir, format="tflite", quantize="int8")
    assert report["size_ratio_vs_float32"] <= 0.30
    assert set(report["ops"]) <= {"QUANTIZE", "DEQUANTIZE", "FULLY_CONNECTED"}
    parity = report["parity"]["serving_default"]
    assert parity["outputs"]["reconstruction"]["cosine_similarity"] > 0.99
    quality = parity["metric"]
    assert quality["reconstruction_mse_export"] < 1.5 * quality["reconstruction_mse_keras"] + 1e-3
