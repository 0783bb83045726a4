"""`kseq import hf-bert DIR --output RUN_DIR`: a Hugging Face BERT checkpoint as a kseq run.

Reads `config.json`, `model.safetensors` (with the `safetensors` package, as numpy arrays),
`vocab.txt` and `tokenizer_config.json` (`do_lower_case`, `strip_accents`) and writes a kseq
BERT RUN_DIR — `spec.yaml`, `model.keras`, `assets/` (vocabulary and tokenizer options) and
`import.json` (what was mapped) — atomically: readers see no directory or a complete one.

The import is exact: the kseq backbone computes the same function as the checkpoint's
architecture — the exact erf GELU (`hidden_act: gelu`; `gelu_new`/`gelu_pytorch_tanh` map to the
tanh form), the checkpoint's `layer_norm_eps`, post-LN blocks, absolute positions. Weight
layouts: HF `Linear` weights are `(out, in)` and are transposed; attention projections are
reshaped to Keras `MultiHeadAttention`'s `(H, heads, head_size)` / `(heads, head_size, H)`.

When the checkpoint has a masked-LM head (`cls.predictions.*`) it is imported too (head
`masked_lm`, its decoder tied to the word embeddings); otherwise the run has head `none`.

Everything read from the folder is untrusted: `config.json` is type- and range-checked, the
model's size is compared with the available memory, and every tensor's dtype, shape and byte
range is checked against the config from the safetensors header before any tensor data is
read. Only the tensors the model uses are loaded, and they must be finite. Each problem is one
`KseqError` line naming the file.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from kseq.errors import KseqError
from kseq.io import atomic_directory, atomic_write_text
from kseq.io.run_dir import ASSETS_DIR, MODEL_FILE, SPEC_FILE
from kseq.models.bert.head_registry import bert_head, bert_heads
from kseq.models.bert.network import BertConfig, build_model
from kseq.spec.errors import SpecError
from kseq.spec.load import dump_spec, load_spec
from kseq.tokenizers.bert import BertTokenizer, read_vocab
from kseq.train.budget import available_memory

ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
    "gelu_fast": "gelu_approximate",
    "relu": "relu",
}


class IntField(NamedTuple):
    arch_key: str
    default: int | None  # None: required
    low: int
    high: int


class FloatField(NamedTuple):
    arch_key: str
    default: float | None  # None: optional, without a value
    kind: str  # "positive" (> 0) or "probability" ([0, 1))


# config.json fields the importer reads. The bounds are no looser than kseq's BERT spec allows.
INT_FIELDS = {
    "vocab_size": IntField("vocab_size", None, 8, 10_000_000),
    "hidden_size": IntField("hidden_size", None, 1, 65_536),
    "num_hidden_layers": IntField("num_layers", None, 1, 64),
    "num_attention_heads": IntField("num_heads", None, 1, 1024),
    "intermediate_size": IntField("intermediate_size", None, 1, 262_144),
    "max_position_embeddings": IntField("max_sequence_length", 512, 4, 1_000_000),
    "type_vocab_size": IntField("num_segments", 2, 1, 1024),
}
FLOAT_FIELDS = {
    "layer_norm_eps": FloatField("layer_norm_epsilon", 1e-12, "positive"),
    "hidden_dropout_prob": FloatField("dropout", 0.1, "probability"),
    "attention_probs_dropout_prob": FloatField("attention_dropout", None, "probability"),
    "initializer_range": FloatField("initializer_range", 0.02, "positive"),
}
STRING_FIELDS = ("model_type", "position_embedding_type", "hidden_act")

MAX_JSON_BYTES = 16 * 2**20  # config.json / tokenizer_config.json
MAX_HEADER_BYTES = 100_000_000  # the safetensors format's own limit
DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "C64": 8, "BOOL": 1,
    "I64": 8, "U64": 8, "I32": 4, "U32": 4, "I16": 2, "U16": 2, "I8": 1, "U8": 1,
}  # fmt: skip
FLOAT_DTYPES = ("F32", "F16", "F64")
BYTES_PER_PARAMETER = 4  # float32
IMPORT_COPIES = 4  # loaded arrays, transformed copies, Keras variables, the saved file's buffers


def _received(value) -> str:
    """A JSON value as the user wrote it, shortened."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _read_json(path: Path, required: bool = True) -> dict:
    if not path.is_file():
        if required:
            raise KseqError(f"{path.parent}: no {path.name} (expected a Hugging Face BERT folder)")
        return {}
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise KseqError(f"{path}: {size} bytes; expected a JSON file under {MAX_JSON_BYTES} bytes")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:  # bad UTF-8, bad JSON, absurd nesting or digits
        raise KseqError(f"{path}: not valid JSON: {_one_line(e)}") from None
    if not isinstance(value, dict):
        raise KseqError(f"{path}: expected a JSON object")
    return value


# ---- config.json -------------------------------------------------------------------------------


def _integer_problem(value, field: IntField) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be an integer; received {_received(value)}"
    if value < field.low:
        expected = "a positive integer" if field.low == 1 else f"an integer >= {field.low}"
        return f"must be {expected}; received {_received(value)}"
    if value > field.high:
        return f"must be an integer <= {field.high}; received {_received(value)}"
    return None


def _finite_float(value) -> float | None:
    """`value` as a finite float; None for anything else (bools, strings, NaN, huge ints)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _number_problem(value, kind: str) -> str | None:
    number = _finite_float(value)
    if number is None:
        return f"must be a finite number; received {_received(value)}"
    if kind == "positive" and number <= 0:
        return f"must be greater than 0; received {_received(value)}"
    if kind == "probability" and not 0 <= number < 1:
        return f"must be in [0, 1); received {_received(value)}"
    return None


def _field_problems(config: dict) -> list[str]:
    problems = []
    for key, field in INT_FIELDS.items():
        if key not in config:
            if field.default is None:
                problems.append(f"{key}: missing; expected an integer")
        elif problem := _integer_problem(config[key], field):
            problems.append(f"{key}: {problem}")
    for key, field in FLOAT_FIELDS.items():
        value = config.get(key)
        if value is not None and (problem := _number_problem(value, field.kind)):
            problems.append(f"{key}: {problem}")
    for key in STRING_FIELDS:
        if key in config and not isinstance(config[key], str):
            problems.append(f"{key}: must be a string; received {_received(config[key])}")
    return problems


def _head_problems(hidden: int, heads: int) -> list[str]:
    if heads > hidden:
        return [f"num_attention_heads: must be <= hidden_size ({hidden}); received {heads}"]
    if hidden % heads:
        return [
            f"hidden_size: must be divisible by num_attention_heads ({heads}); received {hidden}"
        ]
    return []


def config_problems(config: dict) -> list[str]:
    """Every problem of a config.json's fields, as `field: what; received value` lines."""
    problems = _field_problems(config)
    if problems:
        return problems
    return _head_problems(config["hidden_size"], config["num_attention_heads"])


def _check_supported(config: dict, path: Path) -> None:
    model_type = config.get("model_type", "bert")
    if model_type != "bert":
        raise KseqError(f"{path}: model_type is {model_type!r}; only 'bert' can be imported")
    position_type = config.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise KseqError(f"{path}: position_embedding_type {position_type!r} is not supported")
    activation = config.get("hidden_act", "gelu")
    if activation not in ACTIVATIONS:
        raise KseqError(
            f"{path}: hidden_act {activation!r} is not supported; expected one of "
            + ", ".join(ACTIVATIONS)
        )


def architecture(config: dict, path: Path) -> dict:
    """The kseq BERT architecture of a validated config.json (KseqError listing its problems)."""
    problems = config_problems(config)
    if problems:
        raise KseqError(f"{path}: " + " | ".join(problems))
    _check_supported(config, path)
    arch = {f.arch_key: config.get(key, f.default) for key, f in INT_FIELDS.items()}

    def number(key):  # null means the default, as for attention_probs_dropout_prob
        value = config.get(key)
        return float(FLOAT_FIELDS[key].default if value is None else value)

    arch["layer_norm_epsilon"] = number("layer_norm_eps")
    arch["activation"] = ACTIVATIONS[config.get("hidden_act", "gelu")]
    arch["dropout"] = number("hidden_dropout_prob")
    arch["initializer_range"] = number("initializer_range")
    attention_dropout = config.get("attention_probs_dropout_prob")
    if attention_dropout is not None and float(attention_dropout) != arch["dropout"]:
        arch["attention_dropout"] = float(attention_dropout)
    return arch


# ---- memory ------------------------------------------------------------------------------------


def parameter_count(arch: dict, masked_lm: bool) -> int:
    """Weights of the model: embeddings + encoder layers + pooler (+ masked-LM head)."""
    h, f, v = arch["hidden_size"], arch["intermediate_size"], arch["vocab_size"]
    embeddings = (v + arch["max_sequence_length"] + arch["num_segments"]) * h + 2 * h
    attention = 4 * (h * h + h) + 2 * h
    feedforward = (h * f + f) + (f * h + h) + 2 * h
    pooler = h * h + h
    mlm = (h * h + h) + 2 * h + v if masked_lm else 0
    return embeddings + arch["num_layers"] * (attention + feedforward) + pooler + mlm


def check_fits_in_memory(
    arch: dict, masked_lm: bool, available_bytes: int | None, path: Path
) -> None:
    """KseqError when importing the model needs more than `available_bytes` (None: unknown)."""
    count = parameter_count(arch, masked_lm)
    needed = count * BYTES_PER_PARAMETER * IMPORT_COPIES
    if available_bytes is None or needed <= available_bytes:
        return
    sizes = ", ".join(
        f"{key}={arch[field.arch_key]}"
        for key, field in INT_FIELDS.items()
        if key != "num_attention_heads"  # does not change the size
    )
    raise KseqError(
        f"{path}: the model is too large to import here: {sizes} give ~{count:,} parameters, "
        f"~{needed / 1e9:.1f} GB to import (float32, x{IMPORT_COPIES} for copies); only "
        f"{available_bytes / 1e9:.1f} GB of memory is available"
    )


# ---- model.safetensors -------------------------------------------------------------------------


class TensorEntry(NamedTuple):
    dtype: str
    shape: tuple[int, ...]


def _header_bytes(path: Path) -> tuple[bytes, int]:
    """The JSON header of a safetensors file and the size of the data after it."""
    size = path.stat().st_size
    if size < 8:
        raise KseqError(f"{path}: {size} bytes; too short to be a safetensors file")
    with path.open("rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        if length > MAX_HEADER_BYTES:
            raise KseqError(
                f"{path}: header length must be at most {MAX_HEADER_BYTES} bytes; received "
                f"{length} (not a safetensors file?)"
            )
        if length > size - 8:
            raise KseqError(
                f"{path}: header length {length} is larger than the file ({size} bytes); "
                "the file is truncated or not a safetensors file"
            )
        return handle.read(length), size - 8 - length


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor_entry(path: Path, name: str, info, data_bytes: int) -> TensorEntry:
    where = f"{path}: tensor {name}"
    if not isinstance(info, dict) or not isinstance(info.get("dtype"), str):
        raise KseqError(f"{where}: header entry must have a dtype; received {_received(info)}")
    shape, offsets = info.get("shape"), info.get("data_offsets")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise KseqError(f"{where}: shape must be a list of sizes; received {_received(shape)}")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(_is_count(o) for o in offsets)
        and offsets[0] <= offsets[1]
    ):
        raise KseqError(
            f"{where}: data_offsets must be [begin, end]; received {_received(offsets)}"
        )
    if offsets[1] > data_bytes:
        raise KseqError(
            f"{where}: data_offsets {offsets} point past the end of the file ({data_bytes} bytes "
            "of tensor data); the file is truncated"
        )
    itemsize = DTYPE_BYTES.get(info["dtype"])
    if itemsize is not None and offsets[1] - offsets[0] != math.prod(shape) * itemsize:
        raise KseqError(
            f"{where}: shape {shape} of {info['dtype']} needs {math.prod(shape) * itemsize} "
            f"bytes; received data_offsets {offsets}"
        )
    return TensorEntry(info["dtype"], tuple(shape))


def read_safetensors_header(path: Path) -> dict[str, TensorEntry]:
    """Name -> (dtype, shape) of every tensor in a safetensors file, without reading the data."""
    raw, data_bytes = _header_bytes(path)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise KseqError(
            f"{path}: the safetensors header is not valid JSON: {_one_line(e)}"
        ) from None
    if not isinstance(header, dict):
        raise KseqError(f"{path}: the safetensors header must be a JSON object")
    return {
        name: _tensor_entry(path, name, info, data_bytes)
        for name, info in header.items()
        if name != "__metadata__"
    }


def _canonical_name(name: str) -> str:
    name = name.removeprefix("bert.")
    name = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", name)
    return re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name)


def tensor_index(names, path: Path) -> dict[str, str]:
    """Canonical name (no `bert.` prefix, LayerNorm weight/bias) -> the name in the file."""
    index: dict[str, str] = {}
    for name in names:
        key = _canonical_name(name)
        if key in index:
            raise KseqError(f"{path}: tensors {index[key]} and {name} are the same weight")
        index[key] = name
    return index


def _check_entries(expected: dict, index: dict, header: dict, path: Path) -> None:
    missing = sorted(name for name in expected if name not in index)
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise KseqError(f"{path}: missing tensor(s) {shown}")
    for name, shape in expected.items():
        entry = header[index[name]]
        if entry.dtype not in FLOAT_DTYPES:
            raise KseqError(
                f"{path}: tensor {index[name]}: dtype must be one of {', '.join(FLOAT_DTYPES)}; "
                f"received {entry.dtype}"
            )
        if entry.shape != shape:
            raise KseqError(
                f"{path}: tensor {index[name]}: expected shape {shape} from config.json; "
                f"received {entry.shape}"
            )


def _check_layer_count(index: dict, num_layers: int, path: Path) -> None:
    """Encoder layers beyond config.json's count would be dropped silently: refuse them."""
    for key, name in sorted(index.items()):
        match = re.match(r"encoder\.layer\.(\d+)\.", key)
        if match and int(match[1]) >= num_layers:
            raise KseqError(
                f"{path}: tensor {name}: config.json's num_hidden_layers is {num_layers}, so "
                f"layers 0-{num_layers - 1} are expected; received layer {match[1]}"
            )


def _load_tensors(path: Path, names: dict[str, str]) -> dict[str, np.ndarray]:
    """Canonical name -> float32 array, for the `names` (canonical -> name in the file)."""
    from safetensors import safe_open

    tensors = {}
    try:
        with safe_open(str(path), framework="np") as handle:
            for key, name in names.items():
                tensors[key] = np.asarray(handle.get_tensor(name), np.float32)
    except MemoryError:
        raise
    except Exception as e:  # safetensors raises its own error types
        raise KseqError(f"{path}: cannot read safetensors: {_one_line(e)}") from None
    return tensors


def _check_finite(tensors: dict[str, np.ndarray], index: dict, path: Path) -> None:
    for key, value in tensors.items():
        bad = value.size - int(np.count_nonzero(np.isfinite(value)))
        if bad:
            raise KseqError(
                f"{path}: tensor {index[key]}: must be finite; received {bad} NaN or inf value(s)"
            )


# ---- weight mapping ----------------------------------------------------------------------------


class Weight(NamedTuple):
    hf_name: str  # canonical HF name
    transform: Callable[[np.ndarray], np.ndarray]  # HF layout -> Keras layout
    hf_shape: tuple[int, ...]  # the shape config.json implies


def _same(w):
    return w


def _transposed(w):
    return w.T


def _layer_weights(i: int, hidden: int, heads: int, inner: int) -> dict[str, Weight]:
    size = hidden // heads
    square, vector = (hidden, hidden), (hidden,)

    def heads_in(w):  # (out=H, in=H) -> (H_in, heads, size)
        return w.T.reshape(hidden, heads, size)

    def heads_bias(b):
        return b.reshape(heads, size)

    def heads_out(w):  # (out=H, in=H) -> (heads, size, H_out)
        return w.T.reshape(heads, size, hidden)

    output_projection, attention_out = "self_attention/attention_output", "attention.output"
    rows = []  # (kseq path, HF name, transform, HF shape), relative to the layer
    for name in ("query", "key", "value"):
        projection, hf_projection = f"self_attention/{name}", f"attention.self.{name}"
        rows.append((f"{projection}/kernel", f"{hf_projection}.weight", heads_in, square))
        rows.append((f"{projection}/bias", f"{hf_projection}.bias", heads_bias, vector))
    rows += [
        (f"{output_projection}/kernel", f"{attention_out}.dense.weight", heads_out, square),
        (f"{output_projection}/bias", f"{attention_out}.dense.bias", _same, vector),
        ("self_attention_layer_norm/gamma", f"{attention_out}.LayerNorm.weight", _same, vector),
        ("self_attention_layer_norm/beta", f"{attention_out}.LayerNorm.bias", _same, vector),
        ("intermediate_dense/kernel", "intermediate.dense.weight", _transposed, (inner, hidden)),
        ("intermediate_dense/bias", "intermediate.dense.bias", _same, (inner,)),
        ("output_dense/kernel", "output.dense.weight", _transposed, (hidden, inner)),
        ("output_dense/bias", "output.dense.bias", _same, vector),
        ("feedforward_layer_norm/gamma", "output.LayerNorm.weight", _same, vector),
        ("feedforward_layer_norm/beta", "output.LayerNorm.bias", _same, vector),
    ]
    return {
        f"transformer_layer_{i}/{path}": Weight(f"encoder.layer.{i}.{hf}", transform, shape)
        for path, hf, transform, shape in rows
    }


def weight_map(arch: dict, head: str) -> dict[str, Weight]:
    """kseq variable path -> (HF tensor name, transform of the HF array, HF shape)."""
    hidden, vocab = arch["hidden_size"], arch["vocab_size"]
    vector = (hidden,)
    positions, segments = arch["max_sequence_length"], arch["num_segments"]
    rows = [
        ("token_embedding/embeddings", "word_embeddings.weight", (vocab, hidden)),
        ("segment_embedding/embeddings", "token_type_embeddings.weight", (segments, hidden)),
        ("position_embedding/embeddings", "position_embeddings.weight", (positions, hidden)),
        ("embeddings_layer_norm/gamma", "LayerNorm.weight", vector),
        ("embeddings_layer_norm/beta", "LayerNorm.bias", vector),
    ]
    out = {path: Weight(f"embeddings.{hf}", _same, shape) for path, hf, shape in rows}
    for i in range(arch["num_layers"]):
        out.update(_layer_weights(i, hidden, arch["num_heads"], arch["intermediate_size"]))
    for path, (hf, transposed, shape) in bert_head(head).hf_weights(hidden, vocab).items():
        out[path] = Weight(hf, _transposed if transposed else _same, shape)
    return out


def _expected_shapes(mapping: dict[str, Weight], arch: dict, head: str, index: dict) -> dict:
    """Canonical HF name -> shape, of every tensor the import reads."""
    expected = {weight.hf_name: weight.hf_shape for weight in mapping.values()}
    decoder = bert_head(head).hf_tied_decoder
    if decoder is not None and decoder in index:
        expected[decoder] = (arch["vocab_size"], arch["hidden_size"])
    return expected


# ---- tokenizer and spec ------------------------------------------------------------------------


def _tokenizer_options(path: Path) -> dict:
    options = _read_json(path, required=False)
    for key in ("do_lower_case", "strip_accents", "tokenize_chinese_chars"):
        value = options.get(key)
        if value is not None and not isinstance(value, bool):
            raise KseqError(
                f"{path}: {key}: must be true, false or null; received {_received(value)}"
            )
    return options


def _tokenizer(directory: Path, arch: dict):

    options = _tokenizer_options(directory / "tokenizer_config.json")
    vocab_path = directory / "vocab.txt"
    vocab = read_vocab(vocab_path)
    if len(vocab) > arch["vocab_size"]:
        raise KseqError(
            f"{vocab_path} has {len(vocab)} tokens but config.json's vocab_size is "
            f"{arch['vocab_size']}"
        )
    if options.get("tokenize_chinese_chars", True) is False:
        raise KseqError(f"{directory}: tokenize_chinese_chars=false is not supported")
    lowercase = bool(options.get("do_lower_case", True))
    strip = options.get("strip_accents")
    try:
        return BertTokenizer(vocab, lowercase=lowercase, strip_accents=strip)
    except KseqError as e:
        raise KseqError(f"{vocab_path}: {e}") from None


def _spec(spec_data: dict, config_path: Path):

    try:
        return load_spec(spec_data)
    except SpecError as e:  # one line per issue, less the "<dict>:LINE:COL" location
        issues = " | ".join(_one_line(str(issue).split(": ", 1)[-1]) for issue in e.issues)
        raise KseqError(f"{config_path}: not a valid kseq BERT: {issues}") from None


@contextlib.contextmanager
def _out_of_memory_as_error(config_path: Path):
    """Memory exhaustion the size estimate did not foresee: a KseqError, not a crash."""
    try:
        yield
    except Exception as e:
        if not isinstance(e, MemoryError) and type(e).__name__ != "ResourceExhaustedError":
            raise
        raise KseqError(
            f"{config_path}: ran out of memory while importing ({type(e).__name__}); "
            "free memory or import on a larger machine"
        ) from None


# ---- import ------------------------------------------------------------------------------------


def _weights_file(directory: Path) -> Path:
    weights = directory / "model.safetensors"
    if not weights.is_file():
        other = [p.name for p in directory.glob("*.bin")]
        hint = f" (found {', '.join(other)}; convert it to safetensors)" if other else ""
        raise KseqError(f"{directory}: no model.safetensors{hint}")
    return weights


def _tied_decoders() -> set[str]:
    return {kind.hf_tied_decoder for _, kind in bert_heads.items() if kind.hf_tied_decoder}


def importable_heads() -> list[str]:
    """The head kinds a checkpoint can be imported with: those that map their weights."""
    return [name for name, kind in bert_heads.items() if kind().hf_weights(1, 1) is not None]


def _resolve_head(head: str, index: dict, directory: Path) -> str:
    """`auto`: the head whose marker tensor the checkpoint holds, else the head-less kind."""
    names = importable_heads()
    if head == "auto":
        found = [n for n in names if bert_head(n).hf_marker in index]
        head = found[0] if found else next(n for n in names if bert_head(n).hf_marker is None)
    if head not in names:
        raise KseqError(f"head must be auto, {' or '.join(names)}. Received: head={head!r}")
    marker = bert_head(head).hf_marker
    if marker is not None and marker not in index:
        raise KseqError(f"{directory}: the checkpoint has no {head} head ({marker} is missing)")
    return head


def _check_tied(tensors: dict, head: str, directory: Path) -> None:
    name = bert_head(head).hf_tied_decoder
    decoder = tensors.get(name) if name else None
    word_embeddings = tensors["embeddings.word_embeddings.weight"]
    if decoder is not None and not np.array_equal(decoder, word_embeddings):
        raise KseqError(
            f"{directory}: the {head} decoder is not tied to the word embeddings; "
            "kseq BERT ties them"
        )


def _build(spec, vocab_size: int, head: str, mapping: dict[str, Weight], tensors: dict):

    keras_config = BertConfig.from_spec(spec.model, vocab_size)
    model = build_model(keras_config, head, name="bert")
    variables = {v.path: v for v in model.weights}
    unmapped = sorted(set(variables) - set(mapping))
    if unmapped:  # a kseq variable without a source: a bug in the mapping, never silent
        raise RuntimeError(f"internal: no checkpoint tensor for {', '.join(unmapped)}")
    for path, weight in mapping.items():
        value = weight.transform(tensors[weight.hf_name])
        variable = variables[path]
        if tuple(value.shape) != tuple(variable.shape):  # shapes were checked: a mapping bug
            raise RuntimeError(
                f"internal: {weight.hf_name} maps to {value.shape}, not {tuple(variable.shape)}"
            )
        variable.assign(value)
    return model


def import_hf_bert(
    directory: str | Path,
    output: str | Path,
    *,
    head: str = "auto",
    name: str | None = None,
) -> Path:
    """Import a Hugging Face BERT folder as a kseq BERT RUN_DIR at `output`; returns its path.

    Args:
        directory: folder with config.json, model.safetensors, vocab.txt and (optionally)
            tokenizer_config.json.
        output: the RUN_DIR to write (replaced atomically if it exists).
        head: "auto" (masked_lm when the checkpoint has `cls.predictions.*`, else none),
            "none" or "masked_lm".
        name: the spec's `name`; defaults to the folder's name.

    Raises:
        KseqError: a file is missing or malformed, config.json has a bad or unsupported
            field, the model would not fit in memory, or a tensor is missing, has an
            unexpected dtype or shape, or is not finite.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise KseqError(f"{directory}: not a directory")
    config_path = directory / "config.json"
    config = _read_json(config_path)
    weights = _weights_file(directory)
    arch = architecture(config, config_path)
    header = read_safetensors_header(weights)
    index = tensor_index(header, weights)
    head = _resolve_head(head, index, directory)
    check_fits_in_memory(
        arch, bert_head(head).takes_mask_positions, available_memory(), config_path
    )
    mapping = weight_map(arch, head)
    expected = _expected_shapes(mapping, arch, head, index)
    _check_entries(expected, index, header, weights)
    _check_layer_count(index, arch["num_layers"], weights)
    tokenizer = _tokenizer(directory, arch)
    spec = _spec(
        {
            "name": name or directory.resolve().name or "imported-bert",
            "model": {"type": "bert", **arch, "head": {"type": head}},
            "data": {
                "tokenizer": {
                    "lowercase": tokenizer.lowercase,
                    "strip_accents": tokenizer.strip_accents,
                }
            },
        },
        config_path,
    )
    with _out_of_memory_as_error(config_path):
        tensors = _load_tensors(weights, {key: index[key] for key in expected})
        _check_finite(tensors, index, weights)
        _check_tied(tensors, head, directory)
        model = _build(spec, tokenizer.vocab_size, head, mapping, tensors)
        used = {weight.hf_name for weight in mapping.values()}
        report = {
            "source": str(directory.resolve()),
            "head": head,
            "architecture": arch,
            "tensors_imported": len(used),
            # Tied output matrices are checked against the word embeddings, not copied.
            "tensors_ignored": sorted(set(index) - used - _tied_decoders()),
        }
        return _write_run(Path(output), model, spec, tokenizer, report)


def _write_run(output: Path, model, spec, tokenizer, report: dict) -> Path:
    import keras

    with atomic_directory(output) as staging:
        model.save(staging / MODEL_FILE)
        atomic_write_text(staging / SPEC_FILE, dump_spec(spec))
        tokenizer.save(staging / ASSETS_DIR)
        report = {**report, "keras_version": keras.__version__}
        atomic_write_text(staging / "import.json", json.dumps(report, indent=2) + "\n")
    return output
