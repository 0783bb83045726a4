"""The memory budget: exact parameter counts without allocation, refusals that name the fields."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
from helpers import FAST, SPECS

from kseq.errors import KseqError
from kseq.models.family import family_for
from kseq.spec.load import load_spec
from kseq.train import budget

FAMILY_SPECS = [
    "autoencoder_conv2d.yaml",
    "autoencoder_variational.yaml",
    "rnn_seq2seq_bahdanau.yaml",
    "transformer_seq2seq.yaml",
    "bert_span_qa.yaml",
]


def _prepared(name, overrides=()):
    spec = load_spec(SPECS / name, [*FAST, *overrides])
    family = family_for(spec)
    keras.utils.set_random_seed(0)
    data = family.load_data(spec)
    return data.concrete(spec), family, data  # `auto` lengths as training resolves them


@pytest.mark.parametrize("name", FAMILY_SPECS)
def test_shape_only_build_counts_parameters_exactly_and_leaves_the_real_build_alone(name):
    spec, family, data = _prepared(name)
    keras.utils.set_random_seed(0)
    plain = family.build(spec, data)
    keras.utils.set_random_seed(0)
    found = budget.estimate(family, spec, data)
    probed = family.build(spec, data)
    assert found.parameters == plain.count_params() == probed.count_params()
    assert [v.path for v in probed.weights] == [v.path for v in plain.weights]
    for a, b in zip(plain.weights, probed.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert found.activation_values > spec.train.batch_size


def test_activations_scale_with_batch_and_length():
    spec, family, data = _prepared("transformer_seq2seq.yaml")
    small = budget.estimate(family, spec, data).activation_values
    spec2, family2, data2 = _prepared("transformer_seq2seq.yaml", ["train.batch_size=32"])
    assert budget.estimate(family2, spec2, data2).activation_values == 2 * small


def test_a_model_too_big_for_memory_is_refused_with_fields_and_estimate():
    spec, family, data = _prepared("autoencoder_conv2d.yaml")
    found = budget.estimate(family, spec, data)
    weights = found.parameters * budget.FLOAT_BYTES * budget.TRAINING_COPIES
    with pytest.raises(KseqError) as caught:
        budget.check_model_fits(family, spec, data, available=weights - 1)
    message = str(caught.value)
    assert f"({found.parameters:,} parameters)" in message
    assert "model.encoder.filters=" in message and "GiB" in message
    budget.check_model_fits(family, spec, data, available=found.training_bytes)  # fits exactly


def test_activations_too_big_name_the_batch_size():
    spec, family, data = _prepared("bert_span_qa.yaml")
    found = budget.estimate(family, spec, data)
    with pytest.raises(KseqError, match=r"at train.batch_size 16 .* reduce train.batch_size"):
        budget.check_model_fits(family, spec, data, available=found.training_bytes - 1)


def test_require_memory_message():
    with pytest.raises(KseqError) as caught:
        budget.require_memory(3 << 30, "the data", "data.x", available=1 << 30)
    assert str(caught.value) == (
        "the data would need about 3.0 GiB of memory and 1.0 GiB is available; reduce data.x"
    )
    budget.require_memory(1 << 30, "the data", "data.x", available=1 << 30)


def test_available_memory_reads_memavailable_and_falls_back_to_the_total(monkeypatch, tmp_path):
    meminfo = tmp_path / "meminfo"

    def reading(path, *args, **kwargs):  # /proc/meminfo as this test writes it
        assert path == "/proc/meminfo"
        return open(meminfo, *args, **kwargs)

    monkeypatch.setattr(budget, "open", reading, raising=False)
    meminfo.write_text("MemTotal:  16000000 kB\nMemFree:  100 kB\nMemAvailable:  1234567 kB\n")
    assert budget.available_memory() == 1234567 * 1024
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    meminfo.write_text("MemTotal:  16000000 kB\n")  # a kernel without MemAvailable
    assert budget.available_memory() == total
    meminfo.write_text("MemAvailable:  many kB\n")  # unreadable: the total, not a crash
    assert budget.available_memory() == total
    meminfo.unlink()  # no /proc (not Linux)
    assert budget.available_memory() == total
