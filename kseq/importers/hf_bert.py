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
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from kseq.errors import KseqError

ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
    "gelu_fast": "gelu_approximate",
    "relu": "relu",
}


def _read_json(path: Path, required: bool = True) -> dict:
    if not path.is_file():
        if required:
            raise KseqError(f"{path.parent}: no {path.name} (expected a Hugging Face BERT folder)")
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KseqError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise KseqError(f"{path}: expected a JSON object")
    return value


def read_checkpoint(directory: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(config, tensors) of a HF BERT folder; tensor names without the `bert.` prefix."""
    directory = Path(directory)
    if not directory.is_dir():
        raise KseqError(f"{directory}: not a directory")
    config = _read_json(directory / "config.json")
    weights = directory / "model.safetensors"
    if not weights.is_file():
        other = [p.name for p in directory.glob("*.bin")]
        hint = f" (found {', '.join(other)}; convert it to safetensors)" if other else ""
        raise KseqError(f"{directory}: no model.safetensors{hint}")
    from safetensors.numpy import load_file

    try:
        raw = load_file(str(weights))
    except Exception as e:  # safetensors raises its own error types
        raise KseqError(f"{weights}: cannot read safetensors: {e}") from None
    tensors = {}
    for name, value in raw.items():
        key = name.removeprefix("bert.")
        key = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", key)
        key = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", key)
        tensors[key] = np.asarray(value, np.float32)
    return config, tensors


def _architecture(config: dict, path: Path) -> dict:
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
    try:
        arch = {
            "vocab_size": int(config["vocab_size"]),
            "hidden_size": int(config["hidden_size"]),
            "num_layers": int(config["num_hidden_layers"]),
            "num_heads": int(config["num_attention_heads"]),
            "intermediate_size": int(config["intermediate_size"]),
            "max_sequence_length": int(config.get("max_position_embeddings", 512)),
            "num_segments": int(config.get("type_vocab_size", 2)),
            "layer_norm_epsilon": float(config.get("layer_norm_eps", 1e-12)),
            "activation": ACTIVATIONS[activation],
            "dropout": float(config.get("hidden_dropout_prob", 0.1)),
            "initializer_range": float(config.get("initializer_range", 0.02)),
        }
    except KeyError as e:
        raise KseqError(f"{path}: missing {e.args[0]!r}") from None
    attention_dropout = config.get("attention_probs_dropout_prob")
    if attention_dropout is not None and float(attention_dropout) != arch["dropout"]:
        arch["attention_dropout"] = float(attention_dropout)
    if arch["hidden_size"] % arch["num_heads"]:
        raise KseqError(f"{path}: hidden_size is not divisible by num_attention_heads")
    return arch


def weight_map(arch: dict, head: str) -> dict[str, tuple[str, object]]:
    """kseq variable path -> (HF tensor name, transform of the HF array)."""
    hidden, heads = arch["hidden_size"], arch["num_heads"]
    size = hidden // heads

    def transposed(w):
        return w.T

    def heads_in(w):  # (out=H, in=H) -> (H_in, heads, size)
        return w.T.reshape(hidden, heads, size)

    def heads_bias(b):
        return b.reshape(heads, size)

    def heads_out(w):  # (out=H, in=H) -> (heads, size, H_out)
        return w.T.reshape(heads, size, hidden)

    def same(w):
        return w

    out = {
        "token_embedding/embeddings": ("embeddings.word_embeddings.weight", same),
        "segment_embedding/embeddings": ("embeddings.token_type_embeddings.weight", same),
        "position_embedding/embeddings": ("embeddings.position_embeddings.weight", same),
        "embeddings_layer_norm/gamma": ("embeddings.LayerNorm.weight", same),
        "embeddings_layer_norm/beta": ("embeddings.LayerNorm.bias", same),
    }
    for i in range(arch["num_layers"]):
        hf, ks = f"encoder.layer.{i}", f"transformer_layer_{i}"
        for name in ("query", "key", "value"):
            out[f"{ks}/self_attention/{name}/kernel"] = (
                f"{hf}.attention.self.{name}.weight",
                heads_in,
            )
            out[f"{ks}/self_attention/{name}/bias"] = (
                f"{hf}.attention.self.{name}.bias",
                heads_bias,
            )
        out.update(
            {
                f"{ks}/self_attention/attention_output/kernel": (
                    f"{hf}.attention.output.dense.weight",
                    heads_out,
                ),
                f"{ks}/self_attention/attention_output/bias": (
                    f"{hf}.attention.output.dense.bias",
                    same,
                ),
                f"{ks}/self_attention_layer_norm/gamma": (
                    f"{hf}.attention.output.LayerNorm.weight",
                    same,
                ),
                f"{ks}/self_attention_layer_norm/beta": (
                    f"{hf}.attention.output.LayerNorm.bias",
                    same,
                ),
                f"{ks}/intermediate_dense/kernel": (f"{hf}.intermediate.dense.weight", transposed),
                f"{ks}/intermediate_dense/bias": (f"{hf}.intermediate.dense.bias", same),
                f"{ks}/output_dense/kernel": (f"{hf}.output.dense.weight", transposed),
                f"{ks}/output_dense/bias": (f"{hf}.output.dense.bias", same),
                f"{ks}/feedforward_layer_norm/gamma": (f"{hf}.output.LayerNorm.weight", same),
                f"{ks}/feedforward_layer_norm/beta": (f"{hf}.output.LayerNorm.bias", same),
            }
        )
    if head == "none":
        out["pooler/dense/kernel"] = ("pooler.dense.weight", transposed)
        out["pooler/dense/bias"] = ("pooler.dense.bias", same)
    if head == "masked_lm":
        out.update(
            {
                "mlm_transform/dense/kernel": (
                    "cls.predictions.transform.dense.weight",
                    transposed,
                ),
                "mlm_transform/dense/bias": ("cls.predictions.transform.dense.bias", same),
                "mlm_transform/layer_norm/gamma": (
                    "cls.predictions.transform.LayerNorm.weight",
                    same,
                ),
                "mlm_transform/layer_norm/beta": ("cls.predictions.transform.LayerNorm.bias", same),
                "mlm_bias/bias": ("cls.predictions.bias", same),
            }
        )
    return out


def _tokenizer(directory: Path, arch: dict):
    from kseq.data.bert_tokenizer import BertTokenizer, read_vocab

    options = _read_json(directory / "tokenizer_config.json", required=False)
    vocab = read_vocab(directory / "vocab.txt")
    if len(vocab) > arch["vocab_size"]:
        raise KseqError(
            f"{directory / 'vocab.txt'} has {len(vocab)} tokens but config.json's vocab_size is "
            f"{arch['vocab_size']}"
        )
    if options.get("tokenize_chinese_chars", True) is False:
        raise KseqError(f"{directory}: tokenize_chinese_chars=false is not supported")
    lowercase = bool(options.get("do_lower_case", True))
    strip = options.get("strip_accents")
    return BertTokenizer(
        vocab, lowercase=lowercase, strip_accents=None if strip is None else bool(strip)
    )


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
        KseqError: a file is missing or malformed, the architecture is not supported, or a
            tensor is missing or has an unexpected shape.
    """
    import keras

    from kseq.export.atomic import atomic_directory, atomic_write_text
    from kseq.models.bert.network import BertConfig, build_model
    from kseq.spec.load import dump_spec, load_spec
    from kseq.train.run_dir import ASSETS_DIR, MODEL_FILE, SPEC_FILE

    directory = Path(directory)
    config, tensors = read_checkpoint(directory)
    arch = _architecture(config, directory / "config.json")
    has_mlm = "cls.predictions.bias" in tensors
    if head == "auto":
        head = "masked_lm" if has_mlm else "none"
    if head not in ("none", "masked_lm"):
        raise KseqError(f"head must be auto, none or masked_lm. Received: head={head!r}")
    if head == "masked_lm" and not has_mlm:
        raise KseqError(f"{directory}: the checkpoint has no masked-LM head (cls.predictions.*)")
    tokenizer = _tokenizer(directory, arch)

    mapping = weight_map(arch, head)
    missing = sorted({hf for hf, _ in mapping.values() if hf not in tensors})
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise KseqError(f"{directory / 'model.safetensors'}: missing tensor(s) {shown}")
    decoder = tensors.get("cls.predictions.decoder.weight")
    word_embeddings = tensors["embeddings.word_embeddings.weight"]
    if head == "masked_lm" and decoder is not None and not np.array_equal(decoder, word_embeddings):
        raise KseqError(
            f"{directory}: the masked-LM decoder is not tied to the word embeddings; "
            "kseq BERT ties them"
        )

    spec_data = {
        "name": name or directory.resolve().name or "imported-bert",
        "model": {"type": "bert", **arch, "head": {"type": head}},
        "data": {
            "tokenizer": {
                "lowercase": tokenizer.lowercase,
                "strip_accents": tokenizer.strip_accents,
            }
        },
    }
    spec = load_spec(spec_data)
    keras_config = BertConfig.from_spec(spec.model, tokenizer.vocab_size)
    model = build_model(keras_config, head, name="bert")
    variables = {v.path: v for v in model.weights}
    unmapped = sorted(set(variables) - set(mapping))
    if unmapped:  # a kseq variable without a source: a bug in the mapping, never silent
        raise KseqError(f"internal: no checkpoint tensor for {', '.join(unmapped)}")
    for path, (hf_name, transform) in mapping.items():
        value = transform(tensors[hf_name])
        variable = variables[path]
        if tuple(value.shape) != tuple(variable.shape):
            raise KseqError(
                f"{directory / 'model.safetensors'}: tensor {hf_name} has shape "
                f"{tensors[hf_name].shape}; expected one that maps to {tuple(variable.shape)}"
            )
        variable.assign(value)
    used = {hf for hf, _ in mapping.values()}
    ignored = sorted(set(tensors) - used - {"cls.predictions.decoder.weight"})

    output = Path(output)
    with atomic_directory(output) as staging:
        model.save(staging / MODEL_FILE)
        atomic_write_text(staging / SPEC_FILE, dump_spec(spec))
        tokenizer.save(staging / ASSETS_DIR)
        report = {
            "source": str(directory.resolve()),
            "head": head,
            "architecture": arch,
            "tensors_imported": len(used),
            "tensors_ignored": ignored,
            "keras_version": keras.__version__,
        }
        atomic_write_text(staging / "import.json", json.dumps(report, indent=2) + "\n")
    return output
