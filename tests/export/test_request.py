"""`ExportRequest`: one value says what an export is asked for; it is checked against the spec
and the family before anything is built."""

from __future__ import annotations

import pytest
from helpers import SPECS

import kseq
from kseq.errors import KseqError
from kseq.export.request import ExportRequest
from kseq.export.static_shapes import StaticShape
from kseq.models.family import family_for


def _resolved(spec_file: str, overrides=(), **fields):
    spec = kseq.load_spec(SPECS / spec_file, list(overrides))
    return ExportRequest(**fields).resolved(spec, family_for(spec))


def test_quantize_comes_from_the_spec_unless_asked():
    assert _resolved("autoencoder_dense.yaml").quantize == "none"
    spec_int8 = ["export.quantize=int8"]
    assert _resolved("autoencoder_dense.yaml", spec_int8).quantize == "int8"
    assert _resolved("autoencoder_dense.yaml", spec_int8, quantize="dynamic").quantize == "dynamic"


@pytest.mark.parametrize(
    ("spec_file", "fields", "message"),
    [
        ("autoencoder_dense.yaml", {"format": "onnx"}, "--format: unknown format 'onnx'"),
        ("autoencoder_dense.yaml", {"part": "encodr"}, "has no part 'encodr'"),
        ("autoencoder_dense.yaml", {"format": "saved_model", "quantize": "int8"}, "TFLite"),
        ("autoencoder_dense.yaml", {"io": "int8"}, "--io int8 needs --format tflite"),
        ("autoencoder_dense.yaml", {"sequence_length": 8}, "have no sequence axis"),
        ("bert_classification.yaml", {"sequence_length": 0}, "must be >= 1"),
        (
            "autoencoder_dense.yaml",
            {"format": "saved_model", "static": StaticShape()},
            "--static applies to TFLite",
        ),
        (
            "autoencoder_dense.yaml",
            {"static": StaticShape(batch_size=1, target_length=4)},
            "--target-length: autoencoder exports have no such axis",
        ),
        (
            "rnn_seq2seq_bahdanau.yaml",
            {"quantize": "int8", "io": "int8"},
            "--io int8 needs --static for rnn_seq2seq",
        ),
    ],
)
def test_what_cannot_be_exported_names_the_flag(spec_file, fields, message):
    with pytest.raises(KseqError, match=message):
        _resolved(spec_file, **fields)


def test_the_endpoints_get_the_shape_options():
    static = StaticShape(batch_size=2, sequence_length=16)
    assert ExportRequest(static=static).endpoint_options() == {"static": static}
    assert _resolved("bert_classification.yaml", sequence_length=32).endpoint_options() == {
        "sequence_length": 32
    }
    assert ExportRequest().endpoint_options() == {}
