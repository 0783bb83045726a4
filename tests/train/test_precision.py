"""train.precision and train.jit_compile: mixed policies train on CPU, RUN_DIR is always float32 and
exports within the float32 parity gate, the global policy is reset, the jit flag reaches fit."""

from __future__ import annotations

import json
import math

import keras
import pytest
from helpers import SPECS

import kseq
from kseq.models.family import family_for
from kseq.train import precision

SPEC = str(SPECS / "autoencoder_dense.yaml")
SMALL = ["data.synthetic.samples=256", "train.epochs=2", "train.batch_size=32", "train.verbose=0"]


@pytest.mark.parametrize(
    "policy, loss_scaled", [("mixed_float16", True), ("mixed_bfloat16", False), ("float32", False)]
)
def test_keras_wraps_the_optimizer_for_float16_only(policy, loss_scaled):
    spec = kseq.load_spec(SPEC, [*SMALL, f"train.precision={policy}"])
    family = family_for(spec)
    with precision.dtype_policy(spec.train.precision):
        model = family.build(spec, family.load_data(spec))
        family.compile(model, spec)
    assert model.get_layer("encoder").get_layer("dense_0").dtype_policy.name == policy
    is_scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert is_scaled == loss_scaled
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_training_saves_float32_and_exports_within_the_gate(tmp_path, policy):
    run_dir = kseq.train(kseq.load_spec(SPEC, [*SMALL, f"train.precision={policy}"]), tmp_path)
    assert keras.config.dtype_policy().name == "float32"  # later work in this process is float32
    epochs = json.loads((run_dir / "history.json").read_text())
    assert len(epochs) == 2 and all(math.isfinite(e["loss"]) for e in epochs)
    model = keras.saving.load_model(run_dir / "model.keras", compile=False)
    policies = {
        layer.dtype_policy.name
        for layer in model._flatten_layers(include_self=False)
        if hasattr(layer, "dtype_policy")
    }
    assert policies == {"float32"}
    # Saved as trained, a mixed model fails this gate (max abs diff about 2e-3 for float16).
    report = kseq.export(run_dir, format="tflite")
    parity = report["parity"]["serving_default"]["outputs"]["reconstruction"]
    assert parity["max_abs_diff"] < 1e-4


@pytest.mark.parametrize(
    "spec_file", ["autoencoder_dense.yaml", "rnn_seq2seq_bahdanau.yaml", "bert_classification.yaml"]
)
def test_a_float32_model_is_kept_and_a_mixed_one_rebuilt(spec_file):
    """`float32_copy` rebuilds only a model built under a mixed policy (integer token inputs do
    not count)."""
    spec = kseq.load_spec(SPECS / spec_file, ["train.precision=mixed_bfloat16"])
    family = family_for(spec)
    data = family.load_data(spec)
    plain = family.build(spec, data)
    assert precision.float32_copy(spec, family, data, plain) is plain
    with precision.dtype_policy("mixed_bfloat16"):
        mixed = family.build(spec, data)
    copy = precision.float32_copy(spec, family, data, mixed)
    assert copy is not mixed
    assert {layer.compute_dtype for layer in copy.layers} >= {"float32"}
    assert "bfloat16" not in {layer.compute_dtype for layer in copy.layers}


def test_policy_is_reset_after_an_error():
    with pytest.raises(RuntimeError), precision.dtype_policy("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        raise RuntimeError("training failed")
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.parametrize("value", [True, False])
def test_jit_compile_reaches_fit(tmp_path, monkeypatch, value):
    seen = []
    original = precision.set_jit_compile

    def spy(model, flag):
        original(model, flag)
        seen.append(model)

    monkeypatch.setattr(precision, "set_jit_compile", spy)
    kseq.train(kseq.load_spec(SPEC, [*SMALL, f"train.jit_compile={str(value).lower()}"]), tmp_path)
    (model,) = seen
    assert model.jit_compile is value
    assert model.train_function is not None  # fit built (and ran) its step with that setting


def test_jit_compile_on_cpu_with_varying_batch_shapes_says_why_it_is_slow():
    import tensorflow as tf

    bucketed = ({"source": tf.TensorSpec((None, None), tf.int32)}, tf.TensorSpec((None, None)))
    fixed = (tf.TensorSpec((None, 24)), tf.TensorSpec((None, 24)))
    line = precision.jit_warning(True, bucketed, on_gpu=False)
    assert "one XLA program per batch shape" in line and "jit_compile: auto" in line
    assert precision.jit_warning(True, fixed, on_gpu=False) is None
    assert precision.jit_warning(True, bucketed, on_gpu=True) is None
    assert precision.jit_warning("auto", bucketed, on_gpu=False) is None
    assert precision.jit_warning(False, bucketed, on_gpu=False) is None


def test_jit_compile_auto_keeps_the_compile_choice():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse", jit_compile=False)
    precision.set_jit_compile(model, "auto")
    assert model.jit_compile is False
