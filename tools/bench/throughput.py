"""Training throughput of kseq models against plain Keras, padding, model FLOP utilisation, latency.

For each example spec (autoencoder_dense; the RNN seq2seq specs with bahdanau, luong general and
no attention; transformer_seq2seq):

- training throughput of kseq's model and of a hand-written plain-Keras model of the same
  architecture and sizes (equal parameter counts), measured in the same run on the same batches,
  alternating rounds, as samples/s (autoencoder) or non-padding tokens/s (seq2seq), and their
  ratio; for seq2seq also end to end, each side with its natural pipeline (kseq's bucketing, the
  twin padding each batch to its longest);
- the fraction of padding tokens per epoch with and without length bucketing (seq2seq);
- model FLOP utilisation: kseq's analytic training FLOPs (3x the forward matmul FLOPs, on the
  padded shapes actually computed) per second, over the fp32 matmul peak measured in the same run;
- batch-1 latency of the exported builtin-only TFLite model against Keras on the same input.

Writes the "throughput" section of docs/benchmarks.md.

    python tools/bench/throughput.py [--rounds 3] [--epochs 4] [--seq2seq-batches 24]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "bench"))
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras_twins import (  # noqa: E402
    padded_batches,
    plain_rnn_seq2seq,
    plain_transformer_seq2seq,
)
from markdown import table, write_section  # noqa: E402

import kseq  # noqa: E402
from kseq.models.family import family_for  # noqa: E402
from kseq.models.seq2seq.rnn.attention_kinds import decoder_attention  # noqa: E402

# ---- machine ---------------------------------------------------------------------------------


def matmul_peak_gflops(n: int = 4096, runs: int = 6) -> float:
    """Best observed fp32 matmul rate through TensorFlow: the machine's practical peak."""
    a = tf.random.normal((n, n), seed=1)
    b = tf.random.normal((n, n), seed=2)
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    matmul(a, b).numpy()  # trace and warm up
    best = math.inf
    for _ in range(runs):
        started = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


# ---- timing ----------------------------------------------------------------------------------


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._started)


def epoch_seconds(models: dict, dataset, epochs: int, rounds: int) -> dict[str, float]:
    """Seconds of each model's fastest epoch on the same dataset. Rounds alternate the models so
    load changes on the machine hit both alike, and the fastest epoch is the one least disturbed
    by other work (on a shared machine the median mostly measures the neighbours). The first
    epoch of each model (tracing) is left out by a warm-up fit."""
    for model in models.values():
        model.fit(dataset, epochs=1, verbose=0)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            timer = EpochTimer()
            model.fit(dataset, epochs=epochs, verbose=0, callbacks=[timer])
            times[name] += timer.seconds
    return {name: min(values) for name, values in times.items()}


def latency_ms(fn, runs: int = 50) -> float:
    """Median wall time of one call, after warm-up calls."""
    for _ in range(5):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e3


def tflite_runner(path: Path, signature: str):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    return interpreter.get_signature_runner(signature)


def exported_run(spec_path: Path, scratch: Path) -> tuple[Path, Path]:
    """A briefly trained RUN_DIR and its float32 TFLite export."""
    overrides = ["train.epochs=1", "train.steps_per_epoch=5", "train.verbose=0"]
    overrides += ["train.tensorboard=false"]
    run_dir = kseq.train(kseq.load_spec(spec_path, overrides), scratch / spec_path.stem)
    report = kseq.export(run_dir, format="tflite", quantize="none")
    return run_dir, Path(report["path"])


# ---- autoencoder -----------------------------------------------------------------------------


def dense_forward_flops(model) -> int:
    """Multiply-adds of every Dense kernel, x2: the forward FLOPs of one sample."""
    return sum(
        2 * math.prod(layer.kernel.shape)
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.Dense)
    )


def plain_autoencoder(spec, sample_shape) -> keras.Model:
    """The dense autoencoder as one would write it in Keras: one Sequential stack."""
    model_spec = spec.model
    stack = model_spec.encoder
    decoder = model_spec.decoder.units if model_spec.decoder else list(reversed(stack.units))
    layers = [keras.Input(tuple(sample_shape))]
    layers += [keras.layers.Dense(u, activation=stack.activation) for u in stack.units]
    layers += [keras.layers.Dense(model_spec.bottleneck)]
    layers += [keras.layers.Dense(u, activation=stack.activation) for u in decoder]
    layers += [keras.layers.Dense(math.prod(sample_shape), activation=model_spec.output_activation)]
    model = keras.Sequential(layers)
    optimizer = spec.train.optimizer
    model.compile(
        optimizer=keras.optimizers.Adam(optimizer.learning_rate), loss="mse", metrics=["mae"]
    )
    return model


def bench_autoencoder(spec_path: Path, args, peak: float, scratch: Path) -> dict:
    spec = kseq.load_spec(spec_path)
    if spec.model.encoder.type != "dense" or spec.model.variational or spec.model.noise:
        raise SystemExit(f"{spec_path.name}: the plain-Keras twin covers plain dense autoencoders")
    family = family_for(spec)
    keras.utils.set_random_seed(0)
    data = family.load_data(spec)
    ours = family.build(spec, data)
    family.compile(ours, spec)
    plain = plain_autoencoder(spec, data.info.sample_shape)
    assert ours.count_params() == plain.count_params()
    samples = sum(int(x.shape[0]) for x, _ in data.train)
    seconds = epoch_seconds({"kseq": ours, "plain": plain}, data.train, args.epochs, args.rounds)
    rate = {name: samples / s for name, s in seconds.items()}
    train_flops = 3 * dense_forward_flops(ours) * samples
    mfu = train_flops / seconds["kseq"] / (peak * 1e9)

    run_dir, tflite_path = exported_run(spec_path, scratch)
    spec, family, model = kseq.load_run(run_dir)
    row = data.samples["inputs"][:1]
    runner = tflite_runner(tflite_path, "serving_default")
    latency = {
        "tflite": latency_ms(lambda: runner(inputs=row)),
        "keras predict": latency_ms(lambda: model.predict(row, verbose=0)),
        "keras call": latency_ms(lambda: model(row, training=False)),
    }
    return {
        "spec": spec_path.stem,
        "unit": "samples/s",
        "ours": rate["kseq"],
        "plain": rate["plain"],
        "params": (ours.count_params(), plain.count_params()),
        "padding": None,
        "mfu": mfu,
        "achieved_gflops": train_flops / seconds["kseq"] / 1e9,
        "latency": latency,
        "batch": spec.train.batch_size,
    }


# ---- sequence to sequence ----------------------------------------------------------------------


def rnn_seq2seq_forward_flops(model_spec, target_vocab: int, source_len: int, target_len: int):
    """Matmul FLOPs of one example through kseq's RNN encoder-decoder (x2 per multiply-add).

    Counts recurrent gates, the encoder->decoder bridge, attention (keys once per source
    position; query, scores and context per target step), the Luong attentional state and the
    output projection. Element-wise work and the embeddings' gathers are left out.
    """
    enc, dec, att = model_spec.encoder, model_spec.decoder, model_spec.attention
    enc_gates = 4 if enc.cell == "lstm" else 3
    dec_gates = 4 if dec.cell == "lstm" else 3
    directions = 2 if enc.bidirectional else 1
    memory = enc.units * directions  # H
    flops = 0
    width = model_spec.embedding_dim
    for _ in range(enc.layers):
        flops += directions * 2 * enc_gates * enc.units * (width + enc.units) * source_len
        width = memory
    states = dec.layers * (2 if dec.cell == "lstm" else 1)
    projects = not (enc.cell == dec.cell and directions == 1 and enc.units == dec.units)
    if projects:
        flops += states * 2 * memory * dec.units
    kind = decoder_attention(att.type, att.score, att.units, att.input_feeding)
    step = 0
    inputs = model_spec.embedding_dim + kind.input_width(dec.units, memory)
    for _ in range(dec.layers):
        step += 2 * dec_gates * dec.units * (inputs + dec.units)
        inputs = dec.units
    keys, attention = kind.matmul_flops(dec.units, memory, source_len)
    flops += keys
    step += attention
    features = kind.feature_width(dec.units, memory)
    step += 2 * features * target_vocab
    return flops + step * target_len


def transformer_seq2seq_forward_flops(model_spec, target_vocab: int, source_len, target_len):
    """Matmul FLOPs of one example through kseq's Transformer encoder-decoder (x2 per
    multiply-add): the attention projections, scores and contexts (full T x T self-attention,
    as computed), the feed-forward layers and the output projection."""
    d, f, s, t = model_spec.hidden_size, model_spec.intermediate_size, source_len, target_len
    encoder = s * (8 * d * d + 4 * s * d + 4 * d * f)
    decoder = t * (8 * d * d + 4 * t * d) + s * 4 * d * d + t * (4 * d * d + 4 * s * d + 4 * d * f)
    return (
        model_spec.encoder_layers * encoder
        + model_spec.decoder_layers * decoder
        + (t * 2 * d * target_vocab)
    )


# model type -> (the plain twin, the forward FLOPs of one example)
TWINS = {
    "rnn_seq2seq": (plain_rnn_seq2seq, rnn_seq2seq_forward_flops),
    "transformer_seq2seq": (plain_transformer_seq2seq, transformer_seq2seq_forward_flops),
}


def bench_seq2seq(spec_path: Path, args, peak: float, scratch: Path) -> dict:
    from kseq.data.pipeline import make_dataset, padding_report

    spec = kseq.load_spec(spec_path)
    family = family_for(spec)
    keras.utils.set_random_seed(0)
    data = family.load_data(spec)
    tokenizers = data.info.tokenizers
    ours = family.build(spec, data)
    family.compile(ours, spec)
    make_twin, forward_flops = TWINS[spec.model.type]
    plain = make_twin(spec, tokenizers.source.vocab_size, tokenizers.target.vocab_size)
    if ours.count_params() != plain.count_params():
        raise SystemExit(
            f"{spec_path.name}: the plain twin has {plain.count_params():,} parameters, kseq "
            f"{ours.count_params():,}; they must be the same architecture"
        )
    # The same fixed batches for both models: a slice of one shuffled, bucketed epoch.
    batches = data.train.take(args.seq2seq_batches).cache()
    # Bucketing hides the length from Keras, which would then warn at the end of every epoch.
    batches = batches.apply(tf.data.experimental.assert_cardinality(args.seq2seq_batches))
    tokens = flops = 0
    for features, target_out in batches:
        source = features["source"].numpy()
        tokens += int((source != 0).sum()) + int((target_out.numpy() != 0).sum())
        batch, source_len = source.shape
        target_len = int(target_out.shape[1])
        flops += batch * forward_flops(
            spec.model, tokenizers.target.vocab_size, source_len, target_len
        )
    seconds = epoch_seconds({"kseq": ours, "plain": plain}, batches, args.epochs, args.rounds)
    rate = {name: tokens / s for name, s in seconds.items()}

    # End to end: each side with its natural pipeline over the same pairs, kseq's bucketed
    # batches against the twin's shuffled batches padded to their longest row.
    pairs = data.info.train_ids[: args.end_to_end_pairs]
    pipelines = {
        "kseq": make_dataset(
            [s for s, _ in pairs], [t for _, t in pairs], spec.train.batch_size,
            seed=spec.train.seed, bucketing=True,
        ),
        "plain": padded_batches(pairs, spec.train.batch_size, spec.train.seed),
    }  # fmt: skip
    pair_tokens = sum(len(s) + 2 * (len(t) + 1) for s, t in pairs)  # source, target_in, _out
    end_to_end = {}
    for name, model in (("kseq", ours), ("plain", plain)):
        best = epoch_seconds({name: model}, pipelines[name], 1, args.rounds)[name]
        end_to_end[name] = pair_tokens / best
    train_flops = 3 * flops
    ids = data.info.train_ids
    padding = padding_report(
        [s for s, _ in ids], [t for _, t in ids], spec.train.batch_size, seed=spec.train.seed
    )

    run_dir, tflite_path = exported_run(spec_path, scratch)
    spec, family, model = kseq.load_run(run_dir)
    row = data.samples["source_ids"][:1]
    runner = tflite_runner(tflite_path, "generate")
    decode = family.decoder_fn(model, spec, "greedy")
    source = tf.constant(row)
    latency = {
        "tflite": latency_ms(lambda: runner(source_ids=row), runs=20),
        "keras greedy decode (tf.function)": latency_ms(
            lambda: decode(source)["target_ids"].numpy(), runs=20
        ),
    }
    return {
        "spec": spec_path.stem,
        "unit": "non-padding tokens/s",
        "ours": rate["kseq"],
        "plain": rate["plain"],
        "end_to_end": end_to_end,
        "params": (ours.count_params(), plain.count_params()),
        "padding": padding,
        "mfu": train_flops / seconds["kseq"] / (peak * 1e9),
        "achieved_gflops": train_flops / seconds["kseq"] / 1e9,
        "latency": latency,
        "batch": spec.train.batch_size,
    }


# ---- report ----------------------------------------------------------------------------------


def render(results: list[dict], peak: float, args) -> str:
    throughput = table(
        [
            "spec",
            "unit",
            "kseq",
            "plain Keras",
            "kseq / plain, same batches",
            "end to end: kseq / plain",
            "params (kseq / plain)",
        ],
        [
            [
                f"`{r['spec']}`",
                r["unit"],
                f"{r['ours']:,.0f}",
                f"{r['plain']:,.0f}",
                f"{r['ours'] / r['plain']:.2f}",
                (
                    f"{r['end_to_end']['kseq'] / r['end_to_end']['plain']:.2f} "
                    f"({r['end_to_end']['kseq']:,.0f} / {r['end_to_end']['plain']:,.0f})"
                    if "end_to_end" in r
                    else "—"
                ),
                f"{r['params'][0]:,} / {r['params'][1]:,}",
            ]
            for r in results
        ],
    )
    utilisation = table(
        ["spec", "batch", "kseq training GFLOP/s", "fp32 matmul peak GFLOP/s", "MFU"],
        [
            [
                f"`{r['spec']}`",
                r["batch"],
                f"{r['achieved_gflops']:.1f}",
                f"{peak:.0f}",
                f"{r['mfu']:.1%}",
            ]
            for r in results
        ],
    )
    padded = [r for r in results if r["padding"]]
    padding = table(
        ["spec", "padding without bucketing", "padding with bucketing"],
        [
            [
                f"`{r['spec']}`",
                f"{r['padding']['unbucketed']:.1%}",
                f"{r['padding']['bucketed']:.1%}",
            ]
            for r in padded
        ],
    )
    latency_rows = []
    for r in results:
        for name, ms in r["latency"].items():
            if name == "tflite":
                continue
            latency_rows.append(
                [
                    f"`{r['spec']}`",
                    f"{r['latency']['tflite']:.3g}",
                    name,
                    f"{ms:.3g}",
                    f"{ms / r['latency']['tflite']:,.0f}x",
                ]
            )
    latency = table(["spec", "TFLite ms", "Keras path", "Keras ms", "Keras / TFLite"], latency_rows)
    notes = (
        f"Training throughput: fastest epoch of {args.rounds} alternating rounds of "
        f"{args.epochs} epochs per model, after a warm-up epoch, on the same batches (the "
        "autoencoder's whole training set; for seq2seq a fixed slice of "
        f"{args.seq2seq_batches} bucketed batches). The plain autoencoder is one `Sequential` "
        "stack of the same Dense layers. Each seq2seq spec's plain twin "
        "(`tools/bench/keras_twins.py`) is the same architecture from stock layers: "
        "`Embedding`, `Bidirectional(LSTM)` encoder, `Dense(tanh)` bridges, and a "
        "`keras.layers.RNN` over a cell of `LSTMCell`s with the spec's attention inside every "
        "step, then `Dense(V)`; the Transformer's twin stacks stock `MultiHeadAttention`, "
        "`LayerNormalization`, `Dense` and `Embedding` layers of the spec's sizes, with "
        "sinusoidal positions and the tied output through the embedding's table. The benchmark "
        "stops unless the parameter counts are equal.\n\n"
        "End to end: each side's natural pipeline over the same "
        f"{args.end_to_end_pairs:,} training pairs, fastest of {args.rounds} epochs: kseq's "
        "length-bucketed batches against the twin's shuffled batches padded to their longest "
        "row; non-padding tokens (source, decoder input, target) per second.\n\n"
        "MFU: kseq's training FLOPs (3x the forward matmul FLOPs, counted on the padded shapes "
        "the model computes) per second over the best fp32 4096x4096 `tf.matmul` rate measured "
        "in the same run.\n\n"
        "Padding: share of padding positions in source, decoder input and target over one "
        "shuffled training epoch (`kseq.data.pipeline.padding_report`).\n\n"
        "Latency: median of one batch-1 call on the same held-out input: the exported "
        "builtin-only float32 `.tflite` on the `ai_edge_litert` interpreter against Keras "
        "(`model.predict`, a direct `model(x)` call, or the in-graph greedy decoder as a "
        "`tf.function`, which is what the seq2seq TFLite `generate` signature runs)."
    )
    return "\n\n".join(
        [
            "### Training throughput",
            throughput,
            "### Model FLOP utilisation",
            utilisation,
            "### Padding",
            padding,
            "### Batch-1 latency",
            latency,
            notes,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating timing rounds")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per round")
    parser.add_argument("--seq2seq-batches", type=int, default=24)
    parser.add_argument("--end-to-end-pairs", type=int, default=6000)
    parser.add_argument(
        "--seq2seq-specs",
        nargs="+",
        default=[
            "rnn_seq2seq_bahdanau",
            "rnn_seq2seq_luong_general",
            "rnn_seq2seq_none",
            "transformer_seq2seq",
        ],
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not touch the docs")
    args = parser.parse_args()
    peak = matmul_peak_gflops()
    print(f"fp32 matmul peak: {peak:.1f} GFLOP/s", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="kseq-bench-") as scratch:
        started = time.perf_counter()
        autoencoder = ROOT / "specs" / "autoencoder_dense.yaml"
        results.append(bench_autoencoder(autoencoder, args, peak, Path(scratch)))
        print(results[-1], f"{time.perf_counter() - started:.0f}s", flush=True)
        for name in args.seq2seq_specs:
            started = time.perf_counter()
            results.append(bench_seq2seq(ROOT / f"specs/{name}.yaml", args, peak, Path(scratch)))
            print(results[-1], f"{time.perf_counter() - started:.0f}s", flush=True)
    body = render(results, peak, args)
    load = os.getloadavg()[0]
    body += (
        f"\n\nLoad average (1 min) at the end of the run: {load:.1f} on {os.cpu_count()} cores; "
        "other work on the machine slows both models of a row alike."
    )
    if args.no_write:
        print(body)
    else:
        print(write_section("throughput", "Training throughput, utilisation and latency", body))


if __name__ == "__main__":
    main()
