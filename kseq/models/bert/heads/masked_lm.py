"""Masked-LM pretraining and domain adaptation: the masked tokens predicted."""

from __future__ import annotations

import math

import numpy as np

from kseq.models.bert.head_registry import register_bert_head
from kseq.models.bert.heads.base import BertHead, bert_data, write_lines


@register_bert_head
class MaskedLM(BertHead):
    """Masked-language-model pretraining: the token embedding, transposed, predicts the
    tokens at `mask_positions`."""

    name = "masked_lm"
    layer = "mlm_transform"
    outputs = ("logits",)
    takes_mask_positions = True
    serves_text = False
    synthetic_tasks = ("pretraining", "clinical")
    file_types = (".txt",)
    reads_corpus = True
    hf_marker = "cls.predictions.bias"
    hf_tied_decoder = "cls.predictions.decoder.weight"

    def write_examples(self, examples, path):
        return write_lines(examples, path)

    def hf_weights(self, hidden, vocab):
        mlm = "cls.predictions.transform"
        return {
            "mlm_transform/dense/kernel": (f"{mlm}.dense.weight", True, (hidden, hidden)),
            "mlm_transform/dense/bias": (f"{mlm}.dense.bias", False, (hidden,)),
            "mlm_transform/layer_norm/gamma": (f"{mlm}.LayerNorm.weight", False, (hidden,)),
            "mlm_transform/layer_norm/beta": (f"{mlm}.LayerNorm.bias", False, (hidden,)),
            "mlm_bias/bias": ("cls.predictions.bias", False, (vocab,)),
        }

    def task_metrics(self, model, spec, info, metrics):
        perplexity = math.exp(min(metrics["loss"], 50.0))
        return {"perplexity": float(perplexity), **super().task_metrics(model, spec, info, metrics)}

    def build_outputs(self, encoder, config, num_labels, dropout, init):
        from kseq.models.bert.head_layers import (  # TensorFlow: loaded on use
            MaskedLMTransform,
            OutputBias,
        )

        hidden = MaskedLMTransform(
            activation=config.activation,
            layer_norm_epsilon=config.layer_norm_epsilon,
            kernel_initializer=init(),
            name=self.layer,
        )(encoder["sequence"], encoder["inputs"]["mask_positions"])  # (B, P, H)
        logits = encoder["token_embedding"](hidden, reverse=True)  # (B, P, V), tied weights
        return {"logits": OutputBias(name="mlm_bias")(logits)}

    def encode_texts(self, texts, tokenizer, labels, length):
        """Texts with literal `[MASK]` markers; each marker is one position to predict."""
        from kseq.tokenizers.bert import MASK  # TensorFlow: loaded on use

        rows, positions = [], []
        for text in texts:
            ids = []
            for index, chunk in enumerate(text.split(MASK)):
                if index:
                    ids.append(tokenizer.mask_id)
                ids.extend(tokenizer.encode([chunk])[0])
            ids = [tokenizer.cls_id, *ids[: length - 2], tokenizer.sep_id]
            rows.append((ids, [0] * len(ids)))
            positions.append([i for i, t in enumerate(ids) if t == tokenizer.mask_id] or [0])
        data = bert_data()
        inputs = data.packed_arrays(rows, tokenizer)
        inputs["mask_positions"] = data._pad_rows(positions, max(map(len, positions)), 0)
        return data.Encoded(inputs, {}, [{"count": len(p)} for p in positions])

    def describe(self, outputs, i, part, tokenizer, labels):
        best = np.argmax(outputs["logits"][i], axis=-1)[: part.meta[i]["count"]]
        return {"predictions": [tokenizer.vocab[int(t)] for t in best]}

    def summary(self, item):
        return " ".join(item["predictions"])
