"""Shared helpers of the BERT tests: an independent numpy BERT, HF checkpoints, TFLite runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from helpers import BERT_VOCAB
from tflite_helpers import convert_builtins, run_tflite  # noqa: F401  (re-exported)

ERF = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + ERF(x / math.sqrt(2.0)))


def layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def linear(x, tensors, name):
    """HF nn.Linear: weight (out, in)."""
    return x @ tensors[f"{name}.weight"].T + tensors[f"{name}.bias"]


def attention(x, t, prefix, heads, mask):
    b, s, h = x.shape
    size = h // heads

    def split(y):
        return y.reshape(b, s, heads, size).transpose(0, 2, 1, 3)  # (B, N, S, d)

    q = split(linear(x, t, f"{prefix}.query"))
    k = split(linear(x, t, f"{prefix}.key"))
    v = split(linear(x, t, f"{prefix}.value"))
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size)  # (B, N, S, S)
    scores = np.where(mask[:, None, None, :] > 0, scores, -1e30)
    scores = scores - scores.max(-1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(-1, keepdims=True)
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(b, s, h)
    return context


def encoder_layer(x, t, i, heads, mask, eps, act=gelu):
    """Post-LN BERT layer i from HF-named tensors, in float64."""
    p = f"encoder.layer.{i}"
    context = attention(x, t, f"{p}.attention.self", heads, mask)
    h = layer_norm(
        x + linear(context, t, f"{p}.attention.output.dense"),
        t[f"{p}.attention.output.LayerNorm.weight"],
        t[f"{p}.attention.output.LayerNorm.bias"],
        eps,
    )
    inner = act(linear(h, t, f"{p}.intermediate.dense"))
    return layer_norm(
        h + linear(inner, t, f"{p}.output.dense"),
        t[f"{p}.output.LayerNorm.weight"],
        t[f"{p}.output.LayerNorm.bias"],
        eps,
    )


def numpy_bert(tensors, config, token_ids, segment_ids, padding_mask):
    """Reference forward pass of the HF BERT architecture (BertModel), float64.

    Returns (sequence_output (B, S, H), pooled_output (B, H)).
    """
    t = {k.removeprefix("bert."): np.asarray(v, np.float64) for k, v in tensors.items()}
    eps = config["layer_norm_eps"]
    s = token_ids.shape[1]
    x = (
        t["embeddings.word_embeddings.weight"][token_ids]
        + t["embeddings.token_type_embeddings.weight"][segment_ids]
        + t["embeddings.position_embeddings.weight"][np.arange(s)][None]
    )
    x = layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], eps)
    for i in range(config["num_hidden_layers"]):
        x = encoder_layer(x, t, i, config["num_attention_heads"], padding_mask, eps)
    pooled = np.tanh(linear(x[:, 0], t, "pooler.dense")) if "pooler.dense.weight" in t else None
    return x, pooled


def numpy_mlm(tensors, config, sequence, positions):
    """HF BertOnlyMLMHead on gathered positions: (B, P, V) logits."""
    t = {k: np.asarray(v, np.float64) for k, v in tensors.items()}
    gathered = np.take_along_axis(sequence, positions[..., None], axis=1)
    h = gelu(linear(gathered, t, "cls.predictions.transform.dense"))
    h = layer_norm(
        h,
        t["cls.predictions.transform.LayerNorm.weight"],
        t["cls.predictions.transform.LayerNorm.bias"],
        config["layer_norm_eps"],
    )
    return h @ t["bert.embeddings.word_embeddings.weight"].T + t["cls.predictions.bias"]


HF_CONFIG = {
    "model_type": "bert",
    "vocab_size": 40,
    "hidden_size": 12,
    "num_hidden_layers": 2,
    "num_attention_heads": 3,
    "intermediate_size": 20,
    "max_position_embeddings": 24,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-7,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "initializer_range": 0.02,
}


def random_hf_tensors(config, seed=0, mlm=True, scale=0.5):
    """Random tensors with the real HF names and layouts (Linear weights are (out, in))."""
    rng = np.random.default_rng(seed)
    h, f, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]

    def w(*shape):
        return (rng.normal(size=shape) * scale).astype(np.float32)

    t = {
        "bert.embeddings.word_embeddings.weight": w(v, h),
        "bert.embeddings.position_embeddings.weight": w(config["max_position_embeddings"], h),
        "bert.embeddings.token_type_embeddings.weight": w(config["type_vocab_size"], h),
        "bert.embeddings.LayerNorm.weight": 1 + w(h),
        "bert.embeddings.LayerNorm.bias": w(h),
        "bert.pooler.dense.weight": w(h, h),
        "bert.pooler.dense.bias": w(h),
    }
    for i in range(config["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}"
        for name in ("query", "key", "value"):
            t[f"{p}.attention.self.{name}.weight"] = w(h, h)
            t[f"{p}.attention.self.{name}.bias"] = w(h)
        t[f"{p}.attention.output.dense.weight"] = w(h, h)
        t[f"{p}.attention.output.dense.bias"] = w(h)
        t[f"{p}.attention.output.LayerNorm.weight"] = 1 + w(h)
        t[f"{p}.attention.output.LayerNorm.bias"] = w(h)
        t[f"{p}.intermediate.dense.weight"] = w(f, h)
        t[f"{p}.intermediate.dense.bias"] = w(f)
        t[f"{p}.output.dense.weight"] = w(h, f)
        t[f"{p}.output.dense.bias"] = w(h)
        t[f"{p}.output.LayerNorm.weight"] = 1 + w(h)
        t[f"{p}.output.LayerNorm.bias"] = w(h)
    if mlm:
        t["cls.predictions.transform.dense.weight"] = w(h, h)
        t["cls.predictions.transform.dense.bias"] = w(h)
        t["cls.predictions.transform.LayerNorm.weight"] = 1 + w(h)
        t["cls.predictions.transform.LayerNorm.bias"] = w(h)
        t["cls.predictions.bias"] = w(v)
        t["cls.predictions.decoder.weight"] = t["bert.embeddings.word_embeddings.weight"]
    return t


VOCAB = BERT_VOCAB


def write_hf_checkpoint(directory, config=None, tensors=None, vocab=None, lowercase=True):
    """A Hugging Face BERT folder: config.json, model.safetensors, vocab.txt, tokenizer_config."""
    from safetensors.numpy import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = dict(config or HF_CONFIG)
    tensors = tensors if tensors is not None else random_hf_tensors(config)
    (directory / "config.json").write_text(json.dumps(config))
    # safetensors refuses shared memory: store a copy of tied tensors
    save_file({k: np.ascontiguousarray(v).copy() for k, v in tensors.items()},
              str(directory / "model.safetensors"))  # fmt: skip
    vocab = vocab or VOCAB
    (directory / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    (directory / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": lowercase}))
    return directory
