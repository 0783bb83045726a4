"""Dynamic-range quantisation of a BERT encoder big enough for the ratio to mean something."""

from __future__ import annotations

from bert_helpers import HF_CONFIG, random_hf_tensors, write_hf_checkpoint

import kseq
from kseq.importers import import_hf_bert

CONFIG = {
    **HF_CONFIG,
    "vocab_size": 3000,
    "hidden_size": 192,
    "num_attention_heads": 4,
    "intermediate_size": 768,
    "max_position_embeddings": 64,
    "layer_norm_eps": 1e-12,
}  # about 1.6 M weights, 6 MB in float32


def test_dynamic_range_is_3_5x_smaller_with_cosine_above_0_99(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += [f"w{i}" for i in range(CONFIG["vocab_size"] - len(vocab))]
    tensors = random_hf_tensors(CONFIG, seed=0, mlm=False, scale=0.02)  # BERT's init scale
    directory = write_hf_checkpoint(tmp_path / "hf", config=CONFIG, tensors=tensors, vocab=vocab)
    run = import_hf_bert(directory, tmp_path / "run")
    report = kseq.export(
        run,
        format="tflite",
        quantize="dynamic",
        overrides=["export.parity_samples=8", "data.synthetic.validation_size=8"],
    )
    assert report["float32_size_bytes"] > 5_000_000
    assert report["float32_size_bytes"] / report["size_bytes"] >= 3.5
    outputs = report["parity"]["serving_default"]["outputs"]
    assert outputs["sequence_output"]["cosine_similarity"] >= 0.99
    assert outputs["pooled_output"]["cosine_similarity"] >= 0.99
    assert report["parity"]["serving_default"]["metric"]["sequence_output_cosine"] >= 0.99
    assert "int8" in report["op_input_types"]["FULLY_CONNECTED"]
