"""`import_hf_bert` refuses bad user files up front: one KseqError line naming file and field."""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from bert_helpers import HF_CONFIG, random_hf_tensors, write_hf_checkpoint

from kseq.errors import KseqError
from kseq.importers import import_hf_bert
from kseq.models.bert.hf_import import (
    INT_FIELDS,
    architecture,
    check_fits_in_memory,
    parameter_count,
)
from kseq.train.budget import available_memory

LAYER0 = "bert.encoder.layer.0"


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    tensors = random_hf_tensors(HF_CONFIG, mlm=False)
    return write_hf_checkpoint(tmp_path_factory.mktemp("hf") / "tiny", tensors=tensors)


def _copy(valid: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(valid, tmp_path / "hf"))


def _with_config(valid: Path, tmp_path: Path, config: dict) -> Path:
    directory = _copy(valid, tmp_path)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def _with_tensors(tmp_path: Path, tensors: dict) -> Path:
    return write_hf_checkpoint(tmp_path / "hf", tensors=tensors)


def _with_weights_bytes(valid: Path, tmp_path: Path, data: bytes) -> Path:
    directory = _copy(valid, tmp_path)
    (directory / "model.safetensors").write_bytes(data)
    return directory


def _refused(directory: Path, tmp_path: Path, *fragments: str) -> str:
    with pytest.raises(KseqError) as info:
        import_hf_bert(directory, tmp_path / "run")
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert not (tmp_path / "run").exists()
    return message


DROP = object()  # a config change that removes the field


def _config(changes: dict) -> dict:
    config = {**HF_CONFIG, **changes}
    return {key: value for key, value in config.items() if value is not DROP}


def _case(case_id: str, value, *fragments: str):
    return pytest.param(value, fragments, id=case_id)


BAD_CONFIGS = [
    _case(
        "heads 0",
        {"num_attention_heads": 0},
        "num_attention_heads: must be a positive integer; received 0",
    ),
    _case("hidden abc", {"hidden_size": "abc"}, 'hidden_size: must be an integer; received "abc"'),
    _case("hidden '12'", {"hidden_size": "12"}, 'hidden_size: must be an integer; received "12"'),
    _case("hidden [8]", {"hidden_size": [8]}, "hidden_size: must be an integer; received [8]"),
    _case("hidden 8.5", {"hidden_size": 8.5}, "hidden_size: must be an integer; received 8.5"),
    _case("hidden true", {"hidden_size": True}, "hidden_size: must be an integer; received true"),
    _case(
        "layers 1e9",
        {"num_hidden_layers": 10**9},
        "num_hidden_layers: must be an integer <= 64; received 1000000000",
    ),
    _case(
        "not divisible",
        {"num_attention_heads": 5},
        "hidden_size: must be divisible by num_attention_heads (5); received 12",
    ),
    _case(
        "heads > hidden",
        {"num_attention_heads": 24},
        "num_attention_heads: must be <= hidden_size (12); received 24",
    ),
    _case(
        "negative eps",
        {"layer_norm_eps": -1e-7},
        "layer_norm_eps: must be greater than 0; received -1e-07",
    ),
    _case(
        "nan eps",
        {"layer_norm_eps": float("nan")},
        "layer_norm_eps: must be a finite number; received NaN",
    ),
    _case(
        "huge integer eps",
        {"layer_norm_eps": 10**400},
        "layer_norm_eps: must be a finite number; received 1000",
    ),
    _case(
        "dropout 1",
        {"hidden_dropout_prob": 1.0},
        "hidden_dropout_prob: must be in [0, 1); received 1.0",
    ),
    _case(
        "vocab too big",
        {"vocab_size": 10**8},
        "vocab_size: must be an integer <= 10000000; received 100000000",
    ),
    _case(
        "activation list",
        {"hidden_act": ["gelu"]},
        'hidden_act: must be a string; received ["gelu"]',
    ),
    _case(
        "missing field",
        {"intermediate_size": DROP},
        "intermediate_size: missing; expected an integer",
    ),
    _case(
        "several problems",
        {"hidden_size": "abc", "type_vocab_size": 0},
        'hidden_size: must be an integer; received "abc"',
        " | type_vocab_size: must be a positive integer; received 0",
    ),
]


@pytest.mark.parametrize(("changes", "fragments"), BAD_CONFIGS)
def test_bad_config_is_refused_naming_file_and_field(valid, tmp_path, changes, fragments):
    directory = _with_config(valid, tmp_path, _config(changes))
    _refused(directory, tmp_path, f"{directory / 'config.json'}: ", *fragments)


def test_a_billion_layers_is_refused_at_once(valid, tmp_path):
    directory = _with_config(valid, tmp_path, _config({"num_hidden_layers": 10**9}))
    start = time.monotonic()
    _refused(directory, tmp_path, "num_hidden_layers")
    assert time.monotonic() - start < 5


def test_a_model_too_large_for_memory_is_refused_before_reading_tensors(valid, tmp_path):
    huge = {"hidden_size": 65536, "num_attention_heads": 1024, "intermediate_size": 262144}
    directory = _with_config(valid, tmp_path, _config({**huge, "num_hidden_layers": 64}))
    start = time.monotonic()
    _refused(
        directory,
        tmp_path,
        str(directory / "config.json"),
        "too large to import",
        "hidden_size=65536",
        "num_hidden_layers=64",
        "parameters",
    )
    assert time.monotonic() - start < 5


def test_parameter_count_matches_the_checkpoint_tensors():
    arch = architecture(HF_CONFIG, Path("config.json"))
    tensors = random_hf_tensors(HF_CONFIG, mlm=True)
    tensors.pop("cls.predictions.decoder.weight")  # tied: not a separate weight
    backbone = sum(t.size for name, t in tensors.items() if not name.startswith("cls."))
    assert parameter_count(arch, masked_lm=False) == backbone
    assert parameter_count(arch, masked_lm=True) == sum(t.size for t in tensors.values())


def test_memory_check_takes_the_available_bytes():
    arch = architecture(HF_CONFIG, Path("config.json"))
    needed = parameter_count(arch, masked_lm=False) * 4 * 4
    check_fits_in_memory(arch, False, needed, Path("config.json"))
    check_fits_in_memory(arch, False, None, Path("config.json"))  # unknown: not refused
    with pytest.raises(KseqError, match=r"config.json: the model is too large.*vocab_size=40"):
        check_fits_in_memory(arch, False, needed - 1, Path("config.json"))
    available = available_memory()
    assert available is None or available > 0


def test_config_bounds_are_no_looser_than_the_bert_spec():
    from kseq.models.bert.spec import BertSpec

    spec_fields = {f.name: f.metadata for f in dataclasses.fields(BertSpec)}
    for key, field in INT_FIELDS.items():
        bounds = spec_fields[field.arch_key]
        assert bounds["min"] is None or field.low >= bounds["min"], key
        assert bounds["max"] is None or field.high <= bounds["max"], key


def _tensors(changes: dict) -> dict:
    tensors = {**random_hf_tensors(HF_CONFIG, mlm=False), **changes}
    return {name: value for name, value in tensors.items() if value is not DROP}


def _poisoned(name: str, value: float) -> dict:
    tensors = random_hf_tensors(HF_CONFIG, mlm=False)
    tensors[name][0] = value
    return tensors


BAD_TENSORS = [
    _case(
        "wrong shape",
        {f"{LAYER0}.intermediate.dense.weight": np.zeros((21, 12), np.float32)},
        f"tensor {LAYER0}.intermediate.dense.weight: expected shape (20, 12)",
        "received (21, 12)",
    ),
    _case(
        "wrong rank",
        {"bert.embeddings.LayerNorm.bias": np.zeros((12, 1), np.float32)},
        "tensor bert.embeddings.LayerNorm.bias: expected shape (12,) from config.json",
        "received (12, 1)",
    ),
    _case(
        "missing tensors",
        {"bert.pooler.dense.bias": DROP, f"{LAYER0}.output.dense.bias": DROP},
        "missing tensor(s) encoder.layer.0.output.dense.bias, pooler.dense.bias",
    ),
    _case(
        "more layers than config",
        {"bert.encoder.layer.2.output.dense.bias": np.zeros(12, np.float32)},
        "tensor bert.encoder.layer.2.output.dense.bias: config.json's num_hidden_layers is 2",
        "received layer 2",
    ),
    _case(
        "integer weights",
        {"bert.embeddings.LayerNorm.weight": np.ones(12, np.int32)},
        "bert.embeddings.LayerNorm.weight: dtype must be one of F32, F16, F64; received I32",
    ),
]


@pytest.mark.parametrize(("changes", "fragments"), BAD_TENSORS)
def test_bad_tensor_is_refused_naming_it(tmp_path, changes, fragments):
    directory = _with_tensors(tmp_path, _tensors(changes))
    _refused(directory, tmp_path, f"{directory / 'model.safetensors'}: ", *fragments)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, value):
    name = f"{LAYER0}.attention.self.key.weight"
    directory = _with_tensors(tmp_path, _poisoned(name, value))
    _refused(directory, tmp_path, str(directory / "model.safetensors"), name, "NaN or inf")


def test_unused_tensors_are_not_checked_or_loaded(tmp_path):
    tensors = _tensors({"bert.embeddings.position_ids": np.arange(24, dtype=np.int64)[None]})
    tensors["extra.unused"] = np.full(3, np.nan, np.float32)
    run = import_hf_bert(_with_tensors(tmp_path, tensors), tmp_path / "run")
    report = json.loads((run / "import.json").read_text())
    assert report["tensors_ignored"] == ["embeddings.position_ids", "extra.unused"]


def _header_file(header: object, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def _tensor_header(shape: list, offsets: list) -> dict:
    return {"w": {"dtype": "F32", "shape": shape, "data_offsets": offsets}}


BAD_FILES = [
    _case("too short", b"abc", "3 bytes; too short to be a safetensors file"),
    _case(
        "header longer than file",
        struct.pack("<Q", 10_000) + b"{}",
        "header length 10000 is larger than the file (10 bytes)",
    ),
    _case("absurd header", struct.pack("<Q", 2**63) + b"{}", "header length must be at most"),
    _case("header not json", struct.pack("<Q", 8) + b"not json", "header is not valid JSON"),
    _case("header a list", _header_file([], b""), "header must be a JSON object"),
    _case(
        "offsets past the end",
        _header_file(_tensor_header([4], [0, 16]), bytes(8)),
        "tensor w: data_offsets [0, 16] point past the end of the file (8 bytes",
    ),
    _case(
        "offsets do not fit the shape",
        _header_file(_tensor_header([4], [0, 8]), bytes(8)),
        "tensor w: shape [4] of F32 needs 16 bytes; received data_offsets [0, 8]",
    ),
    _case(
        "negative size",
        _header_file(_tensor_header([-1], [0, 0]), b""),
        "tensor w: shape must be a list of sizes; received [-1]",
    ),
]


@pytest.mark.parametrize(("data", "fragments"), BAD_FILES)
def test_malformed_safetensors_is_refused_before_loading(valid, tmp_path, data, fragments):
    directory = _with_weights_bytes(valid, tmp_path, data)
    _refused(directory, tmp_path, f"{directory / 'model.safetensors'}: ", *fragments)


def test_truncated_safetensors_is_refused(valid, tmp_path):
    data = (valid / "model.safetensors").read_bytes()
    directory = _with_weights_bytes(valid, tmp_path, data[: len(data) - 100])
    _refused(directory, tmp_path, "model.safetensors", "point past the end of the file")
    directory = _with_weights_bytes(valid, tmp_path / "cut", data[:20])
    _refused(directory, tmp_path, "model.safetensors", "is larger than the file (20 bytes)")


def test_bad_tokenizer_files_are_refused_naming_them(valid, tmp_path):
    directory = _copy(valid, tmp_path)
    options = directory / "tokenizer_config.json"
    options.write_text(json.dumps({"do_lower_case": "yes"}))
    _refused(
        directory,
        tmp_path,
        f'{options}: do_lower_case: must be true, false or null; received "yes"',
    )
    options.write_text(json.dumps({"strip_accents": 1}))
    _refused(directory, tmp_path, f"{options}: strip_accents")
    options.write_text("{}")
    vocab = directory / "vocab.txt"
    vocab.write_bytes(b"[PAD]\n\xff\xfe\n")
    _refused(directory, tmp_path, f"{vocab}: invalid UTF-8")
    vocab.write_text("[PAD]\n[CLS]\n[SEP]\n")
    _refused(directory, tmp_path, f"{vocab}: vocabulary lacks the special token(s) [UNK]")


def test_unparsable_config_is_refused(valid, tmp_path):
    directory = _copy(valid, tmp_path)
    config = directory / "config.json"
    for text in ("[" * 100_000, '{"vocab_size": ' + "9" * 5000 + "}", "{nope"):
        config.write_text(text)
        _refused(directory, tmp_path, f"{config}: not valid JSON")
    config.write_bytes(b'{"model_type": "\xff"}')
    _refused(directory, tmp_path, f"{config}: not valid JSON")


@pytest.mark.parametrize("bad", ["config", "nan"])
def test_cli_reports_one_line_and_exits_2(valid, tmp_path, bad):
    from helpers import run_cli

    if bad == "config":
        directory = _with_config(valid, tmp_path, _config({"num_attention_heads": 0}))
        expected = "num_attention_heads: must be a positive integer; received 0"
    else:
        directory = _with_tensors(tmp_path, _poisoned("bert.pooler.dense.bias", np.nan))
        expected = "tensor bert.pooler.dense.bias: must be finite"
    result = run_cli("import", "hf-bert", str(directory), "--output", str(tmp_path / "run"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kseq: error: "), result.stderr
    assert expected in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()
