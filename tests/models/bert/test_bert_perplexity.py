"""Masked-LM perplexity is exp of the mean cross-entropy over the masked tokens, in numpy."""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf
from helpers import FAST, SPECS

import kseq
from kseq.models.family import family_for
from kseq.train.schedules import resolve_schedule


def test_masked_lm_perplexity_equals_numpy():
    spec = kseq.load_spec(SPECS / "bert_masked_lm.yaml", [*FAST, "train.verbose=0"])
    family = family_for(spec)
    data = family.load_data(spec)
    model = family.build(spec, data)
    family.compile(model, resolve_schedule(spec, data))
    inputs, labels = next(iter(data.validation))
    one_batch = dataclasses.replace(data, validation=tf.data.Dataset.from_tensors((inputs, labels)))
    metrics = family.evaluate(model, spec, one_batch)

    outputs = model(inputs, training=False)
    if isinstance(outputs, dict):
        (name,) = outputs
        logits, labels = outputs[name], labels[name]
    else:
        logits = outputs
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels)
    scored = labels >= 0
    assert 0 < scored.sum() < labels.size  # some tokens are masked, not all
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probs, np.where(scored, labels, 0)[..., None], -1)[..., 0]
    mean_loss = -picked[scored].mean()
    np.testing.assert_allclose(metrics["loss"], mean_loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["perplexity"], np.exp(mean_loss), rtol=1e-5)
    # An untrained model is near uniform over the vocabulary: perplexity of the order of V.
    assert 0.2 * logits.shape[-1] < metrics["perplexity"] < 5 * logits.shape[-1]
