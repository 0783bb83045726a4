"""Transformer seq2seq: teacher forcing == cached steps, masking, saving, the example spec's export.

Every dimension differs (hidden 12, 3 heads of 4, feed-forward 10, 2 encoder and 3 decoder
layers, source vocabulary 11, target vocabulary 13, source length 5, target length 4, batch 3,
source positions 9, target positions 6) so a transposed weight or a wrong axis cannot pass by
accident.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from helpers import SPECS
from tflite_helpers import constant_shapes, gather_param_ranks

import kseq
from kseq.decoding import beam_search, greedy
from kseq.export.compiled_model import load_compiled_model, run_compiled
from kseq.export.tflite_inspect import op_summary
from kseq.models.seq2seq.transformer.graph import TransformerSeq2SeqGraph
from kseq.models.seq2seq.transformer.layers import PositionTable
from kseq.models.seq2seq.transformer.network import build_transformer_seq2seq
from kseq.models.seq2seq.transformer.spec import TransformerSeq2SeqSpec

SOURCE_VOCAB, TARGET_VOCAB, SOURCE_POSITIONS, TARGET_POSITIONS = 11, 13, 9, 6
SOURCE = np.array([[4, 5, 6, 7, 8], [9, 4, 10, 0, 0], [5, 0, 0, 0, 0]], "int32")  # (3, 5)
TARGET_IN = np.array([[2, 6, 7, 8], [2, 11, 0, 0], [2, 12, 4, 0]], "int32")  # (3, 4)
INPUTS = {"source": SOURCE, "target_in": TARGET_IN}

# name -> (norm_first, positions, tie_output, shared_embeddings, dropout). Dropout 0 takes
# MultiHeadAttention's fused `dot_product_attention` path, dropout > 0 its explicit softmax.
CONFIGS = {
    "preln-sinusoidal-untied": (True, "sinusoidal", False, False, 0.1),
    "preln-learned-tied-nodropout": (True, "learned", True, False, 0.0),
    "postln-sinusoidal-tied": (False, "sinusoidal", True, False, 0.1),
    "postln-learned-untied-nodropout": (False, "learned", False, False, 0.0),
    "preln-sinusoidal-shared-tied": (True, "sinusoidal", True, True, 0.1),
}


def make_spec(config, dropout=None, **overrides):
    norm_first, positions, tie, shared, default_dropout = config
    return TransformerSeq2SeqSpec(
        hidden_size=12,
        num_heads=3,
        intermediate_size=10,
        encoder_layers=2,
        decoder_layers=3,
        dropout=default_dropout if dropout is None else dropout,
        positions=positions,
        norm_first=norm_first,
        tie_output=tie,
        shared_embeddings=shared,
        **overrides,
    )


def build(config, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    vocab = TARGET_VOCAB if config[3] else SOURCE_VOCAB
    return build_transformer_seq2seq(
        make_spec(config, **kwargs), vocab, TARGET_VOCAB, SOURCE_POSITIONS, TARGET_POSITIONS
    )


@pytest.fixture(scope="module", params=list(CONFIGS))
def built(request):
    config = CONFIGS[request.param]
    model = build(config)
    return config, model, TransformerSeq2SeqGraph(model)


def step_by_step(graph, source, target_in):
    """Logits (B, T, V) and attention (B, T, S) from `graph.step`, one target position at a time."""
    encoded = graph.encode(source)
    state = graph.initial_state(encoded)
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    logits, attention = [], []
    for t in range(target_in.shape[1]):
        step_logits, state, weights = graph.step(tf.constant(target_in[:, t]), state, encoded)
        assert {k: tuple(v.shape) for k, v in state.items()} == shapes  # fixed loop state
        logits.append(step_logits.numpy())
        attention.append(weights.numpy())
    np.testing.assert_array_equal(state["position"].numpy(), [target_in.shape[1]] * len(source))
    return np.stack(logits, 1), np.stack(attention, 1)


def test_model_interface(built):
    config, model, graph = built
    assert [i.name for i in model.inputs] == ["source", "target_in"]
    names = {layer.name for layer in model.layers}
    assert {"source_embedding", "source_positions", "target_positions"} <= names
    assert {"encoder_layer_0", "encoder_layer_1", "decoder_layer_2"} <= names
    assert ("target_embedding" in names) is not config[3]
    assert ("output_projection" in names) is not config[2]
    assert ("decoder_norm" in names) is config[0]
    logits = model(INPUTS)
    assert logits.shape == (3, 4, TARGET_VOCAB)
    assert logits.dtype == "float32"
    assert graph.vocab_size == TARGET_VOCAB
    assert graph.cache_length == TARGET_POSITIONS
    encoded = graph.encode(SOURCE)
    assert encoded["cross_key_2"].shape == (3, 5, 3, 4)
    assert graph.initial_state(encoded)["self_value_2"].shape == (3, TARGET_POSITIONS, 3, 4)


def test_teacher_forcing_matches_step_by_step(built):
    _, model, graph = built
    logits = model(INPUTS).numpy()
    step_logits, step_attention = step_by_step(graph, SOURCE, TARGET_IN)
    np.testing.assert_allclose(step_logits, logits, rtol=0, atol=1e-5)

    forced_logits, forced_attention = graph.teacher_forced(SOURCE, TARGET_IN)
    np.testing.assert_allclose(forced_logits.numpy(), logits, rtol=0, atol=1e-6)
    np.testing.assert_allclose(forced_attention.numpy(), step_attention, rtol=0, atol=1e-6)

    padded = np.broadcast_to((SOURCE == 0)[:, None, :], step_attention.shape)
    for attention in (step_attention, forced_attention.numpy()):
        assert np.all(attention[padded] == 0.0)  # exactly zero, not just small
        np.testing.assert_allclose(attention.sum(-1), 1.0, rtol=0, atol=1e-6)


def test_cross_attention_is_the_last_layer_average_over_heads(built):
    # Reference: the last decoder layer's own MultiHeadAttention call on its hidden inputs.
    _, model, graph = built
    layer = model.get_layer("decoder_layer_2")
    hidden = keras.Model(model.inputs, model.get_layer("decoder_layer_1").output)(INPUTS)
    memory = graph.encode(SOURCE)["memory"]
    causal = np.tril(np.ones((4, 4), bool))[None]  # (1, T, T)
    if layer.norm_first:
        normed = layer.self_attention_layer_norm(hidden)
        hidden = hidden + layer.self_attention(normed, normed, attention_mask=causal)
        query = layer.cross_attention_layer_norm(hidden)
    else:
        attended = layer.self_attention(hidden, hidden, attention_mask=causal)
        query = layer.self_attention_layer_norm(hidden + attended)
    _, scores = layer.cross_attention(
        query, memory, attention_mask=(SOURCE != 0)[:, None, :], return_attention_scores=True
    )  # (B, N, T, S)
    _, attention = graph.teacher_forced(SOURCE, TARGET_IN)
    np.testing.assert_allclose(attention.numpy(), scores.numpy().mean(1), rtol=0, atol=1e-6)


def test_padding_invariance(built):
    _, model, graph = built
    extra = np.pad(SOURCE, [(0, 0), (0, 3)])  # 3 more padding columns (8 <= 9 positions)
    logits = model(INPUTS).numpy()
    padded_logits = model({"source": extra, "target_in": TARGET_IN}).numpy()
    # Not bitwise: a longer key axis changes the reduction order of the attention matmuls and
    # softmax sums (measured: ≤ 1.2e-6 on logits up to 2.9, a few float32 ulps), so the bound
    # is 1e-6 relative to the largest logit.
    scale = max(1.0, float(np.abs(logits).max()))
    np.testing.assert_allclose(padded_logits, logits, rtol=0, atol=1e-6 * scale)

    short = greedy(graph, SOURCE, max_length=5)
    long = greedy(graph, extra, max_length=5)
    np.testing.assert_array_equal(long["target_ids"], short["target_ids"])
    np.testing.assert_allclose(long["attention"][..., :5], short["attention"], rtol=0, atol=1e-6)
    assert np.all(long["attention"].numpy()[..., 5:] == 0.0)

    # A row decodes the same alone as in a batch with longer rows.
    alone = greedy(graph, SOURCE[2:, :1], max_length=5)["target_ids"]
    np.testing.assert_array_equal(alone, short["target_ids"][2:])


def test_causal_future_tokens_do_not_change_earlier_logits(built):
    _, model, graph = built
    changed = TARGET_IN.copy()
    changed[:, 2] = [9, 10, 1]
    logits = model(INPUTS).numpy()
    other = model({"source": SOURCE, "target_in": changed}).numpy()
    np.testing.assert_allclose(other[:, :2], logits[:, :2], rtol=0, atol=1e-6)
    assert np.abs(other[:, 2:] - logits[:, 2:]).max() > 1e-3  # later positions do see it
    forced, _ = graph.teacher_forced(SOURCE, changed)
    np.testing.assert_allclose(forced.numpy()[:, :2], logits[:, :2], rtol=0, atol=1e-6)


def test_empty_source_row(built):
    # An all-padding source (an empty line) gives finite logits and all-zero attention.
    _, _, graph = built
    source = SOURCE.copy()
    source[1] = 0
    logits, attention = graph.teacher_forced(source, TARGET_IN)
    assert np.all(np.isfinite(logits.numpy()))
    assert np.all(attention.numpy()[1] == 0.0)
    result = greedy(graph, source, max_length=4)
    assert np.all(result["attention"].numpy()[1] == 0.0)


def test_beam_width_one_is_greedy_and_beams_are_ranked(built):
    _, _, graph = built
    ids = greedy(graph, SOURCE, max_length=5)["target_ids"].numpy()
    beam = beam_search(graph, SOURCE, max_length=5, beam_width=1, length_penalty=0.0)
    np.testing.assert_array_equal(beam["target_ids"].numpy()[:, 0], ids)
    beam = beam_search(graph, SOURCE, max_length=5, beam_width=3, n_best=3)
    scores = beam["scores"].numpy()
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_config_round_trip(built):
    _, model, _ = built
    for name in ("source_embedding", "target_positions"):
        layer = model.get_layer(name)
        config = layer.get_config()
        assert layer.__class__.from_config(config).get_config() == config
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone(INPUTS).numpy(), model(INPUTS).numpy())


@pytest.mark.parametrize(
    "name", ["preln-sinusoidal-shared-tied", "postln-learned-untied-nodropout"]
)
def test_keras_save_load(tmp_path, name):
    model = build(CONFIGS[name], seed=3)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded(INPUTS).numpy(), model(INPUTS).numpy())
    graph, reloaded = TransformerSeq2SeqGraph(model), TransformerSeq2SeqGraph(loaded)
    np.testing.assert_array_equal(
        greedy(reloaded, SOURCE, 5)["target_ids"], greedy(graph, SOURCE, 5)["target_ids"]
    )
    np.testing.assert_array_equal(
        step_by_step(reloaded, SOURCE, TARGET_IN)[0], step_by_step(graph, SOURCE, TARGET_IN)[0]
    )


def test_tied_output_is_the_transposed_embedding():
    model = build(CONFIGS["preln-learned-tied-nodropout"])
    embedding = model.get_layer("target_embedding")
    table, bias = embedding.embeddings.numpy(), embedding.bias.numpy()
    assert table.shape == (TARGET_VOCAB, 12) and bias.shape == (TARGET_VOCAB,)
    embedding.bias.assign(np.linspace(-1, 1, TARGET_VOCAB).astype("float32"))
    hidden = keras.Model(model.inputs, model.get_layer("decoder_norm").output)(INPUTS).numpy()
    expected = hidden @ table.T + embedding.bias.numpy()
    np.testing.assert_allclose(model(INPUTS).numpy(), expected, rtol=0, atol=1e-5)
    # Embedding rows are the same table, scaled by sqrt(D).
    np.testing.assert_allclose(embedding(TARGET_IN).numpy(), table[TARGET_IN] * np.sqrt(12), 1e-6)
    shared = build(CONFIGS["preln-sinusoidal-shared-tied"])
    assert len(shared.get_layer("source_embedding").weights) == 2  # table + output bias
    with pytest.raises(ValueError, match="shared_embeddings"):
        build_transformer_seq2seq(make_spec(CONFIGS["preln-sinusoidal-shared-tied"]), 11, 13, 9, 6)


def test_dropout_only_in_training():
    model = build(CONFIGS["postln-learned-untied-nodropout"], dropout=0.3)
    inference = model(INPUTS).numpy()
    np.testing.assert_array_equal(model(INPUTS, training=False).numpy(), inference)
    assert not np.allclose(model(INPUTS, training=True).numpy(), inference)


def test_mixed_precision_decoding():
    # Training under a mixed policy decodes with the in-memory model: the learned position
    # table (read outside a layer call) and the caches must follow the compute dtype.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build(CONFIGS["preln-learned-tied-nodropout"])
        graph = TransformerSeq2SeqGraph(model)
        logits = model(INPUTS).numpy()
        assert graph.initial_state(graph.encode(SOURCE))["self_key_0"].dtype == "bfloat16"
        step_logits, _ = step_by_step(graph, SOURCE, TARGET_IN)
        np.testing.assert_allclose(step_logits, logits, rtol=0, atol=0.1)
        assert greedy(graph, SOURCE, 4)["target_ids"].shape == (3, 4)
    finally:
        keras.config.set_dtype_policy(previous)


def test_spec_errors():
    base = {"model": {"type": "transformer_seq2seq", "hidden_size": 30, "num_heads": 4}}
    with pytest.raises(kseq.KseqError, match="model.num_heads: does not divide hidden_size"):
        kseq.load_spec(base)
    with pytest.raises(kseq.KseqError, match="model.shared_embeddings: needs one vocabulary"):
        kseq.load_spec(
            {
                "model": {"type": "transformer_seq2seq", "shared_embeddings": True},
                "data": {"tokenizer": {"shared": False}},
            }
        )
    with pytest.raises(kseq.KseqError, match="model.max_length: shorter than the data"):
        kseq.load_spec(
            {
                "model": {"type": "transformer_seq2seq", "max_length": 40},
                "data": {"max_source_length": 64},
            }
        )
    spec = kseq.load_spec(
        {
            "model": {"type": "transformer_seq2seq"},
            "data": {"max_source_length": 30, "max_target_length": 20},
        }
    )
    assert spec.model.target_positions(spec.data) == 21
    assert spec.model.source_positions(spec.data) == 30


# A narrower model with one encoder layer tests the same paths (the decoder keeps two layers,
# so per-layer caches are still told apart) in less conversion time.
TINY = [
    "model.hidden_size=32",
    "model.intermediate_size=64",
    "model.encoder_layers=1",
    "train.epochs=1",
    "train.steps_per_epoch=3",
    "train.batch_size=16",
    "data.synthetic.train_size=300",
    "data.synthetic.validation_size=12",
    "export.parity_samples=12",
]


def test_example_spec_trains_and_exports_within_the_gate(tmp_path):
    spec = kseq.load_spec(SPECS / "transformer_seq2seq.yaml", TINY)
    run_dir = kseq.train(spec, output=tmp_path / "run")
    _, family, model = kseq.load_run(run_dir)
    assert isinstance(family.graph(model), TransformerSeq2SeqGraph)

    report = kseq.export(run_dir, format="tflite")
    generate = report["parity"]["generate"]
    assert generate["outputs"]["target_ids"]["equal_fraction"] == 1.0
    assert generate["metric"]["sequences_identical_to_keras"] == 1.0
    assert sorted(generate["batch_sizes"]) == [1, 12]
    step = report["parity"]["decode_step"]["outputs"]
    assert step["logits"]["max_abs_diff"] < 1e-4
    assert step["state_position"]["equal_fraction"] == 1.0
    # char on both sides: code points in and out too; every signature also on CompiledModel.
    assert set(report["signatures"]) == {"generate", "encode", "decode_step", "generate_codepoints"}
    for name in ("generate", "generate_codepoints"):
        outputs = report["parity_compiled_model"][name]["outputs"]
        assert all(f["equal_fraction"] == 1.0 for f in outputs.values())
    assert "WHILE" in report["ops"]
    assert not any(op.startswith("Flex") for op in report["ops"])

    # The file itself on the LiteRT interpreter, outside the gate: held-out sources of mixed
    # lengths in one batch give Keras's greedy ids.
    spec = kseq.load(run_dir).spec  # `auto` lengths resolved
    data = family.load_data(spec, run_dir=run_dir)
    sources = data.samples["source_ids"][:6].astype(np.int32)
    assert len(set((sources > 0).sum(axis=1).tolist())) > 1  # mixed lengths, padded
    runner = Interpreter(model_path=report["path"]).get_signature_runner("generate")
    ids = runner(source_ids=sources)["target_ids"]
    expected = [
        family.best_ids(r) for r in family.decode_ids(model, spec, sources.tolist(), "greedy")
    ]
    assert [[t for t in row if t] for row in ids.tolist()] == expected
    assert sum(map(len, expected)) > 0

    # The shared, tied table is stored once: the gather and the output projection read the
    # same float constant (no transposed second copy).
    table = model.get_layer("source_embedding").embeddings.shape
    tables = [c for c in constant_shapes(Path(report["path"]).read_bytes()) if c[0] == table]
    assert tables == [(table, "FLOAT32")]

    report = kseq.export(run_dir, format="saved_model")
    assert report["parity"]["generate"]["outputs"]["target_ids"]["equal_fraction"] == 1.0
    assert report["parity"]["translate"]["outputs"]["translation"]["equal_fraction"] == 1.0

    rows = kseq.predict(run_dir, ["3rd of March 1999", ""])
    assert rows[1]["source_ids"] == []
    metrics = kseq.evaluate(run_dir)
    assert set(metrics) >= {"loss", "token_accuracy", "exact_match", "bleu"}
    source, output, weights = family.attention(model, spec, run_dir, "3 March 1999")
    assert weights.shape == (len(output), len(source))


def test_beam_file_gathers_rows_in_two_dimensions_and_repeats_on_compiled_model(tmp_path):
    """Beam search reorders the 4-D key/value caches every step. Gathered as 4-D tensors,
    CompiledModel (CPU) gave a trained date model's beam ids right on the first call and wrong
    on later calls of the same input (3 of 1,000 rows): the file gathers 2-D views instead."""
    spec = kseq.load_spec(SPECS / "transformer_seq2seq.yaml", TINY)
    run_dir = kseq.train(spec, output=tmp_path / "run")
    report = kseq.export(
        run_dir, format="tflite", overrides=["decode.strategy=beam", "decode.beam_width=3"]
    )
    outputs = report["parity_compiled_model"]["generate"]["outputs"]
    assert outputs["target_ids"]["equal_fraction"] == 1.0
    model_bytes = Path(report["path"]).read_bytes()
    ranks = gather_param_ranks(model_bytes)
    assert ranks and max(ranks) <= 2, ranks

    spec, family, _ = kseq.load_run(run_dir)
    sources = family.load_data(spec, run_dir=run_dir).samples["source_ids"].astype(np.int32)
    expected = Interpreter(model_content=model_bytes).get_signature_runner("generate")(
        source_ids=sources
    )["target_ids"]
    compiled = load_compiled_model(model_bytes)
    for _ in range(2):  # the same inputs again: the same ids
        for row in range(len(sources)):
            got = run_compiled(
                compiled,
                "generate",
                {"source_ids": sources[row : row + 1]},
                {"target_ids": expected[row : row + 1]},
            )["target_ids"]
            np.testing.assert_array_equal(got, expected[row : row + 1])


def test_sinusoidal_positions_are_a_constant_table_in_tflite():
    """The first T rows are the sinusoids (numpy reference); in a TFLite file they are one folded
    constant, no SIN op, so an int8 file stores them instead of taking sin of int8 angles."""
    table = PositionTable(9, "sinusoidal")
    got = np.asarray(table(np.zeros((2, 5, 6), "float32")))
    position, channel = np.arange(5)[:, None], np.arange(6)[None, :]
    angle = position / 10000.0 ** ((channel // 2 * 2) / 6)
    expected = np.where(channel % 2 == 0, np.sin(angle), np.cos(angle))
    np.testing.assert_allclose(got, np.broadcast_to(expected, (2, 5, 6)), atol=1e-6)

    encode = tf.function(
        lambda x: table(x), input_signature=[tf.TensorSpec((None, None, 6), tf.float32)]
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [encode.get_concrete_function()], table
    )
    ops = op_summary(converter.convert())["ops"]
    assert "SIN" not in ops, ops
